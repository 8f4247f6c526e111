"""The pre-trade rules the live loop will use: notional cap, net leverage, market hours, daily
kill switch."""

import numpy as np
import pytest

from tt_platform.core import RiskGate, RiskLimits
from tt_platform.core.orders import Order

ORDERS = [Order("AAA", 10.0), Order("BBB", -5.0)]


def rules(breaches):
    return [b.rule for b in breaches]


def test_new_limits_are_off_by_default_so_existing_gates_behave_as_before():
    limits = RiskLimits()
    assert limits.max_symbol_notional is None and limits.daily_loss_limit is None
    gate = RiskGate(limits)
    weights, breaches = gate.apply(np.array([0.3, 0.3]))  # no equity needed
    np.testing.assert_allclose(weights, [0.3, 0.3])
    assert breaches == ()
    assert gate.screen_orders(ORDERS) == (ORDERS, ())


def test_symbol_notional_cap_clamps_positions_in_currency():
    gate = RiskGate(RiskLimits(long_only=False, max_symbol_notional=20_000.0))
    weights, breaches = gate.apply(np.array([0.5, -0.3, 0.1]), equity=50_000.0)
    # 20,000 / 50,000 = 0.4 of equity per symbol at most
    np.testing.assert_allclose(weights, [0.4, -0.3, 0.1])
    assert rules(breaches) == ["max_symbol_notional"]
    assert breaches[0].indices == (0,)
    assert breaches[0].requested == (pytest.approx(25_000.0),)
    assert breaches[0].allowed == (pytest.approx(20_000.0),)
    # the same weights are fine for a smaller book
    weights, breaches = gate.apply(np.array([0.5, -0.3, 0.1]), equity=30_000.0)
    assert breaches == ()
    with pytest.raises(ValueError, match="needs the equity"):
        gate.apply(np.array([0.5, 0.0, 0.0]))


def test_net_and_gross_leverage_caps_apply_together():
    gate = RiskGate(RiskLimits(leverage_cap=1.0, per_symbol_cap=1.0, long_only=False,
                               max_net_exposure=0.1))
    weights, breaches = gate.apply(np.array([0.9, 0.3, -0.4]))
    # net 0.8 -> 0.1 by shrinking the long side to 0.5, then gross 0.9 is within the cap
    assert weights.sum() == pytest.approx(0.1)
    assert weights[2] == pytest.approx(-0.4)
    assert np.abs(weights).sum() <= 1.0 + 1e-12
    assert rules(breaches) == ["max_net_exposure"]
    weights, breaches = gate.apply(np.array([0.9, 0.9, -1.0]))
    assert rules(breaches) == ["max_net_exposure", "leverage_cap"]
    assert np.abs(weights).sum() == pytest.approx(1.0)


def test_market_hours_gate_blocks_every_order_outside_the_session():
    gate = RiskGate(RiskLimits())
    orders, breaches = gate.screen_orders(ORDERS, is_open=False)
    assert orders == [] and rules(breaches) == ["market_closed"]
    assert breaches[0].requested == (2.0,)
    assert gate.screen_orders([], is_open=False) == ([], ())  # nothing blocked, nothing reported
    assert gate.screen_orders(ORDERS, is_open=True) == (ORDERS, ())


def test_daily_kill_switch_stops_trading_for_the_rest_of_the_day_then_resets():
    gate = RiskGate(RiskLimits(daily_loss_limit=0.03))
    assert gate.screen_orders(ORDERS, session="d1", equity=100_000.0)[0] == ORDERS
    assert gate.screen_orders(ORDERS, session="d1", equity=98_000.0)[0] == ORDERS  # -2 %
    orders, breaches = gate.screen_orders(ORDERS, session="d1", equity=96_500.0)  # -3.5 %
    assert orders == [] and rules(breaches) == ["daily_loss_limit"]
    assert breaches[0].requested == (pytest.approx(0.035),)
    assert gate.halted
    # a recovery the same day does not lift it
    assert gate.screen_orders(ORDERS, session="d1", equity=101_000.0)[0] == []
    # the next session starts from the last equity seen (101,000) and trades again
    assert gate.screen_orders(ORDERS, session="d2", equity=100_000.0)[0] == ORDERS
    assert not gate.halted


def test_daily_loss_counts_the_overnight_gap_from_the_previous_sessions_last_equity():
    gate = RiskGate(RiskLimits(daily_loss_limit=0.05))
    gate.screen_orders([], session="d1", equity=100_000.0)
    orders, breaches = gate.screen_orders(ORDERS, session="d2", equity=94_000.0)  # gapped -6 %
    assert orders == [] and rules(breaches) == ["daily_loss_limit"]
    gate.reset()  # a new run starts clean
    assert gate.screen_orders(ORDERS, session="d2", equity=94_000.0)[0] == ORDERS


def test_kill_switch_needs_the_session_and_equity():
    gate = RiskGate(RiskLimits(daily_loss_limit=0.05))
    with pytest.raises(ValueError, match="session and equity"):
        gate.screen_orders(ORDERS)


@pytest.mark.parametrize("kwargs, name", [({"max_symbol_notional": -1.0}, "max_symbol_notional"),
                                          ({"max_symbol_notional": float("inf")},
                                           "max_symbol_notional"),
                                          ({"daily_loss_limit": 0.0}, "daily_loss_limit"),
                                          ({"daily_loss_limit": 1.5}, "daily_loss_limit")])
def test_invalid_new_limits_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RiskLimits(**kwargs)
