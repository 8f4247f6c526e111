"""What guards a session besides its risk gate: after a restart it resumes its guardrails from
its recorded decisions (the circuit breaker and the daily kill switch stay tripped for the rest of
the day they tripped on), and on the feed clock a silent feed still raises a gap alert."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tt_platform.core.orders import Order
from tt_platform.live.config import parse_live_config
from tt_platform.live.decision import AuditRecord
from tt_platform.live.guardrails import GuardrailVerdict
from tt_platform.live.launch import build_session, prepare
from tt_platform.settings import PlatformSettings
from tt_platform.store import live as live_store
from tt_platform_tests.live.policy_factory import train_tiny_policy

SESSION = "restore-1"
LOSS_LIMIT = 0.02


def _decision(store, step: int, day: str, equity: float, halted: bool) -> None:
    guard = GuardrailVerdict(
        status="tripped" if halted else "pass", reasons=("daily_loss_limit",) if halted else (), trading_day=day,
        equity=equity, session_drawdown=0.0, session_drawdown_threshold=0.5, breaker_tripped_now=False,
        daily_halted=halted, daily_loss_limit=LOSS_LIMIT, flattening=False)
    record = AuditRecord(run_id="run-1", bar_time=(pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=15, minutes=step))
                         .to_pydatetime(), policy_version="v1", feature_set_hash="fs", verdict="held" if halted else "pass",
                         breaches="", guardrails=guard, order_refs=(), latency_ms=1.0)
    live_store.record_decision(store, session_id=SESSION, step=step, audit=record.as_row(), actions={},
                               target_weights={})


@pytest.mark.slow  # trains a small policy first
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_a_restart_on_the_day_the_daily_kill_switch_tripped_keeps_it_tripped(store_engine, tmp_path):
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    config = parse_live_config({"policy": f"policy:{policy.policy_id}", "mode": "paper",
                                "risk": {"daily_loss_limit": LOSS_LIMIT, "max_session_drawdown": 0.5}})
    prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine,
                       tracker=None)
    live_store.open_session(store_engine, session_id=SESSION, run_id="run-1", account_key="acct-1", mode="paper",
                            policy_id=policy.policy_id, policy_version="v1", feature_set_hash="fs", config={},
                            stale_after=dt.timedelta(minutes=5))
    _decision(store_engine, 0, "2024-03-11", 100_000.0, halted=False)
    _decision(store_engine, 1, "2024-03-12", 99_000.0, halted=False)
    _decision(store_engine, 2, "2024-03-12", 97_500.0, halted=True)  # 2.5 % below the day's 100,000 start
    assert live_store.day_start_equity(store_engine, SESSION, "2024-03-12") == 100_000.0
    assert live_store.day_start_equity(store_engine, SESSION, "2024-03-11") == 100_000.0
    assert live_store.day_start_equity(store_engine, SESSION, "2024-03-13") is None

    session = build_session(prepared, session_id=SESSION, run_id="run-2")
    session._restore()
    gate = session.gate
    assert gate.halted and session.step == 3
    # the same day: equity back above the limit, still no new risk
    passed, breaches = gate.screen_orders([Order("AAA", 10.0)], is_open=True, session="2024-03-12", equity=99_500.0)
    assert gate.halted and passed == [] and breaches[0].rule == "daily_loss_limit"
    # the next day starts from the last equity, untripped
    gate.screen_orders([], is_open=True, session="2024-03-13", equity=99_400.0)
    assert not gate.halted

    fresh = build_session(prepared, session_id="never-ran", run_id="run-3")
    fresh._restore()
    assert not fresh.gate.halted and fresh.step == 0


@pytest.mark.slow  # trains a small policy first
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_on_the_feed_clock_a_silent_feed_raises_one_gap_alert_while_the_market_is_open(store_engine, tmp_path):
    """The feed clock stands still when the feed stops, so the bar-time gap watch sees nothing:
    silence is measured on the wall clock instead."""
    import time
    from types import SimpleNamespace

    from tt_platform.live.session import SessionHooks

    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    config = parse_live_config({"policy": f"policy:{policy.policy_id}", "mode": "paper", "clock": "feed"})
    prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine,
                       tracker=None)
    alerts: list[str] = []
    session = build_session(prepared, session_id=SESSION, run_id="run-1", hooks=SessionHooks(alert=alerts.append))
    session._feed_now = pd.Timestamp("2024-03-12 15:00", tz="UTC")  # a Tuesday, 11:00 in New York
    session._check_gaps()
    assert alerts == []  # no bar yet: nothing to be silent after
    session._on_sub_bar(SimpleNamespace(symbol="AAA"))
    session._check_gaps()
    assert alerts == []
    session._last_sub_bar_wall = time.monotonic() - 121.0  # two 1min intervals and a second
    session._check_gaps()
    session._check_gaps()
    assert len(alerts) == 1 and "no real-time bars for 121 s, more than twice the 1min interval" in alerts[0]
    session._on_sub_bar(SimpleNamespace(symbol="AAA"))  # the feed is back: a later silence alerts again
    session._last_sub_bar_wall = time.monotonic() - 200.0
    session._check_gaps()
    assert len(alerts) == 2
    # at night nothing is expected
    session._on_sub_bar(SimpleNamespace(symbol="AAA"))
    session._feed_now = pd.Timestamp("2024-03-13 03:00", tz="UTC")
    session._last_sub_bar_wall = time.monotonic() - 200.0
    session._check_gaps()
    assert len(alerts) == 2
