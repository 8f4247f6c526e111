"""Canonical long bars -> wide ``[T, N]`` arrays, in two row layouts.

*Grid* rows are the union of all bar timestamps; a symbol without a bar at t holds NaN there.
*Compact* rows are each symbol's own bars: row k of column j is symbol j's k-th bar, with NaN
padding after its last bar. Per-symbol time-series features are computed in the compact layout,
so "the last 20 bars" means the symbol's last 20 bars even when symbols trade at different times
(intraday data, listings, halts), and nothing is forward-filled. Cross-sectional features move
to the grid, compare symbols at the same timestamp, and move back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, BarValidationError

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Layout:
    """Mapping between grid rows and compact rows for every symbol."""

    present: np.ndarray  # bool [T, N] (grid): symbol has a bar at timestamp t
    n_bars: np.ndarray  # int [N]: bars per symbol
    order: np.ndarray | None  # int [T, N]: grid row of compact row k (None when dense)
    rank: np.ndarray | None  # int [T, N]: compact row of grid row t (None when dense)

    @classmethod
    def from_present(cls, present: np.ndarray) -> Layout:
        n_bars = present.sum(axis=0)
        if present.all():
            return cls(present=present, n_bars=n_bars, order=None, rank=None)
        # Stable sort of "absent" flags puts each symbol's bars first, in time order.
        order = np.argsort(~present, axis=0, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(present.shape[0])[:, None], axis=0)
        return cls(present=present, n_bars=n_bars, order=order, rank=rank)

    @property
    def dense(self) -> bool:
        return self.order is None

    @property
    def compact_valid(self) -> np.ndarray:
        """bool [T, N]: compact row k holds a bar (k < n_bars)."""
        return np.arange(self.present.shape[0])[:, None] < self.n_bars[None, :]

    def to_grid(self, compact: np.ndarray, fill: object = None) -> np.ndarray:
        """Compact [T, N] or [T, N, F] -> grid, ``fill`` (default NaN / False) where the symbol has no bar."""
        if self.dense:
            return compact
        index = self.rank if compact.ndim == 2 else self.rank[:, :, None]
        grid = np.take_along_axis(compact, index, axis=0)
        absent = ~self.present if compact.ndim == 2 else ~self.present[:, :, None]
        return np.where(absent, _missing(grid.dtype) if fill is None else fill, grid)

    def to_compact(self, grid: np.ndarray) -> np.ndarray:
        """Grid [T, N] -> compact, NaN padding after each symbol's last bar."""
        if self.dense:
            return grid
        compact = np.take_along_axis(grid, self.order, axis=0)
        return np.where(self.compact_valid, compact, np.nan)


def _missing(dtype: np.dtype) -> object:
    if dtype == np.bool_:
        return False
    return np.nan


@dataclass(frozen=True)
class BarPanel:
    timestamps: pd.DatetimeIndex
    symbols: list[str]
    layout: Layout
    compact: dict[str, np.ndarray]  # field -> float64 [T, N] in compact layout

    @classmethod
    def from_bars(cls, bars: pd.DataFrame, origin: str = "bars") -> BarPanel:
        missing = [c for c in BAR_COLUMNS if c not in bars.columns]
        if missing:
            raise BarValidationError(f"{origin}: missing columns {missing}")
        if bars.empty:
            raise BarValidationError(f"{origin}: no bars to compute features from")
        ts = bars["ts"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            raise BarValidationError(
                f"{origin}: column 'ts' must be tz-aware UTC (got {ts.dtype}); use normalize_bars()"
            )
        ts_ns = ts.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8
        # hash-based factorize: much cheaper than a full sort of every bar's timestamp
        row, times = pd.factorize(ts_ns, sort=True)
        col_codes, symbols = pd.factorize(bars["symbol"].astype(str), sort=True)
        n_t, n_s = len(times), len(symbols)
        flat = row.astype(np.int64) * n_s + col_codes
        counts = np.bincount(flat, minlength=n_t * n_s)
        if (counts > 1).any():
            dup = int(np.flatnonzero(counts > 1)[0])
            raise BarValidationError(
                f"{origin}: duplicate bar for {symbols[dup % n_s]} at "
                f"{pd.Timestamp(times[dup // n_s], tz='UTC')}"
            )
        present = (counts == 1).reshape(n_t, n_s)
        layout = Layout.from_present(present)
        compact: dict[str, np.ndarray] = {}
        for field in FIELDS:
            values = pd.to_numeric(bars[field], errors="raise").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if field != "volume":
                bad |= values <= 0
            else:
                bad |= values < 0
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise BarValidationError(
                    f"{origin}: invalid {field}={float(values[i])!r} for {bars['symbol'].iloc[i]} at "
                    f"{bars['ts'].iloc[i]} (row {bars.index[i]})"
                )
            grid = np.full(n_t * n_s, np.nan)
            grid[flat] = values
            # Fortran order: each symbol's series is contiguous for the rolling and TA-Lib kernels
            compact[field] = np.asfortranarray(layout.to_compact(grid.reshape(n_t, n_s)))
        return cls(
            timestamps=pd.DatetimeIndex(pd.to_datetime(times, utc=True)),
            symbols=[str(s) for s in symbols],
            layout=layout,
            compact=compact,
        )

    @classmethod
    def from_arrays(cls, ts_ns: np.ndarray, codes: np.ndarray, names: list[str], values: np.ndarray) -> BarPanel:
        """The panel of bars already held as arrays and already valid (the live runner's window):
        ``ts_ns`` UTC nanoseconds and ``codes`` (indices into ``names``, sorted) one per bar,
        ``values`` [n, 5] in ``FIELDS`` order, one bar per (stamp, code). The same panel as
        ``from_bars`` on those bars, without a frame to factorize and check again."""
        times, row = np.unique(ts_ns, return_inverse=True)
        present_codes, col = np.unique(codes, return_inverse=True)
        n_t, n_s = len(times), len(present_codes)
        flat = row.astype(np.int64) * n_s + col
        present = np.zeros(n_t * n_s, dtype=bool)
        present[flat] = True
        if int(present.sum()) != len(flat):
            raise BarValidationError("bars: more than one bar for a symbol at one stamp")
        layout = Layout.from_present(present.reshape(n_t, n_s))
        compact: dict[str, np.ndarray] = {}
        for i, field in enumerate(FIELDS):
            grid = np.full(n_t * n_s, np.nan)
            grid[flat] = values[:, i]
            compact[field] = np.asfortranarray(layout.to_compact(grid.reshape(n_t, n_s)))
        return cls(
            timestamps=pd.DatetimeIndex(times, dtype=pd.DatetimeTZDtype("ns", "UTC")),
            symbols=[str(names[c]) for c in present_codes],
            layout=layout,
            compact=compact,
        )
