import numpy as np
import pytest

from tt_platform.core import RiskGate, RiskLimits


def rules(breaches):
    return [b.rule for b in breaches]


def test_leverage_clamp_scales_proportionally():
    gate = RiskGate(RiskLimits(leverage_cap=1.0, per_symbol_cap=1.0, long_only=False))
    weights, breaches = gate.apply(np.array([0.8, -0.6, 0.6]))
    np.testing.assert_allclose(weights, np.array([0.8, -0.6, 0.6]) / 2.0)
    assert np.abs(weights).sum() == pytest.approx(1.0)
    assert rules(breaches) == ["leverage_cap"]
    assert breaches[0].requested == (pytest.approx(2.0),)


def test_per_symbol_cap_then_leverage():
    gate = RiskGate(RiskLimits(leverage_cap=0.5, per_symbol_cap=0.2, long_only=False))
    weights, breaches = gate.apply(np.array([0.9, -0.3, 0.1]))
    # caps first: [0.2, -0.2, 0.1] (gross 0.5, within the cap)
    np.testing.assert_allclose(weights, [0.2, -0.2, 0.1])
    assert rules(breaches) == ["per_symbol_cap"]
    assert breaches[0].indices == (0, 1)
    assert breaches[0].allowed == (0.2, -0.2)
    assert "S0 0.9->0.2" in breaches[0].describe(["S0", "S1", "S2"])


def test_long_only_removes_shorts():
    gate = RiskGate(RiskLimits(leverage_cap=1.0, per_symbol_cap=1.0, long_only=True))
    weights, breaches = gate.apply(np.array([0.3, -0.4]))
    np.testing.assert_allclose(weights, [0.3, 0.0])
    assert rules(breaches) == ["long_only"]
    assert breaches[0].indices == (1,)


def test_non_finite_weights_become_flat_and_are_reported():
    gate = RiskGate(RiskLimits(long_only=False))
    weights, breaches = gate.apply(np.array([np.nan, 0.2, np.inf]))
    np.testing.assert_allclose(weights, [0.0, 0.2, 0.0])
    assert rules(breaches)[0] == "non_finite_weight"
    assert breaches[0].indices == (0, 2)


def test_drawdown_kill_switch_goes_flat():
    gate = RiskGate(RiskLimits(max_drawdown=0.2))
    weights, breaches = gate.apply(np.array([0.3, 0.3]), drawdown=0.25)
    np.testing.assert_array_equal(weights, [0.0, 0.0])
    assert rules(breaches) == ["max_drawdown"]
    weights, breaches = gate.apply(np.array([0.3, 0.3]), drawdown=0.1)
    np.testing.assert_allclose(weights, [0.3, 0.3])
    assert breaches == ()


def test_net_exposure_shrinks_the_excess_side_only():
    gate = RiskGate(RiskLimits(leverage_cap=2.0, per_symbol_cap=1.0, long_only=False,
                               max_net_exposure=0.2))
    weights, breaches = gate.apply(np.array([0.6, 0.4, -0.5]))
    assert weights.sum() == pytest.approx(0.2)
    assert weights[2] == pytest.approx(-0.5)  # the short hedge is kept
    assert weights[0] / weights[1] == pytest.approx(1.5)
    assert rules(breaches) == ["max_net_exposure"]


@pytest.mark.parametrize("kwargs, name", [({"leverage_cap": 0}, "leverage_cap"),
                                          ({"per_symbol_cap": -1}, "per_symbol_cap"),
                                          ({"max_drawdown": 1.5}, "max_drawdown")])
def test_invalid_limits_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RiskLimits(**kwargs)


def test_resume_daily_restores_the_kill_switch_and_refuses_bad_numbers():
    gate = RiskGate(RiskLimits(daily_loss_limit=0.02))
    gate.resume_daily("2024-03-12", start_equity=100.0, last_equity=97.5, halted=True)
    assert gate.halted
    gate.screen_orders([], is_open=True, session="2024-03-12", equity=99.9)
    assert gate.halted  # tripped for the rest of the day
    gate.screen_orders([], is_open=True, session="2024-03-13", equity=99.9)
    assert not gate.halted
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="start_equity must be a finite number > 0"):
            gate.resume_daily("d", start_equity=bad, last_equity=1.0, halted=False)
    with pytest.raises(ValueError, match="session is None"):
        gate.resume_daily(None, start_equity=1.0, last_equity=1.0, halted=False)
