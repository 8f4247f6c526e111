"""The session circuit breaker with the risk gate's daily kill switch and market-hours gate."""

from datetime import UTC, datetime

import numpy as np
import pytest

from tt_platform.core import CostModel, ExecutionCore, Portfolio, RiskGate, RiskLimits
from tt_platform.core.execution import Bar
from tt_platform.core.orders import orders_from_targets
from tt_platform.live.decision import decide
from tt_platform.live.guardrails import CircuitBreaker, guarded_targets, screen_guarded_orders

BAR = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------- breaker
def test_trips_at_the_threshold_and_not_before():
    breaker = CircuitBreaker(0.05)
    assert not breaker.check("d1", 100.0).tripped
    just_before = breaker.check("d1", 95.01)
    assert not just_before.tripped and just_before.session_drawdown == pytest.approx(0.0499)
    at = breaker.check("d1", 95.0)
    assert at.tripped and at.tripped_now and breaker.tripped
    assert at.session_drawdown == pytest.approx(0.05) and at.threshold == 0.05


def test_drawdown_runs_from_the_days_peak_not_its_start():
    breaker = CircuitBreaker(0.05)
    breaker.check("d1", 100.0)
    assert not breaker.check("d1", 110.0).tripped
    verdict = breaker.check("d1", 104.5)  # 5 % below 110, 4.5 % above the start
    assert verdict.tripped and verdict.session_peak == 110.0


def test_stays_tripped_for_the_rest_of_the_day_even_if_equity_recovers():
    breaker = CircuitBreaker(0.05)
    breaker.check("d1", 100.0)
    breaker.check("d1", 90.0)
    later = breaker.check("d1", 120.0)
    assert later.tripped and not later.tripped_now


def test_resets_on_the_next_trading_day():
    breaker = CircuitBreaker(0.05)
    breaker.check("d1", 100.0)
    assert breaker.check("d1", 90.0).tripped
    next_day = breaker.check("d2", 90.0)
    assert not next_day.tripped and next_day.session_peak == 90.0
    assert next_day.session_drawdown == 0.0
    assert breaker.check("d2", 85.5).tripped  # 5 % below the new day's peak


def test_resume_restores_a_trip_after_a_restart():
    breaker = CircuitBreaker(0.05)
    breaker.resume("d1", 110.0, tripped=True)
    assert breaker.check("d1", 109.0).tripped
    fresh = CircuitBreaker(0.05)
    fresh.resume("d1", 110.0, tripped=False)
    assert fresh.check("d1", 104.5).tripped_now  # the peak came back too
    with pytest.raises(ValueError, match="session_peak"):
        fresh.resume("d1", 0.0, tripped=False)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_a_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(ValueError, match="max_session_drawdown"):
        CircuitBreaker(threshold)


def test_check_refuses_missing_day_or_non_finite_equity():
    with pytest.raises(ValueError, match="trading_day"):
        CircuitBreaker(0.1).check(None, 100.0)
    with pytest.raises(ValueError, match="equity"):
        CircuitBreaker(0.1).check("d1", float("nan"))


# ---------------------------------------------------------------------------- targets
def test_guarded_targets_pass_hold_or_flatten():
    weights = np.array([0.3, 0.4])
    calm, hold, flat = CircuitBreaker(0.05), CircuitBreaker(0.05), CircuitBreaker(0.05,
                                                                                  flatten=True)
    for breaker in (hold, flat):
        breaker.check("d1", 100.0)
    assert guarded_targets(weights, calm.check("d1", 100.0)) is weights
    assert guarded_targets(weights, None) is weights
    assert guarded_targets(weights, hold.check("d1", 90.0)) is None
    np.testing.assert_array_equal(guarded_targets(weights, flat.check("d1", 90.0)), [0.0, 0.0])


def held_book():
    portfolio = Portfolio(10_000.0, ["AAA", "BBB"])
    portfolio.positions = np.array([40.0, 60.0])
    portfolio.cash = 1_000.0
    ExecutionCore(CostModel()).mark(portfolio, np.array([100.0, 50.0]))  # equity 8 000
    return portfolio


def test_flatten_sells_every_position_to_zero():
    portfolio = held_book()
    breaker = CircuitBreaker(0.05, flatten=True)
    breaker.check("d1", portfolio.equity)
    prices = np.array([95.0, 45.0])  # equity 7 500: 6.25 % down
    decision = decide(bar_time=BAR, target_weights=np.array([0.5, 0.5]), portfolio=portfolio,
                      prices=prices, market_open=True, trading_day="d1",
                      gate=RiskGate(RiskLimits()), breaker=breaker, ref_session="s1")
    assert decision.verdict == "tripped"
    assert decision.guardrails.reasons == ("session_drawdown",)
    assert decision.guardrails.flattening and decision.guardrails.breaker_tripped_now
    np.testing.assert_array_equal(decision.sized_weights, [0.0, 0.0])
    assert [(o.symbol, o.side, o.quantity) for o in decision.orders] == \
        [("AAA", "SELL", -40.0), ("BBB", "SELL", -60.0)]
    assert all(":S:" in ref for ref in decision.order_refs)
    ExecutionCore(CostModel()).execute(portfolio, decision.orders, Bar.from_prices(prices))
    np.testing.assert_array_equal(portfolio.positions, [0.0, 0.0])


def test_a_trip_without_flatten_holds_the_book():
    portfolio = held_book()
    breaker = CircuitBreaker(0.05)
    breaker.check("d1", portfolio.equity)
    decision = decide(bar_time=BAR, target_weights=np.array([0.1, 0.1]), portfolio=portfolio,
                      prices=np.array([95.0, 45.0]), market_open=True, trading_day="d1",
                      gate=RiskGate(RiskLimits()), breaker=breaker, ref_session="s1")
    assert decision.verdict == "tripped" and decision.orders == ()
    assert decision.sized_weights is None and not decision.guardrails.flattening


# ---------------------------------------------------------------------------- with the gate
def daily_halted_gate():
    gate = RiskGate(RiskLimits(daily_loss_limit=0.02))
    gate.screen_orders([], session="d1", equity=100.0)
    return gate


def test_the_daily_kill_switch_is_part_of_the_verdict():
    gate = daily_halted_gate()
    portfolio = held_book()
    orders = orders_from_targets(portfolio, np.array([0.5, 0.5]), np.array([100.0, 50.0]))
    passed, breaches, verdict = screen_guarded_orders(gate, orders, None, is_open=True,
                                                      trading_day="d2", equity=97.0)
    assert passed == [] and [b.rule for b in breaches] == ["daily_loss_limit"]
    assert verdict.tripped and verdict.reasons == ("daily_loss_limit",)
    assert verdict.daily_halted and verdict.daily_loss_limit == 0.02
    assert verdict.session_drawdown is None


def test_flatten_orders_pass_the_daily_kill_switch_but_not_a_closed_market():
    portfolio = held_book()
    sells = orders_from_targets(portfolio, np.zeros(2), np.array([100.0, 50.0]))
    breaker = CircuitBreaker(0.05, flatten=True)
    breaker.check("d2", 100.0)
    tripped = breaker.check("d2", 97.0 * 0.9)

    gate = daily_halted_gate()
    passed, _, verdict = screen_guarded_orders(gate, sells, tripped, is_open=True,
                                               trading_day="d2", equity=97.0 * 0.9)
    assert passed == sells
    assert verdict.reasons == ("session_drawdown", "daily_loss_limit")

    gate = daily_halted_gate()
    passed, breaches, verdict = screen_guarded_orders(gate, sells, tripped, is_open=False,
                                                      trading_day="d2", equity=97.0 * 0.9)
    assert passed == [] and [b.rule for b in breaches] == ["market_closed"]
    assert verdict.flattening


def test_a_passing_verdict_is_a_flat_row():
    breaker = CircuitBreaker(0.05)
    breaker.check("d1", 100.0)
    _, _, verdict = screen_guarded_orders(RiskGate(RiskLimits()), [], breaker.check("d1", 99.0),
                                          is_open=True, trading_day="d1", equity=99.0)
    row = verdict.as_row()
    assert row["status"] == "pass" and row["reasons"] == ""
    assert row["session_drawdown"] == pytest.approx(0.01)
    assert row["session_drawdown_threshold"] == 0.05 and row["trading_day"] == "d1"
    assert all(isinstance(v, (str, float, int, bool, type(None))) for v in row.values())
