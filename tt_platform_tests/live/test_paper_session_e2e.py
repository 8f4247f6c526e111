"""A paper session against the gateway emulator over several simulated days on a scaled clock:
fills, a dropped socket, a gateway restart, a job restart and a circuit-breaker trip; then the
tables are checked against each other and against a replay of the fills."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
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

SESSION = "paper-e2e"
CAPITAL = 100_000.0


def _drop_clients(emulator: GatewayEmulator) -> None:
    async def drop() -> None:
        for client in list(emulator.sessions.values()):
            client.close()

    return drop()


def _session(engine, tmp_path: Path, policy_id: str, port: int, *, max_decisions: int, hooks: SessionHooks):
    config = parse_live_config({
        "mode": "paper", "policy": f"policy:{policy_id}", "clock": "feed", "capital": CAPITAL,
        "max_decisions": max_decisions, "ib": {"port": port, "request_timeout": 5.0},
        "report_dir": str(tmp_path / "reports"), "heartbeat_seconds": 0.5,
        # commissions alone pass a 0.05 % session drawdown: the breaker trips every day
        "risk": {"max_session_drawdown": 0.0005, "flatten_on_trip": True, "daily_loss_limit": None},
        "orders": {"min_order_value": 10.0},
    })
    prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=engine, tracker=None)
    return build_session(prepared, session_id=SESSION, run_id=f"run-{max_decisions}", hooks=hooks, poll_seconds=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_paper_session_over_days_with_faults_keeps_the_tables_true(store_engine, tmp_path):
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(300.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    gateway = serve_in_thread(emulator)
    faults: list[str] = []
    alerts: list[str] = []

    def on_decision(info: dict) -> None:
        # a dropped socket mid-session, then IB's daily restart (port closed for a while)
        if info["step"] == 40 and "drop" not in faults:
            faults.append("drop")
            gateway.submit(_drop_clients(emulator))
        if info["step"] == 120 and "restart" not in faults:
            faults.append("restart")
            gateway.submit(emulator.restart(down_seconds=300.0))

    try:
        hooks = SessionHooks(decision=on_decision, alert=alerts.append)
        first = run(_session(store_engine, tmp_path, policy.policy_id, gateway.port, max_decisions=200, hooks=hooks))
        assert first.status == "stopped" and first.decisions >= 200, first
        assert first.reconnects >= 2, f"the session must have reconnected after both faults, got {first.reconnects}"
        assert faults == ["drop", "restart"]
        # the job restarts: same session id, so it resumes its book, steps and breaker
        second = run(_session(store_engine, tmp_path, policy.policy_id, gateway.port, max_decisions=700,
                              hooks=SessionHooks(alert=alerts.append)))
        assert second.status == "stopped", second
    finally:
        gateway.stop()

    session = live_store.get_session(store_engine, SESSION)
    assert session["status"] == "stopped" and session["restarts"] == 1
    audit = live_store.read_audit(store_engine, SESSION)
    orders = live_store.session_orders(store_engine, SESSION)
    fills = live_store.session_fills(store_engine, SESSION)
    marks = live_store.read_marks(store_engine, SESSION)

    # steps: one decision each, numbered on across the restart, none twice
    assert list(audit["step"]) == list(range(len(audit))) and len(audit) >= 900
    days = sorted(audit["guard_trading_day"].unique())
    assert len(days) >= 3, f"several simulated days, got {days}"
    # no order twice: refs unique, and at most one order per bar, symbol and side
    assert orders["order_ref"].is_unique and orders["order_id"].equals(orders["order_ref"])
    assert max(Counter(zip(orders["ts"], orders["instrument"], orders["side"])).values()) == 1
    assert not orders["status"].isin(live_store.ORDER_OPEN_STATUSES).any()
    assert len(fills) > 100 and fills["fill_id"].is_unique
    # the breaker tripped (flattening) on every day, and was reset by the next day
    tripped_now = audit[audit["guard_breaker_tripped_now"]]
    assert set(tripped_now["guard_trading_day"]) == set(days)
    assert any("circuit breaker tripped" in a for a in alerts)
    for day in days:
        today = audit[audit["guard_trading_day"] == day].sort_values("step")
        first_trip = today.index[today["guard_breaker_tripped_now"]][0]
        after = today.loc[first_trip:]
        assert (after["guard_status"] == "tripped").all(), f"{day}: the breaker must hold for the rest of the day"
        later_buys = orders[orders["ts"].isin(after["bar_time"]) & (orders["side"] == "buy")]
        assert later_buys.empty, f"{day}: bought after the breaker tripped: {later_buys['order_ref'].tolist()}"

    # the book in the tables equals a replay of the fills
    cash = CAPITAL - float((fills["quantity"] * fills["price"]).sum()) - float(fills["commission"].sum())
    last = marks.sort_values("step").iloc[-1]
    assert last["cash"] == pytest.approx(cash, rel=1e-9)
    held = fills.groupby("instrument")["quantity"].sum()
    holdings = live_store.read_holdings(store_engine, SESSION, step=int(last["step"])).set_index("instrument")["quantity"]
    for symbol, quantity in held.items():
        assert holdings.get(symbol, 0.0) == pytest.approx(quantity, abs=1e-9)
    assert np.isfinite(marks["equity"]).all() and (marks["equity"] > 0).all()
    # a report per simulated day
    reports = sorted(p.stem for p in (tmp_path / "reports" / SESSION).glob("*.html"))
    assert reports == [str(pd.Timestamp(day).date()) for day in days]
