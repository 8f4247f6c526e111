import numpy as np
import pandas as pd
import pytest

from tt_platform.core.costs import CostModel
from tt_platform.evaluation.baselines import cash, equal_weight_buy_and_hold, hold_weights
from tt_platform.evaluation.metrics import drawdown_series, performance_summary


def curve(values):
    return pd.Series(values, index=pd.date_range("2021-01-04", periods=len(values), freq="B", tz="UTC"), dtype=float)


def test_summary_hand_checked_values():
    equity = curve([100, 110, 99, 108.9])
    summary = performance_summary(equity, 252)
    assert summary["total_return"] == pytest.approx(0.089)
    assert summary["max_drawdown"] == pytest.approx(0.1)  # a positive fraction, as in training
    assert summary["win_ratio"] == pytest.approx(2 / 3)
    assert summary["periods"] == 3
    returns = np.array([0.1, -0.1, 0.1])
    assert summary["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * np.sqrt(252))


def test_summary_needs_two_points_and_survives_flat_curve():
    with pytest.raises(ValueError, match="at least 2"):
        performance_summary(curve([100]), 252)
    flat = performance_summary(curve([100, 100, 100]), 252)
    assert flat["sharpe"] is None and flat["max_drawdown"] == 0.0 and flat["win_ratio"] is None


def test_training_and_evaluation_share_one_definition():
    from tt_platform.training.metrics import episode_metrics

    returns = np.array([0.01, -0.02, 0.015, 0.0, 0.005])
    equity = pd.Series(np.concatenate([[1.0], np.cumprod(1 + returns)]))
    evaluation = performance_summary(equity, 252)
    training = episode_metrics(returns=returns, rewards=returns, turnover=np.zeros(5), gross_exposure=np.ones(5),
                               periods_per_year=252, leverage_cap=1.0)
    for name in ("total_return", "sharpe", "sortino", "max_drawdown", "win_ratio"):
        assert training[name] == pytest.approx(evaluation[name]), name


def test_drawdown_series():
    assert drawdown_series(curve([100, 120, 90, 130])).tolist() == pytest.approx([0, 0, -0.25, 0])


def test_buy_and_hold_matches_hand_computation_with_costs():
    ts = pd.date_range("2021-01-04", periods=3, freq="B", tz="UTC")
    close = np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 10.0]])
    costs = CostModel(commission_bps=10.0, slippage_bps=0.0)
    equity = equal_weight_buy_and_hold(ts, ["A", "B"], close, 0, initial_cash=1000.0, cost_model=costs)
    # 500 in each at t0, commission 0.1% of 1000 = 1.0
    assert equity.iloc[0] == pytest.approx(999.0)
    assert equity.iloc[1] == pytest.approx(999.0 + 50 * 1.0)
    assert equity.iloc[2] == pytest.approx(999.0 + 50 * 2.0 - 25 * 10.0)
    assert list(equity.index) == list(ts)


def test_symbols_without_a_price_at_the_start_are_left_out():
    ts = pd.date_range("2021-01-04", periods=3, freq="B", tz="UTC")
    close = np.array([[10.0, np.nan], [11.0, 5.0], [12.0, 6.0]])  # B lists on the second bar
    equity = equal_weight_buy_and_hold(ts, ["A", "B"], close, 0, initial_cash=100.0, cost_model=CostModel(0.0, 0.0))
    assert equity.tolist() == pytest.approx([100.0, 110.0, 120.0])


def test_missing_price_keeps_last_price_and_bad_start_raises():
    ts = pd.date_range("2021-01-04", periods=3, freq="B", tz="UTC")
    close = np.array([[10.0], [np.nan], [12.0]])
    equity = hold_weights(ts, ["A"], close, 0, np.array([1.0]), initial_cash=100.0, cost_model=CostModel(0.0, 0.0))
    assert equity.tolist() == pytest.approx([100.0, 100.0, 120.0])
    with pytest.raises(ValueError, match="leaves no bar"):
        hold_weights(ts, ["A"], close, 2, np.array([1.0]), initial_cash=100.0, cost_model=CostModel(0.0, 0.0))


def test_cash_baseline_is_flat():
    ts = pd.date_range("2021-01-04", periods=5, freq="B", tz="UTC")
    assert cash(ts, 1, initial_cash=5.0).tolist() == [5.0] * 4
