"""Regime features: volatility regime (short vs long realised volatility) and trend (EMA slope, ADX)."""

from __future__ import annotations

import numpy as np
import talib

from tt_platform.features import ops
from tt_platform.features.context import FeatureContext
from tt_platform.features.price import ema_warmup, log_return, realized_volatility, wilder_warmup
from tt_platform.features.registry import feature_function


def volatility_ratio_values(ctx: FeatureContext, short: int, long: int) -> np.ndarray:
    def compute() -> np.ndarray:
        long_vol = ops.rolling_std(log_return(ctx, 1), long)
        return ops.safe_divide(realized_volatility(ctx, short), long_vol)

    return ctx.memo(("volatility_ratio", short, long), compute)


def adx_values(ctx: FeatureContext, period: int) -> np.ndarray:
    return ctx.memo(
        ("adx", period),
        lambda: ops.per_column(talib.ADX, ctx.n_bars, ctx.high, ctx.low, ctx.close, timeperiod=period),
    )


def ema_slope_values(ctx: FeatureContext, period: int, lag: int) -> np.ndarray:
    def compute() -> np.ndarray:
        ema = ops.per_column(talib.EMA, ctx.n_bars, ctx.close, timeperiod=period)
        return ops.pct_change(ema, lag)

    return ctx.memo(("ema_slope", period, lag), compute)


def adx_warmup(period: int) -> int:
    return wilder_warmup(2 * period - 1, period)


@feature_function("volatility_ratio", warmup=lambda short, long: long)
def volatility_ratio(ctx: FeatureContext, short: int = 20, long: int = 120) -> np.ndarray:
    """Realised volatility over ``short`` bars divided by that over ``long`` bars."""
    return volatility_ratio_values(ctx, short, long)


@feature_function(
    "volatility_regime", warmup=lambda short, long, low, high: long, scaling="none"
)
def volatility_regime(
    ctx: FeatureContext, short: int = 20, long: int = 120, low: float = 0.8, high: float = 1.25
) -> np.ndarray:
    """Label: -1 calm (ratio < low), 0 normal, +1 turbulent (ratio > high) from ``volatility_ratio``."""
    ratio = volatility_ratio_values(ctx, short, long)
    label = np.where(ratio > high, 1.0, np.where(ratio < low, -1.0, 0.0))
    return np.where(np.isnan(ratio), np.nan, label)


@feature_function("adx", warmup=lambda period: adx_warmup(period))
def adx(ctx: FeatureContext, period: int = 14) -> np.ndarray:
    """TA-Lib ADX(period): trend strength, 0 .. 100."""
    return adx_values(ctx, period)


@feature_function("di_spread", warmup=lambda period: wilder_warmup(period, period))
def di_spread(ctx: FeatureContext, period: int = 14) -> np.ndarray:
    """(+DI - -DI) / 100 from TA-Lib: trend direction, -1 .. 1."""
    plus = ops.per_column(talib.PLUS_DI, ctx.n_bars, ctx.high, ctx.low, ctx.close, timeperiod=period)
    minus = ops.per_column(talib.MINUS_DI, ctx.n_bars, ctx.high, ctx.low, ctx.close, timeperiod=period)
    return (plus - minus) / 100.0


@feature_function("ema_slope", warmup=lambda period, lag: ema_warmup(period) + lag)
def ema_slope(ctx: FeatureContext, period: int = 20, lag: int = 5) -> np.ndarray:
    """Relative change of TA-Lib EMA(period) over ``lag`` bars."""
    return ema_slope_values(ctx, period, lag)


@feature_function(
    "trend_label",
    warmup=lambda ema_period, lag, adx_period, adx_threshold: max(
        ema_warmup(ema_period) + lag, adx_warmup(adx_period)
    ),
    scaling="none",
)
def trend_label(
    ctx: FeatureContext,
    ema_period: int = 20,
    lag: int = 5,
    adx_period: int = 14,
    adx_threshold: float = 20.0,
) -> np.ndarray:
    """Label: +1 uptrend / -1 downtrend (sign of the EMA slope) when ADX >= threshold, else 0 (range)."""
    slope = ema_slope_values(ctx, ema_period, lag)
    strength = adx_values(ctx, adx_period)
    label = np.where(strength >= adx_threshold, np.sign(slope), 0.0)
    return np.where(np.isnan(slope) | np.isnan(strength), np.nan, label)
