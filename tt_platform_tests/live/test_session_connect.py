"""A session started while the gateway is down (IB's daily restart) keeps trying for
``ib.startup_wait_seconds`` and then trades; with no wait it fails at once, naming the gateway."""

from __future__ import annotations

import logging

import pytest

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.server import serve_in_thread
from tt_platform.live.config import parse_live_config
from tt_platform.live.launch import build_session, prepare, run
from tt_platform.settings import PlatformSettings
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy


@pytest.mark.slow  # trains a small policy first
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_a_session_waits_for_a_gateway_that_is_restarting(store_engine, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tt_platform.live.session")
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(100.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    gateway = serve_in_thread(emulator)
    try:
        def session(session_id: str, wait: float):
            config = parse_live_config({
                "mode": "paper", "policy": f"policy:{policy.policy_id}", "clock": "feed", "max_decisions": 2,
                "ib": {"port": gateway.port, "request_timeout": 5.0, "startup_wait_seconds": wait},
                "report_dir": str(tmp_path / "reports"), "risk": {"daily_loss_limit": None}})
            prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine,
                               tracker=None)
            return build_session(prepared, session_id=session_id, run_id=session_id, poll_seconds=0.05)

        gateway.submit(emulator.restart(down_seconds=300.0))  # the port is closed for 3 s
        with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{gateway.port}"):
            run(session("no-wait", 0.0))
        result = run(session("waits", 60.0))
        assert result.status == "stopped" and result.decisions >= 2, result
        assert any("IB not reachable at start" in r.getMessage() for r in caplog.records)
    finally:
        gateway.stop()
