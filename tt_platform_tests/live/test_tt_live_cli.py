"""``tt live``: a bad session file is one line naming file and key; ``--dry-run`` verifies the
policy, connects to the gateway, warm starts and shows the orders it would send, sending and
storing nothing."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.server import serve_in_thread
from tt_platform.live.policy_source import file_sha256
from tt_platform.settings import get_settings
from tt_platform.store import live as live_store
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy

runner = CliRunner()


def test_a_bad_session_file_is_one_line_naming_file_and_key(tmp_path):
    config = tmp_path / "paper.yaml"
    config.write_text("ops:\n  trading_session:\n    config:\n      capital: -1\n")
    result = runner.invoke(app, ["live", "--config", str(config)])
    assert result.exit_code != 0
    assert f"{config}: ops.trading_session.config.capital: Input should be greater than 0" in result.output


@pytest.fixture
def cli_env(monkeypatch, tmp_path, store_url):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TT_DB_URL", store_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_dry_run_verifies_the_policy_and_shows_orders_without_sending(cli_env, store_engine, tmp_path):
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(1.0), replay=ReplayConfig(start=REPLAY_START))
    gateway = serve_in_thread(emulator)
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"ops": {"trading_session": {"config": {
        "mode": "live", "policy": f"policy:{policy.policy_id}", "clock": "feed", "ib": {"port": gateway.port},
        "orders": {"min_order_value": 10.0}}}}}))
    try:
        result = runner.invoke(app, ["live", "--config", str(config), "--dry-run"])
    finally:
        gateway.stop()
    assert result.exit_code == 0, result.output
    assert f"model SHA-256 {file_sha256(policy.model_path)} matches its lineage" in result.output
    assert "last completed bar 2024-03-08 20:59 UTC" in result.output  # Friday's close: Monday has not opened
    assert "orders it would send" in result.output and "none sent" in result.output
    assert "ref tt:" in result.output
    # nothing sent, nothing stored
    assert not emulator.broker.orders
    assert live_store.get_session(store_engine, "dry-run") is None
    assert live_store.session_orders(store_engine, "dry-run").empty

    # a model file changed after training never trades, not even in a dry run
    policy.model_path.write_bytes(policy.model_path.read_bytes() + b"\0")
    result = runner.invoke(app, ["live", "--config", str(config), "--dry-run"])
    assert result.exit_code != 0
    assert f"policy {policy.policy_id}: model file" in result.output and "changed after training" in result.output
