"""A paper session whose store connection is cut around a decision's writes: the mark after a
recorded decision fails, and a decision commits while its acknowledgement is lost. Neither stops
the session or reuses a step."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.server import serve_in_thread
from tt_platform.live.launch import run
from tt_platform.live.session import SessionHooks
from tt_platform.store import live as live_store
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy
from tt_platform_tests.live.test_paper_session_e2e import SESSION, _session

DECISIONS = 12


def _cut(what: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError(what, {}, Exception("terminating connection due to administrator command"))


@pytest.mark.slow  # trains a small policy first
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_cut_writes_around_a_decision_neither_stop_the_session_nor_reuse_a_step(store_engine, tmp_path,
                                                                                monkeypatch):
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(300.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    gateway = serve_in_thread(emulator)
    record_mark, record_decision = live_store.record_mark, live_store.record_decision
    calls = {"mark": 0, "decision": 0}

    def failing_mark(*args, **kwargs):
        calls["mark"] += 1
        if calls["mark"] == 3:
            raise _cut("INSERT INTO tt_portfolio")
        return record_mark(*args, **kwargs)

    def unacknowledged_decision(*args, **kwargs):
        calls["decision"] += 1
        result = record_decision(*args, **kwargs)
        if calls["decision"] == 6:
            raise _cut("COMMIT")  # committed, but the answer never came back
        return result

    monkeypatch.setattr(live_store, "record_mark", failing_mark)
    monkeypatch.setattr(live_store, "record_decision", unacknowledged_decision)
    deadline = time.monotonic() + 120.0  # a session stuck on a reused step ends here, failing below
    try:
        result = run(_session(store_engine, tmp_path, policy.policy_id, gateway.port, max_decisions=DECISIONS,
                              hooks=SessionHooks(stop_reason=lambda: "test deadline passed"
                                                 if time.monotonic() > deadline else None)))
    finally:
        gateway.stop()
    assert result.status == "stopped" and result.reason.startswith("reached max_decisions"), result
    assert result.errors == 2  # the two cut writes, each failing its own step only
    with store_engine.connect() as conn:
        steps = conn.execute(sa.text("SELECT step, bar_time FROM tt_live_audit WHERE session_id = :s ORDER BY step"),
                             {"s": SESSION}).all()
    assert [s for s, _ in steps] == list(range(len(steps)))  # no step reused, none skipped
    assert len(steps) >= DECISIONS
    assert all(a[1] < b[1] for a, b in zip(steps, steps[1:], strict=False))  # one bar per step, in order
