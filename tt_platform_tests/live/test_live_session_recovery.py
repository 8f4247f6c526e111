"""Live mode against the gateway emulator: the job is killed (SIGKILL) between an order's submit
and its acknowledgement, restarted, and then survives a dropped socket and a gateway restart.
No order is ever sent twice, every broker order is recorded, and positions agree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.server import serve_in_thread
from tt_platform.live.config import parse_live_config
from tt_platform.live.launch import build_session, prepare, run
from tt_platform.live.session import SessionHooks
from tt_platform.settings import PlatformSettings
from tt_platform.store import live as live_store
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy

SESSION = "live-recovery"
REPO = Path(__file__).resolve().parents[2]

# Runs the session in its own process, killed between an order's submit and its acknowledgement
# (order_kill.py).
KILLED_SESSION = textwrap.dedent("""
    import json, os
    import sqlalchemy as sa
    from tt_platform.live.config import parse_live_config
    from tt_platform.live.launch import build_session, prepare, run
    from tt_platform.settings import PlatformSettings
    from tt_platform_tests.live.order_kill import kill_after_orders

    kill_after_orders()
    config = parse_live_config(json.loads(os.environ["SESSION_CONFIG"]))
    engine = sa.create_engine(os.environ["STORE_URL"])
    prepared = prepare(config, settings=PlatformSettings(TT_HOME=os.environ["TT_HOME"]), store=engine, tracker=None)
    run(build_session(prepared, session_id=os.environ["SESSION_ID"], run_id="killed-run", poll_seconds=0.05))
""")


def _config(policy_id: str, port: int, tmp_path: Path, max_decisions: int) -> dict:
    return {
        "mode": "live", "policy": f"policy:{policy_id}", "clock": "feed", "capital": 100_000.0,
        "max_decisions": max_decisions, "ib": {"port": port, "request_timeout": 5.0},
        "report_dir": str(tmp_path / "reports"), "heartbeat_seconds": 0.5, "stale_after_seconds": 600.0,
        "orders": {"min_order_value": 10.0}, "risk": {"daily_loss_limit": None, "max_session_drawdown": 0.5},
    }


def _broker_orders(emulator: GatewayEmulator) -> list:
    return list(emulator.broker.orders.values())


@pytest.mark.slow
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_an_order_killed_between_submit_and_acknowledgement_is_never_sent_again(store_engine, store_url, tmp_path,
                                                                                caplog):
    import json
    import logging

    caplog.set_level(logging.INFO, logger="tt_platform.live.session")
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(200.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    gateway = serve_in_thread(emulator)
    try:
        mark = tmp_path / "killed-ref"
        env = os.environ | {
            "KILL_AT": "4", "KILL_MARK": str(mark), "STORE_URL": store_url, "TT_HOME": str(tmp_path / "home"),
            "SESSION_ID": SESSION, "PYTHONPATH": str(REPO),
            "SESSION_CONFIG": json.dumps(_config(policy.policy_id, gateway.port, tmp_path, 500)),
        }
        with open(tmp_path / "killed.log", "w") as log:
            killed = subprocess.run([sys.executable, "-c", KILLED_SESSION], env=env, cwd=REPO, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=240)
        assert killed.returncode == -9, (tmp_path / "killed.log").read_text()[-3000:]
        killed_ref = mark.read_text()
        # the order reached the records before it was sent, and its fate is unknown to them
        before = live_store.get_order(store_engine, killed_ref)
        assert before is not None and before["status"] == "pending_submit"
        assert live_store.get_session(store_engine, SESSION)["status"] == "running"
        assert [o.order_ref for o in _broker_orders(emulator)].count(killed_ref) == 1

        faults: list[str] = []
        health: list[tuple[int, dict]] = []

        def on_decision(info: dict) -> None:
            if info["step"] >= 4 and not health:
                health.append(_get_json(f"http://127.0.0.1:{session._health.bound_port}/health"))
            if info["step"] >= 8 and "drop" not in faults:
                faults.append("drop")
                gateway.submit(_drop_clients(emulator))
            elif info["step"] >= 20 and "restart" not in faults:
                faults.append("restart")
                gateway.submit(emulator.restart(down_seconds=200.0))
            elif info["step"] >= 28 and "1100" not in faults:
                faults.append("1100")  # IB loses its own connection; the socket stays up
                gateway.submit(emulator.connectivity_lost())
            elif info["step"] >= 30 and "1102" not in faults:
                faults.append("1102")
                gateway.submit(emulator.connectivity_restored())

        config = parse_live_config(_config(policy.policy_id, gateway.port, tmp_path, 45) | {"health_port": 0})
        prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine,
                           tracker=None)
        # a session that stops deciding (no bars after a fault) ends here, not at CI's time limit
        deadline = time.monotonic() + 240.0
        session = build_session(prepared, session_id=SESSION, run_id="restarted-run", poll_seconds=0.05,
                                hooks=SessionHooks(decision=on_decision, stop_reason=lambda: (
                                    "test deadline passed" if time.monotonic() > deadline else None)))
        result = run(session)
        assert result.status == "stopped" and result.reason.startswith("reached max_decisions"), (
            result, faults, [r.getMessage() for r in caplog.records][-40:])
        assert faults == ["drop", "restart", "1100", "1102"] and result.reconnects >= 2
        # after 1100/1102 nothing goes out before a reconciliation
        messages = [r.getMessage() for r in caplog.records if r.name == "tt_platform.live.session"]
        restored = max(i for i, m in enumerate(messages) if m.startswith("IB connectivity 1102"))
        assert any(m.startswith("reconciled (retry)") for m in messages[restored:]), messages[restored:]
        # the health endpoint answered while the session ran
        status, body = health[0]
        assert status == 200 and body["status"] == "running" and body["connected"] and body["mode"] == "live"
    finally:
        gateway.stop()

    session = live_store.get_session(store_engine, SESSION)
    assert session["restarts"] == 1
    orders = live_store.session_orders(store_engine, SESSION)
    fills = live_store.session_fills(store_engine, SESSION)
    after = live_store.get_order(store_engine, killed_ref)
    assert after["status"] in ("filled", "cancelled"), after  # reconciled from IB, not re-sent
    # the append-only journal saw every order's life, the killed one's from before it was sent
    journal = live_store.order_journal(store_engine, session_id=SESSION)
    assert journal[journal["order_id"] == killed_ref]["status"].tolist()[0] == "pending_submit"
    final = journal.groupby("order_id")["status"].last()
    assert final.loc[orders["order_id"]].tolist() == orders["status"].tolist()
    broker = _broker_orders(emulator)
    refs_at_broker = Counter(o.order_ref for o in broker)
    # never twice at the broker, and nothing at the broker the records do not know
    assert max(refs_at_broker.values()) == 1, [ref for ref, n in refs_at_broker.items() if n > 1]
    assert set(refs_at_broker) <= set(orders["order_ref"])
    assert orders["order_ref"].is_unique
    assert not orders["status"].isin(live_store.ORDER_OPEN_STATUSES).any()
    assert not [o for o in broker if not o.is_done], "cancel_on_stop leaves nothing working"
    # every execution at the broker is a recorded fill, and positions agree
    executions = {e.exec_id for e in emulator.broker.executions}
    assert executions == set(fills["fill_id"])
    booked = fills.groupby("instrument")["quantity"].sum()
    for symbol, holding in emulator.broker.holdings.items():
        assert booked.get(symbol, 0.0) == pytest.approx(holding.quantity, abs=1e-9), symbol


def _get_json(url: str) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _drop_clients(emulator: GatewayEmulator):
    async def drop() -> None:
        for client in list(emulator.sessions.values()):
            client.close()

    return drop()
