"""Baseline strategies judged on the same execution core, costs and bars as the policy.

A policy only earns its keep if it beats what needs no learning: holding the universe (equal
weight, bought once) and holding cash. Both run through ``ExecutionCore`` so their costs are
booked exactly as the policy's are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CostModel
from tt_platform.core.execution import ExecutionCore


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
    """Buy ``weights`` at the close of ``start_index`` and hold to the end; equity per bar."""
    if not 0 <= start_index < len(timestamps) - 1:
        raise ValueError(f"start_index {start_index} leaves no bar to hold over ({len(timestamps)} bars)")
    portfolio = Portfolio(initial_cash, symbols)
    core = ExecutionCore(cost_model)
    weights = np.asarray(weights, dtype=np.float64)
    priced = np.isfinite(close[start_index]) & (close[start_index] > 0)
    if (weights[~priced] != 0).any():
        raise ValueError(f"hold_weights: a weighted symbol has no price at {timestamps[start_index]}")
    # an unpriced symbol carries no weight; it gets a placeholder price the core accepts
    prices = np.where(priced, close[start_index], 1.0)
    core.rebalance(portfolio, weights, prices)
    equity = [core.mark(portfolio, prices)]
    for t in range(start_index + 1, len(timestamps)):
        # a symbol without a bar keeps its last price (no look-ahead to the next bar)
        prices = np.where(np.isfinite(close[t]) & (close[t] > 0), close[t], prices)
        equity.append(core.mark(portfolio, prices))
    return pd.Series(equity, index=timestamps[start_index:], name="equity")


def equal_weight_buy_and_hold(timestamps, symbols, close, start_index, *, initial_cash, cost_model, gross=1.0) -> pd.Series:
    """Equal weights over the symbols that have a price at the start (a later listing is not
    bought: holding it would need a trade the baseline never makes)."""
    priced = np.isfinite(close[start_index]) & (close[start_index] > 0)
    if not priced.any():
        raise ValueError(f"no symbol has a price at {timestamps[start_index]}")
    weights = np.where(priced, gross / priced.sum(), 0.0)
    return hold_weights(timestamps, symbols, close, start_index, weights, initial_cash=initial_cash, cost_model=cost_model)


def cash(timestamps: pd.DatetimeIndex, start_index: int, *, initial_cash: float) -> pd.Series:
    return pd.Series(initial_cash, index=timestamps[start_index:], name="equity", dtype="float64")
