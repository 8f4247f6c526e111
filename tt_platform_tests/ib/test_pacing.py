from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tt_platform.ib.clock import ManualClock, ScaledClock
from tt_platform.ib.pacing import (
    BackoffPolicy,
    HistoricalPacer,
    PacingEscalation,
    PacingLedger,
    PacingRules,
    RequestKey,
)


def key(
    contract: str = "265598",
    end: str = "20220101 00:00:00 UTC",
    what: str = "TRADES",
    duration: str = "1800 S",
    bar_size: str = "30 secs",
) -> RequestKey:
    """A small-bar request by default: the bars IB's hard pacing rules are about."""
    return RequestKey(contract, "SMART", what, bar_size, duration, end)


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)  # the loop of the autouse fixture


def test_identical_request_within_15_seconds_is_a_violation():
    ledger = PacingLedger()
    ledger.record(key(), 100.0)
    assert "identical" in ledger.violation(key(), 114.9)
    assert ledger.violation(key(), 115.0) is None
    assert ledger.wait_time(key(), 110.0) == pytest.approx(5.0)


def test_six_requests_per_contract_within_two_seconds():
    ledger = PacingLedger()
    for i in range(6):
        ledger.record(key(end=f"2021010{i} 00:00:00 UTC"), 10.0 + 0.1 * i)
    other_end = key(end="20200101 00:00:00 UTC")
    assert "more than 6 requests" in ledger.violation(other_end, 10.9)
    assert ledger.violation(key(contract="999"), 10.9) is None  # another contract is free
    assert ledger.violation(key(what="BID", end="20200101 00:00:00 UTC"), 10.9) is None  # another tick type too
    # the oldest of the six leaves the 2 s window at 12.0
    assert ledger.wait_time(other_end, 10.9) == pytest.approx(1.1)
    assert ledger.violation(other_end, 12.0) is None


def test_sixty_requests_per_ten_minutes_with_bid_ask_counting_twice():
    ledger = PacingLedger()
    for i in range(59):
        ledger.record(key(contract=str(i)), float(i))
    assert ledger.violation(key(contract="x"), 100.0) is None
    assert "more than 60" in ledger.violation(key(contract="x", what="BID_ASK"), 100.0)
    ledger.record(key(contract="x"), 100.0)
    assert ledger.requests_in_window(100.0) == 60
    assert "more than 60" in ledger.violation(key(contract="y"), 100.0)
    assert ledger.wait_time(key(contract="y"), 100.0) == pytest.approx(500.0)  # the first (t=0) leaves at 600
    assert ledger.violation(key(contract="y"), 600.0) is None


def test_margin_makes_the_client_wait_longer_than_the_rule():
    ledger = PacingLedger(PacingRules(margin_seconds=1.5))
    ledger.record(key(), 0.0)
    assert ledger.wait_time(key(), 0.0) == pytest.approx(16.5)


def test_rules_reject_nonsense():
    with pytest.raises(ValueError, match="max_requests"):
        PacingRules(max_requests=0)
    with pytest.raises(ValueError, match="margin"):
        PacingRules(margin_seconds=-1)


def test_pacer_waits_on_the_injected_clock_without_real_sleeping():
    clock = ManualClock()
    pacer = HistoricalPacer(clock, PacingRules())
    waited = [run(pacer.acquire(key(contract=str(i)))) for i in range(61)]
    assert waited[:60] == [0.0] * 60
    assert waited[60] == pytest.approx(600.0)  # the 61st waits for the first to leave the window
    assert clock.now() == pytest.approx(600.0)
    assert pacer.stats.requests == 61 and pacer.stats.waited_seconds == pytest.approx(600.0)


def test_pacer_spaces_requests_for_one_contract():
    clock = ManualClock()
    pacer = HistoricalPacer(clock, PacingRules())
    for i in range(13):
        run(pacer.acquire(key(end=str(i))))
    assert clock.now() == pytest.approx(4.0)  # 6 at t=0, 6 at t=2, the 13th at t=4


def test_the_default_pacer_keeps_a_margin_over_ibs_limits():
    clock = ManualClock()
    pacer = HistoricalPacer(clock)
    run(pacer.acquire(key()))
    run(pacer.acquire(key()))  # identical: 15 s rule plus the margin
    assert clock.now() == pytest.approx(15.0 + pacer.rules.margin_seconds) and pacer.rules.margin_seconds > 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.floats(0, 5)), min_size=1, max_size=90))
def test_paced_requests_never_break_a_rule_on_the_gateway_side(requests):
    """Whatever the request mix and idle gaps, what the pacer lets through the gateway accepts."""
    clock = ManualClock()
    pacer = HistoricalPacer(clock)
    gateway = PacingLedger()
    for contract, end, idle in requests:
        clock.advance(idle)
        k = key(contract=str(contract), end=str(end))
        run(pacer.acquire(k))
        assert gateway.violation(k, clock.now()) is None
        gateway.record(k, clock.now())


def test_violations_back_off_exponentially_then_escalate():
    pacer = HistoricalPacer(ManualClock(), backoff=BackoffPolicy(10, 2, 35), max_consecutive_violations=3)
    assert [pacer.on_violation(key(), "162") for _ in range(3)] == [10, 20, 35]
    with pytest.raises(PacingEscalation, match="4 consecutive pacing violations"):
        pacer.on_violation(key(), "162")
    assert pacer.stats.violations == 4


def test_success_resets_the_escalation_counter():
    pacer = HistoricalPacer(ManualClock(), max_consecutive_violations=2)
    pacer.on_violation(key())
    pacer.on_violation(key())
    pacer.on_success()
    assert pacer.on_violation(key()) == BackoffPolicy().delay(1)


def test_unlimited_rules_never_wait():
    pacer = HistoricalPacer(ManualClock(), PacingRules.unlimited())
    for _ in range(200):
        assert run(pacer.acquire(key())) == 0.0


def test_scaled_clock_compresses_time():
    clock = ScaledClock(scale=1000)
    before = clock.now()
    run(clock.sleep(50.0))  # 50 simulated seconds = 50 ms
    assert clock.now() - before >= 50.0
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_a_request_held_in_a_send_queue_counts_from_when_it_left():
    clock = ManualClock()
    pacer = HistoricalPacer(clock, PacingRules())
    for i in range(6):
        run(pacer.acquire(key(end=str(i))))
    clock.advance(1.0)
    pacer.sent_late(key(end="0"))  # ib_insync's throttle held the first one for a second
    ledger = pacer.ledger
    assert ledger.requests_in_window(clock.now()) == 6
    assert ledger.wait_time(key(end="0"), clock.now()) == pytest.approx(15.0)
    # five requests of t=0 still fill the 2 s window with the late one: free at t=2
    assert ledger.wait_time(key(end="new"), clock.now()) == pytest.approx(1.0)
    ledger.move_last(key(end="never sent"), clock.now())  # unknown keys are ignored
    assert ledger.requests_in_window(clock.now()) == 6


# pacing by bar size ---------------------------------------------------------------------------


@pytest.mark.parametrize("bar_size", ["1 secs", "5 secs", "15 secs", "30 secs"])
def test_small_bar_rules_bind_for_bars_of_30_seconds_or_less(bar_size):
    assert PacingRules().binds(bar_size)
    ledger = PacingLedger()
    for i in range(60):
        ledger.record(key(contract=str(i), bar_size=bar_size), float(i) * 3)
    assert "more than 60" in ledger.violation(key(contract="x", bar_size=bar_size), 200.0)
    ledger.record(key(contract="y", bar_size=bar_size, end="e"), 300.0)
    assert "identical" in ledger.violation(key(contract="y", bar_size=bar_size, end="e"), 310.0)


@pytest.mark.parametrize("bar_size", ["1 min", "5 mins", "1 hour", "1 day", "1 week"])
def test_small_bar_rules_do_not_bind_for_1_min_bars_and_larger(bar_size):
    rules = PacingRules()
    assert not rules.binds(bar_size)
    ledger = PacingLedger(rules)
    same = key(bar_size=bar_size, duration="1 D")
    for i in range(200):  # 200 identical requests for one contract within one second
        assert ledger.violation(same, i / 200) is None
        ledger.record(same, i / 200)
    assert ledger.wait_time(same, 1.0) == 0.0 and ledger.requests_in_window(1.0) == 0
    # ... and they do not use up the small-bar budget either
    assert ledger.violation(key(), 1.0) is None


def test_the_old_reading_applies_the_rules_to_every_bar_size():
    rules = PacingRules.every_bar_size()
    assert rules.binds("1 day") and rules.binds("1 min")
    ledger = PacingLedger(rules)
    for i in range(60):
        ledger.record(key(contract=str(i), bar_size="1 day"), float(i))
    assert "more than 60" in ledger.violation(key(contract="x", bar_size="1 day"), 100.0)


def test_a_nightly_update_of_daily_bars_is_not_held_by_the_small_bar_rules():
    clock = ManualClock()
    pacer = HistoricalPacer(clock)
    for i in range(500):
        run(pacer.acquire(key(contract=str(i), bar_size="1 day", duration="3 D")))
    assert clock.now() == 0.0 and pacer.stats.waited_seconds == 0.0
    old = HistoricalPacer(ManualClock(), PacingRules.every_bar_size(margin_seconds=1.0))
    for i in range(500):
        run(old.acquire(key(contract=str(i), bar_size="1 day", duration="3 D")))
    assert old.clock.now() > 80 * 60  # 60 per 10 minutes: the ~83 minutes a nightly update used to wait


# open requests ---------------------------------------------------------------------------------


def test_the_cap_on_open_requests_is_at_most_ibs_50():
    assert HistoricalPacer().max_open_requests == 50
    assert HistoricalPacer(max_open_requests=7).max_open_requests == 7
    for bad in (0, 51, 100):
        with pytest.raises(ValueError, match="between 1 and 50"):
            HistoricalPacer(max_open_requests=bad)


def test_requests_run_concurrently_up_to_the_cap():
    pacer = HistoricalPacer(ManualClock(), max_open_requests=5)
    seen: list[int] = []

    async def request(i: int) -> None:
        async with pacer.slot():
            await pacer.acquire(key(contract=str(i), bar_size="1 day"))
            seen.append(pacer.open_requests)
            await asyncio.sleep(0.001)  # an answer in flight

    async def all_of_them():
        await asyncio.gather(*(request(i) for i in range(40)))

    run(all_of_them())
    assert max(seen) == 5 == pacer.stats.max_open and pacer.open_requests == 0
    assert pacer.stats.requests == 40


# back-off on 162 ------------------------------------------------------------------------------


def test_a_162_for_daily_bars_makes_every_request_wait_out_one_back_off():
    clock = ManualClock()
    pacer = HistoricalPacer(clock, backoff=BackoffPolicy(30, 2, 600))
    daily = [key(contract=str(i), bar_size="1 day") for i in range(3)]
    for k in daily:
        run(pacer.acquire(k))
    sent_at = clock.now()
    # the whole burst is refused: one back-off, not three, and no escalation
    assert pacer.on_violation(daily[0], "pacing violation", sent_at) == 30
    assert pacer.on_violation(daily[1], "pacing violation", sent_at - 1e-9) <= 30
    assert pacer.on_violation(daily[2], "pacing violation", sent_at - 1e-9) <= 30
    assert pacer.consecutive_violations == 1 and pacer.stats.violations == 3
    assert run(pacer.acquire(daily[0])) == pytest.approx(30.0, abs=1e-3)  # every request waits it out
    assert clock.now() == pytest.approx(30.0, abs=1e-3)
    # refused again after the back-off: the next round waits twice as long
    assert pacer.on_violation(daily[0], "pacing violation", clock.now()) == 60


def test_daily_bar_violations_escalate_like_any_other():
    clock = ManualClock()
    pacer = HistoricalPacer(clock, backoff=BackoffPolicy(1, 2, 10), max_consecutive_violations=2)
    daily = key(bar_size="1 day")
    with pytest.raises(PacingEscalation, match="3 consecutive pacing violations"):
        for _ in range(3):
            run(pacer.acquire(daily))
            pacer.on_violation(daily, "162", clock.now())
