from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.settings import get_settings

runner = CliRunner()


def test_bad_config_exits_2_naming_file_and_key(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("env:\n  initial_cash: -5\n")
    result = runner.invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}: env.initial_cash: Input should be greater than 0" in result.output


def test_bad_flag_value_is_reported_as_an_override_error():
    result = runner.invoke(app, ["ingest", "--interval", "2d", "--symbols", "SPY"])
    assert result.exit_code == 2
    assert "command-line overrides: data.interval" in result.output


def test_info_masks_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_DB_URL", "postgresql+psycopg2://trader:s3cret@db:5432/tt")
    monkeypatch.setenv("IB_ACCOUNT", "U7654321")
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["info"])
    finally:
        get_settings.cache_clear()
    assert "s3cret" not in result.output and "U7654321" not in result.output
    assert "db:5432/tt" in result.output
    # the settings are shown, then the database is checked: unreachable here, so tt info fails
    assert result.exit_code != 0
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("cannot connect to PostgreSQL at db:5432, database 'tt': "), last


def test_missing_checkpoint_is_named(tmp_path):
    result = runner.invoke(app, ["train", "--resume-checkpoint", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "checkpoint not found" in result.output


def _capture_runs(monkeypatch):
    import tt_platform.cli as cli

    calls = []

    def fake_run_assets(selection, config_path, overrides, *, with_partitions, **execution):
        calls.append({"selection": selection, "overrides": overrides, "with_partitions": with_partitions})
        return {"success": True, "run_id": "0" * 36, "assets": {}}

    monkeypatch.setattr(cli, "_run_assets", fake_run_assets)
    return calls


def test_demo_reads_ib_through_the_emulator_as_a_run_config_override(monkeypatch):
    calls = _capture_runs(monkeypatch)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert calls[0]["overrides"]["data.source"] == "emulator"
    assert "via the bundled IB Gateway emulator" in result.output

    result = runner.invoke(app, ["demo", "--no-emulator"])
    assert result.exit_code == 0, result.output
    assert calls[1]["overrides"]["data.source"] == "ib"


def test_ingest_emulator_flag_only_changes_an_ib_source(monkeypatch):
    calls = _capture_runs(monkeypatch)
    result = runner.invoke(app, ["ingest", "--source", "ib", "--emulator", "--symbols", "SPY"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ingest", "--source", "synthetic", "--emulator", "--symbols", "SPY"])
    assert result.exit_code == 0, result.output
    assert [c["overrides"]["data.source"] for c in calls] == ["emulator", "synthetic"]
    assert calls[0]["selection"] == ["watchlist", "bars"] and calls[0]["with_partitions"]


def test_cli_sets_no_environment_for_a_run(monkeypatch):
    import os

    _capture_runs(monkeypatch)
    before = dict(os.environ)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before


def test_gateway_sim_help_shows_the_emulators_own_options():
    result = runner.invoke(app, ["gateway-sim", "--help"])
    assert result.exit_code == 0, result.output
    assert "--synthetic" in result.output and "--replay-start" in result.output


def test_compare_names_a_missing_experiment_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    get_settings.cache_clear()
    from tt_platform.training.tracking import MlflowTracker

    assert MlflowTracker((tmp_path / "mlruns").as_uri(), "tt-platform").experiment_id  # the store exists
    try:
        result = runner.invoke(app, ["compare", "--experiment", "no-such-experiment"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-such-experiment" in lines[0], result.output


def test_stress_refuses_policy_and_weights_together():
    result = runner.invoke(app, ["stress", "--policy", "ppo-x", "--weights", "SPY=1"])
    assert result.exit_code == 2 and "give --policy or --weights, not both" in result.output
