"""Rolling z-score normalization with a warmup mask, per symbol and per feature.

Works in the compact layout (row k = a symbol's k-th bar): a value is valid when the symbol's bar
index is at or past the feature's own warmup, the raw value is defined, and — for z-scored
features — the trailing ``window`` raw values are all valid. Values before the feature's warmup
never enter a window, so an unsettled EMA seed cannot leak into later statistics.
"""

from __future__ import annotations

import numpy as np

from tt_platform.features import ops

# A z-score beyond this is clipped: one extreme bar should not dominate a policy's input scale.
ZSCORE_CLIP = 10.0


def normalize_feature(
    raw: np.ndarray, *, warmup: int, window: int, scaling: str
) -> tuple[np.ndarray, np.ndarray]:
    """Compact raw [T, N] -> (normalized float64 with NaN where invalid, valid mask)."""
    usable = raw.copy(order="K")
    usable[: min(warmup, usable.shape[0])] = np.nan
    infinite = np.isinf(usable)
    if infinite.any():
        usable[infinite] = np.nan
    if scaling == "zscore":
        normalized = ops.rolling_zscore(usable, window)
        np.clip(normalized, -ZSCORE_CLIP, ZSCORE_CLIP, out=normalized)
    elif scaling == "none":
        normalized = usable
    else:
        raise ValueError(f"unknown scaling {scaling!r}")
    return normalized, ~np.isnan(normalized)
