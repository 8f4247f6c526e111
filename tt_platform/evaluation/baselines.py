"""Baselines judged by the same backtester, costs and bars as the policy.

A policy only earns its keep if it beats what needs no learning: holding the universe, holding
cash, and the rule-based strategies of ``tt_platform.evaluation.strategies``. Every baseline
runs through ``Backtester`` -- orders, fills and costs booked by the execution core the policy
is booked with.

``hold_weights``, ``equal_weight_buy_and_hold`` and ``cash`` keep their original signatures
(the evaluation pipeline calls them); ``rule_based_baselines`` runs the whole set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tt_platform.core.costs import CostModel
from tt_platform.evaluation.backtest import Backtester, BacktestResult, BarPanel, Strategy
from tt_platform.evaluation.strategies import (
    BuyAndHold,
    EqualWeight,
    Momentum,
    VolatilityTargetedEqualWeight,
)


def hold_weights(
    timestamps: pd.DatetimeIndex,
    symbols: list[str],
    close: np.ndarray,
    start_index: int,
    weights: np.ndarray,
    *,
    initial_cash: float,
    cost_model: CostModel,
) -> pd.Series:
    """Buy ``weights`` at the close of ``start_index`` and hold to the end; equity per bar
    (the first value is after the purchase and its costs)."""
    if not 0 <= start_index < len(timestamps) - 1:
        raise ValueError(f"start_index {start_index} leaves no bar to hold over ({len(timestamps)} bars)")
    weights = np.asarray(weights, dtype=np.float64)
    start_close = np.asarray(close, dtype=np.float64)[start_index]
    priced = np.isfinite(start_close) & (start_close > 0)
    if (weights[~priced] != 0).any():
        raise ValueError(f"hold_weights: a weighted symbol has no price at {timestamps[start_index]}")
    panel = BarPanel.from_close(timestamps, symbols, close)
    # No risk limits: the baseline holds exactly the weights it is given.
    backtester = Backtester(cost_model=cost_model, risk_limits=None, fill_at="close",
                            initial_cash=initial_cash)
    return backtester.run(BuyAndHold(weights), panel, start=start_index).equity


def equal_weight_buy_and_hold(timestamps, symbols, close, start_index, *, initial_cash, cost_model, gross=1.0) -> pd.Series:
    """Equal weights over the symbols that have a price at the start (a later listing is not
    bought: holding it would need a trade the baseline never makes)."""
    start_close = np.asarray(close, dtype=np.float64)[start_index]
    priced = np.isfinite(start_close) & (start_close > 0)
    if not priced.any():
        raise ValueError(f"no symbol has a price at {timestamps[start_index]}")
    weights = np.where(priced, gross / priced.sum(), 0.0)
    return hold_weights(timestamps, symbols, close, start_index, weights, initial_cash=initial_cash, cost_model=cost_model)


def cash(timestamps: pd.DatetimeIndex, start_index: int, *, initial_cash: float) -> pd.Series:
    return pd.Series(initial_cash, index=timestamps[start_index:], name="equity", dtype="float64")


def rule_based_strategies(*, gross: float = 1.0, rebalance_every: int = 21,
                          target_vol: float | None = None, vol_lookback: int = 63,
                          momentum_top_k: int | None = None, momentum_lookback: int = 252,
                          momentum_skip: int = 21, benchmark: str | None = None,
                          n_symbols: int | None = None) -> dict[str, Strategy]:
    """The standard set: buy-and-hold (of ``benchmark``, else equal weight), equal weight
    rebalanced every ``rebalance_every`` bars, volatility-targeted equal weight (only with a
    ``target_vol``, e.g. the policy's realised volatility) and 12-1 momentum in the top
    ``momentum_top_k`` (default: half of ``n_symbols``; left out when neither is given)."""
    strategies: dict[str, Strategy] = {
        "buy_and_hold": BuyAndHold(symbol=benchmark, gross=gross),
        "equal_weight": EqualWeight(every=rebalance_every, gross=gross),
    }
    if target_vol is not None:
        strategies["vol_target_equal_weight"] = VolatilityTargetedEqualWeight(
            target_vol, lookback=vol_lookback, every=rebalance_every, max_gross=gross)
    top_k = momentum_top_k or (max(1, n_symbols // 2) if n_symbols else None)
    if top_k is not None:
        strategies["momentum"] = Momentum(top_k, lookback=momentum_lookback, skip=momentum_skip,
                                          every=rebalance_every, gross=gross)
    return strategies


def rule_based_baselines(panel: BarPanel, backtester: Backtester, *, start: int = 0,
                         end: int | None = None, **strategy_options) -> dict[str, BacktestResult]:
    """Run ``rule_based_strategies(**strategy_options)`` on ``panel`` with ``backtester``
    (build it with ``Backtester.from_env_config`` to charge and gate what the policy's env
    does); results by strategy name."""
    strategy_options.setdefault("n_symbols", panel.n_symbols)
    return {name: backtester.run(strategy, panel, start=start, end=end)
            for name, strategy in rule_based_strategies(**strategy_options).items()}
