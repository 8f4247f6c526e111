import numpy as np
import pytest

from tt_platform.training.metrics import episode_metrics


def test_metrics_by_hand():
    returns = np.array([0.10, -0.05, 0.0, 0.02])
    metrics = episode_metrics(returns=returns, rewards=np.array([1.0, -0.5, 0.0, 0.2]),
                              turnover=np.array([1.0, 0.5, 0.0, 0.5]),
                              gross_exposure=np.array([0.5, 0.5, 0.25, 0.25]),
                              periods_per_year=252, leverage_cap=0.5,
                              costs=np.array([1.0, 2.0, 0.0, 0.5]))
    assert metrics["reward_sum"] == pytest.approx(0.7)
    assert metrics["total_return"] == pytest.approx(1.10 * 0.95 * 1.0 * 1.02 - 1)
    assert metrics["max_drawdown"] == pytest.approx(0.05)
    assert metrics["turnover"] == pytest.approx(0.5)
    assert metrics["exposure_utilisation"] == pytest.approx(0.75)
    assert metrics["win_ratio"] == pytest.approx(2 / 3)  # the flat step is not counted
    assert metrics["total_cost"] == pytest.approx(3.5)
    expected_sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert metrics["sharpe"] == pytest.approx(expected_sharpe)
    assert metrics["sortino"] > metrics["sharpe"]


def test_undefined_ratios_are_none_not_nan():
    flat = episode_metrics(returns=np.zeros(5), rewards=np.zeros(5), turnover=np.zeros(5),
                           gross_exposure=np.zeros(5), periods_per_year=252, leverage_cap=1.0)
    assert flat["sharpe"] is None and flat["win_ratio"] is None
    winning = episode_metrics(returns=np.full(5, 0.01), rewards=np.zeros(5), turnover=np.zeros(5),
                              gross_exposure=np.zeros(5), periods_per_year=252, leverage_cap=1.0)
    assert winning["sortino"] is None
    assert winning["win_ratio"] == 1.0
