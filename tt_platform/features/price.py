"""Price features: returns, rolling mean and volatility, ATR, true range, gaps, range compression.

All functions work on the compact layout (each symbol's own bars) and count windows in bars, not
calendar days, so they apply unchanged to minute bars.
"""

from __future__ import annotations

import numpy as np
import talib

from tt_platform.features import ops
from tt_platform.features.context import FeatureContext
from tt_platform.features.registry import feature_function

# Wilder smoothing (ATR, RSI, ADX) and EMAs remember their seed forever. Counting the bars needed
# until the seed's weight falls below e^-6 (~0.25 %) into the warmup makes a recompute from
# ``warmup_bars`` of history agree with a recompute from the full history.
WILDER_SETTLE_PERIODS = 6
EMA_SETTLE_PERIODS = 3


def wilder_warmup(lookback: int, period: int) -> int:
    return lookback + WILDER_SETTLE_PERIODS * period


def ema_warmup(period: int) -> int:
    return period - 1 + EMA_SETTLE_PERIODS * (period + 1)


def simple_return(ctx: FeatureContext, window: int) -> np.ndarray:
    return ctx.memo(("return", window), lambda: ops.pct_change(ctx.close, window))


def log_return(ctx: FeatureContext, window: int) -> np.ndarray:
    return ctx.memo(("log_return", window), lambda: ops.log_change(ctx.close, window))


def true_range(ctx: FeatureContext) -> np.ndarray:
    return ctx.memo(
        ("true_range",), lambda: ops.per_column(talib.TRANGE, ctx.n_bars, ctx.high, ctx.low, ctx.close)
    )


def average_true_range(ctx: FeatureContext, period: int) -> np.ndarray:
    return ctx.memo(
        ("atr", period),
        lambda: ops.per_column(talib.ATR, ctx.n_bars, ctx.high, ctx.low, ctx.close, timeperiod=period),
    )


def realized_volatility(ctx: FeatureContext, window: int) -> np.ndarray:
    return ctx.memo(("volatility", window), lambda: ops.rolling_std(log_return(ctx, 1), window))


@feature_function("return", warmup=lambda window: window)
def return_feature(ctx: FeatureContext, window: int = 1) -> np.ndarray:
    """Simple return over the last ``window`` bars: close_t / close_{t-window} - 1."""
    return simple_return(ctx, window)


@feature_function("log_return", warmup=lambda window: window)
def log_return_feature(ctx: FeatureContext, window: int = 1) -> np.ndarray:
    """Log return over the last ``window`` bars."""
    return log_return(ctx, window)


@feature_function("sma_deviation", warmup=lambda window: window - 1)
def sma_deviation(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Close relative to its rolling mean: close / SMA(close, window) - 1."""
    return ctx.close / ops.rolling_mean(ctx.close, window) - 1.0


@feature_function("volatility", warmup=lambda window: window)
def volatility(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Rolling standard deviation of 1-bar log returns (per bar, not annualised)."""
    return realized_volatility(ctx, window)


@feature_function("atr_pct", warmup=lambda period: wilder_warmup(period, period))
def atr_pct(ctx: FeatureContext, period: int = 14) -> np.ndarray:
    """TA-Lib ATR(period) as a fraction of the close."""
    return average_true_range(ctx, period) / ctx.close


@feature_function("true_range_pct", warmup=lambda: 1)
def true_range_pct(ctx: FeatureContext) -> np.ndarray:
    """TA-Lib true range as a fraction of the previous close."""
    return true_range(ctx) / ops.shift(ctx.close, 1)


@feature_function("gap_pct", warmup=lambda: 1)
def gap_pct(ctx: FeatureContext) -> np.ndarray:
    """Open relative to the previous bar's close: open_t / close_{t-1} - 1."""
    return ctx.open / ops.shift(ctx.close, 1) - 1.0


@feature_function("range_compression", warmup=lambda short, long: long)
def range_compression(ctx: FeatureContext, short: int = 5, long: int = 20) -> np.ndarray:
    """Mean true range of the last ``short`` bars over that of the last ``long`` bars (< 1: compressing)."""
    tr = true_range(ctx)
    return ops.safe_divide(ops.rolling_mean(tr, short), ops.rolling_mean(tr, long))


@feature_function("close_location", warmup=lambda: 0, scaling="none")
def close_location(ctx: FeatureContext) -> np.ndarray:
    """Where the close sits in the bar's range, 0 (low) .. 1 (high); 0.5 for a flat bar."""
    spread = ctx.high - ctx.low
    with np.errstate(divide="ignore", invalid="ignore"):
        location = (ctx.close - ctx.low) / spread
    return np.where(spread > 0, np.clip(location, 0.0, 1.0), np.where(np.isnan(spread), np.nan, 0.5))


@feature_function("distance_from_high", warmup=lambda window: window - 1)
def distance_from_high(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Close relative to the highest high of the last ``window`` bars (<= 0)."""
    return ctx.close / ops.rolling_max(ctx.high, window) - 1.0


@feature_function("distance_from_low", warmup=lambda window: window - 1)
def distance_from_low(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Close relative to the lowest low of the last ``window`` bars (>= 0)."""
    return ctx.close / ops.rolling_min(ctx.low, window) - 1.0


@feature_function("rsi", warmup=lambda period: wilder_warmup(period, period))
def rsi(ctx: FeatureContext, period: int = 14) -> np.ndarray:
    """TA-Lib RSI(period), 0 .. 100."""
    return ops.per_column(talib.RSI, ctx.n_bars, ctx.close, timeperiod=period)
