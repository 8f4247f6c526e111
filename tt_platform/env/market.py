"""Aligned market arrays the environment reads: prices [T, N] and features [T, N, F].

Everything is precomputed once into contiguous numpy arrays so a step is a few index lookups.
Prices are forward-filled from the past only (never back-filled); ``tradable`` says where a
symbol really has a bar, so orders are only sent where a price exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, normalize_bars

TRADING_DAYS_PER_YEAR = 252


class MarketDataError(ValueError):
    """Arrays or frames that cannot form a consistent market; the message names the field."""


def _as_utc_index(timestamps: Any) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(timestamps)
    if index.tz is None:
        raise MarketDataError("MarketData.timestamps must be tz-aware (UTC)")
    # One resolution everywhere (pandas 3 may infer us or s), so spacing and hashes agree.
    index = index.tz_convert("UTC").as_unit("ns")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise MarketDataError("MarketData.timestamps must be strictly increasing")
    return index


# Up to this many rows, one rolling pass over all columns end to end beats pandas' per-column
# passes (the live runner's window of a few hundred bars, once per decision).
FLAT_ROLLING_MAX_ROWS = 1024


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """[T, N] sample standard deviation (ddof 1) of each column over the ``window`` rows ending
    at t; NaN until the window is full and wherever it holds a NaN -- pandas'
    ``rolling(window, min_periods=window).std()`` per column. Short frames go through pandas
    once, the columns laid end to end with ``window - 1`` NaNs between them so no window spans
    two columns (the same values, to within an ulp, at a fraction of the cost)."""
    rows, columns = values.shape
    if rows > FLAT_ROLLING_MAX_ROWS or columns < 2:
        return pd.DataFrame(values).rolling(window, min_periods=window).std(ddof=1).to_numpy()
    gap = window - 1
    padded = np.full((columns, rows + gap), np.nan)
    padded[:, :rows] = values.T
    std = pd.Series(padded.ravel()).rolling(window, min_periods=window).std(ddof=1).to_numpy()
    return std.reshape(columns, rows + gap)[:, :rows].T


def infer_periods_per_year(timestamps: pd.DatetimeIndex) -> float:
    """Bars per year from the median bar spacing: 252 for daily bars, 252 x bars per 6.5 h
    session for intraday bars."""
    if len(timestamps) < 2:
        return float(TRADING_DAYS_PER_YEAR)
    step = float(np.median(np.diff(timestamps.as_unit("ns").asi8))) / 1e9
    if step >= 20 * 3600:  # daily or coarser: count in trading days
        return TRADING_DAYS_PER_YEAR / max(step / 86400.0, 1.0)
    return TRADING_DAYS_PER_YEAR * (6.5 * 3600 / step)


@dataclass(eq=False)
class MarketData:
    """Prices and features on one time grid.

    close: [T, N] float64, forward-filled from the past; NaN only before a symbol's first bar.
    features: [T, N, F] float32; feature_mask: [T, N, F] bool, True where a value is valid.
    open: optional [T, N] float64 (needed for fills at the next open).
    tradable: [T, N] bool, True where the symbol has a bar at t (default: close is finite).
    """

    timestamps: pd.DatetimeIndex
    symbols: list[str]
    close: np.ndarray
    features: np.ndarray
    feature_mask: np.ndarray
    feature_names: list[str]
    open: np.ndarray | None = None
    tradable: np.ndarray | None = None
    feature_set_hash: str | None = None
    periods_per_year: float | None = None
    _vol_cache: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _hash: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.timestamps = _as_utc_index(self.timestamps)
        self.symbols = [str(s) for s in self.symbols]
        self.feature_names = [str(f) for f in self.feature_names]
        t, n, f = len(self.timestamps), len(self.symbols), len(self.feature_names)
        if n == 0:
            raise MarketDataError("MarketData.symbols is empty")
        if len(set(self.symbols)) != n:
            raise MarketDataError(f"MarketData.symbols has duplicates: {self.symbols}")
        self.close = np.ascontiguousarray(self.close, dtype=np.float64)
        self._check_shape("close", self.close, (t, n))
        finite = np.isfinite(self.close)
        if (self.close[finite] <= 0).any():
            row, col = np.argwhere(finite & (self.close <= 0))[0]
            raise MarketDataError(
                f"MarketData.close: price <= 0 for {self.symbols[col]} at {self.timestamps[row]}")
        if self.open is not None:
            self.open = np.ascontiguousarray(self.open, dtype=np.float64)
            self._check_shape("open", self.open, (t, n))
        self.features = np.asarray(self.features, dtype=np.float32)
        self._check_shape("features", self.features, (t, n, f))
        self.feature_mask = np.asarray(self.feature_mask, dtype=bool)
        self._check_shape("feature_mask", self.feature_mask, (t, n, f))
        if self.tradable is None:
            self.tradable = finite
        self.tradable = np.asarray(self.tradable, dtype=bool)
        self._check_shape("tradable", self.tradable, (t, n))
        if (self.tradable & ~finite).any():
            row, col = np.argwhere(self.tradable & ~finite)[0]
            raise MarketDataError(
                f"MarketData.tradable: {self.symbols[col]} is tradable at {self.timestamps[row]} "
                "but has no close price")
        if self.periods_per_year is None:
            self.periods_per_year = infer_periods_per_year(self.timestamps)

    @staticmethod
    def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
        if array.shape != expected:
            raise MarketDataError(f"MarketData.{name} has shape {array.shape}, expected {expected}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(cls, bars: pd.DataFrame, feature_matrix: Any) -> MarketData:
        """Align canonical bars (``tt_platform.data.bars``) with a ``FeatureMatrix``.

        The feature matrix fixes the time grid and the symbols; every one of its symbols must
        have bars. Closes are forward-filled (past only); ``tradable`` marks real bars.
        """
        missing_attrs = [a for a in ("timestamps", "symbols", "feature_names", "values", "mask")
                         if not hasattr(feature_matrix, a)]
        if missing_attrs:
            raise MarketDataError(f"feature_matrix lacks attributes {missing_attrs}")
        bars = normalize_bars(bars[BAR_COLUMNS], origin="MarketData.from_frames bars")
        symbols = [str(s) for s in feature_matrix.symbols]
        absent = sorted(set(symbols) - set(bars["symbol"].unique()))
        if absent:
            raise MarketDataError(f"MarketData.from_frames: no bars for symbols {absent}")
        timestamps = _as_utc_index(feature_matrix.timestamps)
        bars = bars[bars["symbol"].isin(symbols)]
        raw_close = bars.pivot(index="ts", columns="symbol", values="close")
        raw_open = bars.pivot(index="ts", columns="symbol", values="open")
        # Bars between grid points are folded in by the forward fill, never pulled backwards.
        grid = raw_close.index.union(timestamps)
        close_all = raw_close.reindex(index=grid, columns=symbols)
        tradable = close_all.notna().reindex(index=timestamps).to_numpy(dtype=bool)
        close = close_all.ffill().reindex(index=timestamps).to_numpy(dtype=np.float64)
        open_ = raw_open.reindex(index=grid, columns=symbols).reindex(index=timestamps)
        # A bar without its own open cannot be filled at the open: fall back to its close.
        open_arr = np.where(tradable, open_.to_numpy(dtype=np.float64), close)
        return cls(
            timestamps=timestamps,
            symbols=symbols,
            close=close,
            open=open_arr,
            tradable=tradable,
            features=np.asarray(feature_matrix.values, dtype=np.float32),
            feature_mask=np.asarray(feature_matrix.mask, dtype=bool),
            feature_names=list(feature_matrix.feature_names),
            feature_set_hash=getattr(feature_matrix, "feature_set_hash", None),
        )

    # ------------------------------------------------------------------ views
    @property
    def n_steps(self) -> int:
        return len(self.timestamps)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def slice(self, start: Any = None, end: Any = None) -> MarketData:
        """Rows with ``start <= ts <= end`` (either bound may be None), as a new MarketData."""
        lo = 0 if start is None else int(self.timestamps.searchsorted(_utc(start), side="left"))
        hi = self.n_steps if end is None else int(self.timestamps.searchsorted(_utc(end), side="right"))
        return self.take(slice(lo, hi))

    def take(self, rows: slice) -> MarketData:
        """Rows by position (a slice), as a new MarketData."""
        return MarketData(
            timestamps=self.timestamps[rows],
            symbols=list(self.symbols),
            close=self.close[rows],
            features=self.features[rows],
            feature_mask=self.feature_mask[rows],
            feature_names=list(self.feature_names),
            open=None if self.open is None else self.open[rows],
            tradable=self.tradable[rows],
            feature_set_hash=self.feature_set_hash,
            periods_per_year=self.periods_per_year,
        )

    def masked_features(self) -> np.ndarray:
        """Features with invalid or non-finite entries set to 0 (what a policy may see)."""
        valid = self.feature_mask & np.isfinite(self.features)
        return np.where(valid, self.features, np.float32(0.0)).astype(np.float32, copy=False)

    def annualised_volatility(self, lookback: int) -> np.ndarray:
        """[T, N] rolling volatility of close-to-close log returns over ``lookback`` bars
        ending at t (past only), annualised; NaN until ``lookback`` returns exist."""
        if lookback < 2:
            raise MarketDataError(f"volatility lookback must be >= 2, got {lookback}")
        cached = self._vol_cache.get(lookback)
        if cached is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_ret = np.diff(np.log(self.close), axis=0, prepend=np.nan)
            cached = rolling_std(log_ret, lookback) * np.sqrt(self.periods_per_year)
            self._vol_cache[lookback] = cached
        return cached

    def data_hash(self) -> str:
        """sha256 (16 hex) of timestamps, symbols, prices and features: the data snapshot id
        stored with checkpoints so a policy can be traced to the exact data it saw."""
        if self._hash is None:
            digest = hashlib.sha256()
            digest.update(self.timestamps.asi8.tobytes())
            digest.update("\x1f".join(self.symbols).encode())
            digest.update("\x1f".join(self.feature_names).encode())
            for array in (self.close, self.open, self.tradable, self.features, self.feature_mask):
                if array is not None:
                    digest.update(np.ascontiguousarray(array).tobytes())
            self._hash = digest.hexdigest()[:16]
        return self._hash

    @classmethod
    def from_close(cls, timestamps: Any, symbols: Sequence[str], close: np.ndarray,
                   features: np.ndarray | None = None, feature_names: Sequence[str] | None = None,
                   **kwargs: Any) -> MarketData:
        """Build from arrays: no features when ``features`` is None; the mask is
        ``isfinite(features)``."""
        close = np.asarray(close, dtype=np.float64)
        if features is None:
            features = np.zeros(close.shape + (0,), dtype=np.float32)
            feature_names = []
        features = np.asarray(features, dtype=np.float32)
        if feature_names is None:
            feature_names = [f"f{i}" for i in range(features.shape[-1])]
        return cls(timestamps=timestamps, symbols=list(symbols), close=close, features=features,
                   feature_mask=np.isfinite(features), feature_names=list(feature_names), **kwargs)


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
