"""Rule-based strategies produce the weights their rules say, on hand-made data."""

import math

import numpy as np
import pandas as pd
import pytest

from tt_platform.core import CostModel
from tt_platform.evaluation.backtest import Backtester, BarPanel
from tt_platform.evaluation.baselines import rule_based_baselines
from tt_platform.evaluation.strategies import (
    BuyAndHold,
    EqualWeight,
    Momentum,
    VolatilityTargetedEqualWeight,
)

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def panel_from(close, symbols=None):
    close = np.asarray(close, dtype=float)
    timestamps = pd.date_range("2022-01-03", periods=len(close), freq="B", tz="UTC")
    return BarPanel.from_close(timestamps, symbols or SYMBOLS[:close.shape[1]], close,
                               periods_per_year=252.0)


def run(strategy, panel, **kwargs):
    return Backtester(cost_model=CostModel(), **kwargs).run(strategy, panel)


def trends(t=30):
    """AAA +2 %/bar, BBB +1 %, CCC flat, DDD -1 %."""
    steps = np.arange(t)[:, None]
    return 100.0 * (1.0 + np.array([0.02, 0.01, 0.0, -0.01])) ** steps


def test_buy_and_hold_buys_once_and_lets_weights_drift():
    panel = panel_from(trends(10))
    result = run(BuyAndHold(), panel)
    assert list(result.orders["decided_at"].unique()) == [panel.timestamps[0]]
    np.testing.assert_allclose(result.weights.iloc[0], [0.25] * 4)
    last = panel.close[-1] / panel.close[0]
    np.testing.assert_allclose(result.weights.iloc[-1], last / last.sum())


def test_buy_and_hold_of_a_benchmark_or_given_weights():
    panel = panel_from(trends(5))
    np.testing.assert_allclose(run(BuyAndHold(symbol="BBB"), panel).weights.iloc[0], [0, 1, 0, 0])
    np.testing.assert_allclose(
        run(BuyAndHold(np.array([0.1, 0.2, 0.3, 0.4])), panel).weights.iloc[0],
        [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="ZZZ"):
        run(BuyAndHold(symbol="ZZZ"), panel)


def test_buy_and_hold_skips_symbols_not_listed_yet():
    close = trends(5)
    close[:2, 3] = np.nan  # DDD lists on the third bar
    result = run(BuyAndHold(), panel_from(close))
    np.testing.assert_allclose(result.weights.iloc[0], [1 / 3, 1 / 3, 1 / 3, 0.0])
    assert "DDD" not in set(result.orders["symbol"])


def test_equal_weight_rebalances_every_period_only():
    panel = panel_from(trends(12))
    result = run(EqualWeight(every=4), panel)
    assert list(result.orders["decided_at"].unique()) == list(panel.timestamps[[0, 4, 8]])
    for row in (0, 4, 8):
        np.testing.assert_allclose(result.weights.iloc[row], [0.25] * 4)
    assert not np.allclose(result.weights.iloc[3], 0.25)  # drifted in between
    assert result.weights.iloc[0].sum() <= 1.0  # never a rounding-sized leverage breach
    assert result.interventions.empty


def test_volatility_target_scales_equal_weights_to_the_target():
    # both symbols move +1 %, -1 %, +1 %, ...: the basket's daily return is +-1 %
    moves = np.where(np.arange(40) % 2 == 0, 1.01, 1 / 1.01)
    path = 100.0 * np.cumprod(np.concatenate([[1.0], moves[:-1]]))
    panel = panel_from(np.column_stack([path, path]))
    lookback = 20
    state_weights = {}

    def strategy(t, state):
        weights = VolatilityTargetedEqualWeight(0.08, lookback=lookback, every=1)(t, state)
        state_weights[t] = weights
        return weights

    run(strategy, panel, risk_limits=None)
    assert all(state_weights[t] is None for t in range(lookback))  # not enough history yet
    window = path[:lookback + 1]
    returns = window[1:] / window[:-1] - 1.0
    vol = returns.std(ddof=1) * math.sqrt(252)
    np.testing.assert_allclose(state_weights[lookback], [0.04 / vol, 0.04 / vol])
    # a lower volatility than the target is capped at max_gross
    capped = VolatilityTargetedEqualWeight(5.0, lookback=lookback, every=1, max_gross=1.0)
    assert run(capped, panel).weights.iloc[lookback].sum() == pytest.approx(1.0, abs=1e-9)


def test_momentum_holds_the_top_k_by_past_return_skipping_the_recent_bars():
    close = trends(30)
    # CCC is flat until the last 3 bars, then jumps: only the skipped window sees it
    close[-3:, 2] = close[-4, 2] * np.array([1.5, 2.0, 2.5])
    panel = panel_from(close)
    picks = {}

    def strategy(t, state):
        rule = Momentum(top_k=2, lookback=20, skip=3, every=1)
        picks[t] = rule(t, state)
        return picks[t]

    result = run(strategy, panel)
    assert picks[19] is None  # 20 bars of history needed
    np.testing.assert_allclose(picks[29], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(result.weights.iloc[29], [0.5, 0.5, 0.0, 0.0], atol=0.02)


def test_momentum_positive_only_keeps_losers_in_cash():
    close = 100.0 * (1.0 + np.array([0.01, -0.01, -0.02])) ** np.arange(25)[:, None]
    rule = Momentum(top_k=2, lookback=20, skip=1, every=1, positive_only=True)
    result = run(rule, panel_from(close, ["AAA", "BBB", "CCC"]))
    np.testing.assert_allclose(result.weights.iloc[-1], [1.0, 0.0, 0.0], atol=1e-9)


def test_rule_based_baselines_run_every_strategy_through_one_backtester():
    panel = panel_from(trends(40))
    results = rule_based_baselines(panel, Backtester(cost_model=CostModel(1.0, 1.0)),
                                   target_vol=0.1, vol_lookback=10, momentum_lookback=20,
                                   momentum_skip=2, rebalance_every=5)
    assert set(results) == {"buy_and_hold", "equal_weight", "vol_target_equal_weight",
                            "momentum"}
    for name, result in results.items():
        assert result.strategy == name
        assert len(result.equity) == panel.n_steps
        assert result.commission.sum() > 0.0
