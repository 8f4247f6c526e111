import json

import numpy as np
import pandas as pd
import pytest

from tt_platform.evaluation.metrics import (
    TRADING_METRICS,
    cagr,
    exposure_metrics,
    hit_rate,
    performance_summary,
    profit_factor,
    trading_metrics,
    turnover_metrics,
    win_ratio,
)


def curve(values):
    return pd.Series(values, index=pd.date_range("2021-01-04", periods=len(values), freq="B", tz="UTC"), dtype=float)


# returns 0.1, -0.1, 0.1, 0.0; currency P&L +10, -11, +9.9, 0
EQUITY = curve([100, 110, 99, 108.9, 108.9])


def test_trading_metrics_hand_checked_values():
    metrics = trading_metrics(EQUITY, gross_exposure=[1.0, 1.0, 0.5, 0.5], turnover=[0.5, 0.0, 0.25, 0.25],
                              periods_per_year=4)
    assert metrics["cagr"] == pytest.approx(0.089)  # four quarterly periods: one year, so CAGR = total return
    assert metrics["cagr"] == metrics["annual_return"]
    assert metrics["profit_factor"] == pytest.approx(19.9 / 11.0)
    assert metrics["hit_rate"] == pytest.approx(2 / 4)  # the invested flat period is a miss
    assert metrics["win_ratio"] == pytest.approx(2 / 3)  # the flat period is left out
    assert metrics["exposure"] == pytest.approx(0.75)
    assert metrics["time_invested"] == 1.0
    assert metrics["turnover"] == pytest.approx(0.25)
    assert metrics["annual_turnover"] == pytest.approx(1.0)
    assert metrics["periods"] == 4


def test_trading_metrics_extend_the_performance_summary():
    metrics = trading_metrics(EQUITY, periods_per_year=252)
    assert tuple(metrics) == TRADING_METRICS
    for name, value in performance_summary(EQUITY, 252).items():
        assert metrics[name] == value, name


def test_trading_metrics_are_json_safe_and_undefined_values_are_none():
    metrics = trading_metrics(curve([100, 100, 100]), periods_per_year=252)
    assert all(value is None or type(value) is float for value in metrics.values())
    json.dumps(metrics, allow_nan=False)
    for name in ("sharpe", "win_ratio", "profit_factor", "hit_rate", "turnover", "annual_turnover", "exposure",
                 "time_invested"):
        assert metrics[name] is None, name
    assert metrics["cagr"] == 0.0 and metrics["max_drawdown"] == 0.0


def test_hit_rate_counts_only_invested_periods():
    returns = np.array([0.1, -0.1, 0.1, 0.0])
    assert hit_rate(returns, np.array([0.0, 1.0, 1.0, 0.0])) == pytest.approx(0.5)
    assert hit_rate(returns, np.array([1.0, 0.0, 1.0, 0.0])) == 1.0
    assert hit_rate(returns, np.zeros(4)) is None  # never invested
    assert hit_rate(returns, None) is None  # exposure unknown


def test_hit_rate_and_win_ratio_differ_on_flat_invested_periods_and_costs_in_cash():
    # invested: +1 %, flat, flat; in cash: -0.1 % (a cost)
    returns = np.array([0.01, 0.0, 0.0, -0.001])
    exposure = np.array([1.0, 1.0, 1.0, 0.0])
    assert hit_rate(returns, exposure) == pytest.approx(1 / 3)  # 1 of 3 invested periods paid
    assert win_ratio(returns) == pytest.approx(1 / 2)  # 1 of 2 periods that moved equity was up
    assert win_ratio(np.zeros(3)) is None


def test_profit_factor_is_gross_gains_over_gross_losses():
    assert profit_factor(np.array([0.1, -0.1, 0.1, 0.0])) == pytest.approx(2.0)
    assert profit_factor(np.array([-1.0, -3.0])) == 0.0  # losses only
    assert profit_factor(np.array([1.0, 0.0])) is None  # no losses: undefined, not infinite
    assert profit_factor(np.array([])) is None


def test_cagr_is_empyricals_annual_return():
    returns = np.array([0.01, -0.005, 0.02, 0.0, 0.003])
    assert cagr(returns, 252) == pytest.approx((1.01 * 0.995 * 1.02 * 1.003) ** (252 / 5) - 1)
    assert cagr(np.array([]), 252) is None


def test_turnover_and_exposure_from_per_period_series():
    assert turnover_metrics(np.array([0.2, 0.0, 0.1]), 252) == pytest.approx({"turnover": 0.1, "annual_turnover": 25.2})
    assert turnover_metrics(None, 252) == {"turnover": None, "annual_turnover": None}
    assert exposure_metrics(np.array([1.5, 0.0, 0.0, 0.5])) == pytest.approx({"exposure": 0.5, "time_invested": 0.5})
    assert exposure_metrics(np.array([])) == {"exposure": None, "time_invested": None}


def test_never_invested_portfolio_has_no_hit_rate_but_zero_time_invested():
    metrics = trading_metrics(EQUITY, gross_exposure=np.zeros(4), turnover=np.zeros(4), periods_per_year=252)
    assert metrics["hit_rate"] is None
    assert metrics["time_invested"] == 0.0 and metrics["exposure"] == 0.0 and metrics["turnover"] == 0.0


def test_trading_metrics_refuse_misaligned_or_negative_series():
    with pytest.raises(ValueError, match="one value per return"):
        trading_metrics(EQUITY, gross_exposure=np.ones(5), periods_per_year=252)  # one per equity point
    with pytest.raises(ValueError, match="negative"):
        trading_metrics(EQUITY, gross_exposure=[1.0, -1.0, 1.0, 1.0], periods_per_year=252)
    with pytest.raises(ValueError, match="NaN"):
        trading_metrics(EQUITY, turnover=[0.1, np.nan, 0.0, 0.0], periods_per_year=252)
    with pytest.raises(ValueError, match="at least 2"):
        trading_metrics(curve([100]), periods_per_year=252)
