"""Volume features on log volume (volume spans orders of magnitude and may be 0)."""

from __future__ import annotations

import numpy as np

from tt_platform.features import ops
from tt_platform.features.context import FeatureContext
from tt_platform.features.registry import feature_function


def log_volume(ctx: FeatureContext) -> np.ndarray:
    return ctx.memo(("log_volume",), lambda: np.log1p(ctx.volume))


def volume_zscore_values(ctx: FeatureContext, window: int) -> np.ndarray:
    return ctx.memo(("volume_zscore", window), lambda: ops.rolling_zscore(log_volume(ctx), window))


@feature_function("volume_zscore", warmup=lambda window: window - 1)
def volume_zscore(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Rolling z-score of log(1 + volume) over the last ``window`` bars (0 on a constant window)."""
    return volume_zscore_values(ctx, window)


@feature_function("volume_spike", warmup=lambda window, threshold: window - 1, scaling="none")
def volume_spike(ctx: FeatureContext, window: int = 20, threshold: float = 2.0) -> np.ndarray:
    """1.0 when the volume z-score exceeds ``threshold``, else 0.0."""
    z = volume_zscore_values(ctx, window)
    return np.where(np.isnan(z), np.nan, (z > threshold).astype(np.float64))


@feature_function("volume_ratio", warmup=lambda window: window - 1)
def volume_ratio(ctx: FeatureContext, window: int = 20) -> np.ndarray:
    """Log of volume over its rolling geometric mean: log1p(v) - mean(log1p(v), window)."""
    lv = log_volume(ctx)
    return lv - ops.rolling_mean(lv, window)
