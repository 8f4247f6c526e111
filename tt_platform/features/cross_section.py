"""Cross-sectional features: each symbol against the benchmark, the universe median, and ranks.

The value at timestamp t compares only the symbols that have a bar at t, using each symbol's own
trailing window ending at that bar; a symbol without a bar at t gets no value (nothing is carried
forward). When the benchmark symbol is not in the universe, relative strength falls back to the
equal-weight universe: the cross-sectional mean of the window returns at t (``compute_features``
logs this and records it in ``FeatureMatrix.benchmark``).
"""

from __future__ import annotations

import warnings

import bottleneck as bn
import numpy as np

from tt_platform.features.context import FeatureContext
from tt_platform.features.price import simple_return
from tt_platform.features.registry import feature_function

EQUAL_WEIGHT_BENCHMARK = "equal_weight_universe"


def grid_return(ctx: FeatureContext, window: int) -> np.ndarray:
    return ctx.memo(("grid_return", window), lambda: ctx.layout.to_grid(simple_return(ctx, window)))


def benchmark_return(ctx: FeatureContext, window: int) -> np.ndarray:
    """[T, 1] benchmark window return on the grid (NaN where the benchmark has no bar)."""
    returns = grid_return(ctx, window)
    column = ctx.benchmark_index
    if column is not None:
        return returns[:, column : column + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bn.nanmean(returns, axis=1)[:, None]


@feature_function("relative_strength_benchmark", warmup=lambda window: window)
def relative_strength_benchmark(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Window return minus the benchmark's window return at the same timestamp."""
    return ctx.layout.to_compact(grid_return(ctx, window) - benchmark_return(ctx, window))


@feature_function("relative_strength_median", warmup=lambda window: window)
def relative_strength_median(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Window return minus the median window return of the symbols present at that timestamp."""
    returns = grid_return(ctx, window)
    median = bn.nanmedian(returns, axis=1)[:, None]
    return ctx.layout.to_compact(returns - median)


@feature_function("momentum_rank", warmup=lambda window: window, scaling="none")
def momentum_rank(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Percentile rank (0 worst .. 1 best, ties averaged) of the window return at that timestamp.

    A lone symbol with a defined return ranks 0.5.
    """
    returns = grid_return(ctx, window)
    ranks = bn.nanrankdata(returns, axis=1)  # 1-based average ranks, NaN stays NaN
    count = np.sum(~np.isnan(returns), axis=1, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(count > 1, (ranks - 1.0) / (count - 1.0), 0.5)
    pct[np.isnan(returns)] = np.nan
    return ctx.layout.to_compact(pct)
