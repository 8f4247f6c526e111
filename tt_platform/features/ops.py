"""Causal array operations on ``[T, N]`` float64 panels (time down axis 0, symbols across).

Every window here trails: the value at row t reads rows ``t - window + 1 .. t`` only, so nothing
computed from these helpers can see the future. NaN means "undefined" and propagates; a window
that contains a NaN is undefined (``min_count = window``).
"""

from __future__ import annotations

from collections.abc import Callable

import bottleneck as bn
import numpy as np


def shift(x: np.ndarray, periods: int) -> np.ndarray:
    """Value ``periods`` rows earlier (NaN where there is no such row)."""
    if periods < 0:
        raise ValueError("shift only looks back: periods must be >= 0")
    out = np.full_like(x, np.nan)
    if periods == 0:
        out[:] = x
    elif periods < x.shape[0]:
        out[periods:] = x[:-periods]
    return out


def pct_change(x: np.ndarray, periods: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / shift(x, periods) - 1.0


def log_change(x: np.ndarray, periods: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x / shift(x, periods))


def _along_time(move: Callable[..., np.ndarray], x: np.ndarray, window: int) -> np.ndarray:
    # Panels are Fortran-ordered (each symbol's series contiguous); bottleneck is fastest along
    # the contiguous axis, so run it on the [N, T] transpose view and hand back [T, N].
    if window > x.shape[0]:
        # fewer bars than one window (a first month without history): undefined, as any window
        # not yet full; bottleneck refuses such a window outright
        return np.full(x.shape, np.nan)
    return move(np.asfortranarray(x).T, window, min_count=window, axis=1).T


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return _along_time(bn.move_mean, x, window)


def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    return _along_time(bn.move_std, x, window)


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    return _along_time(bn.move_max, x, window)


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    return _along_time(bn.move_min, x, window)


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x - trailing mean) / trailing std; 0 where the window is constant (nothing to scale).

    NaN wherever the window holds a NaN (the window includes x itself, so NaN x gives NaN).
    """
    mean = rolling_mean(x, window)
    std = rolling_std(x, window)
    # Running-sum variances leave float noise on constant windows: a relative spread below 1e-8
    # counts as constant. Comparisons with NaN are False, so undefined windows stay NaN.
    constant = std <= 1e-8 * np.abs(mean)
    constant |= std == 0
    z = np.subtract(x, mean, out=mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(z, std, out=z)
    z[constant] = 0.0
    return z


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN (not inf) where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    out[~np.isfinite(out)] = np.nan
    return out


def per_column(
    func: Callable[..., np.ndarray | tuple[np.ndarray, ...]],
    n_bars: np.ndarray,
    *arrays: np.ndarray,
    **kwargs: object,
) -> np.ndarray:
    """Apply a 1-D TA-Lib function column by column on each symbol's bars.

    ``arrays`` are compact panels (a symbol's bars fill the top ``n_bars[j]`` rows), so only that
    prefix is handed to TA-Lib: it never sees the NaN padding.
    """
    out = np.full(arrays[0].shape, np.nan, order="F")
    for j, count in enumerate(n_bars):
        if count == 0:
            continue
        columns = [np.ascontiguousarray(a[:count, j]) for a in arrays]
        out[:count, j] = func(*columns, **kwargs)
    return out
