"""``FeatureMatrix``: dense ``[T, N, F]`` features with their validity mask, and its long form.

``values`` is what a policy sees (normalized, float32, 0 where invalid, never NaN); ``raw`` keeps
the unnormalized numbers (NaN where undefined) for drift checks and research; ``mask`` says which
entries are valid (the symbol has a bar, the value is defined and past its warmup).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tt_platform.features.spec import FeatureSet

LONG_COLUMNS = ["instrument", "ts", "feature", "value", "valid"]


class FeatureMatrixError(ValueError):
    """A feature matrix (or its long form) is inconsistent; the message names the problem."""


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    timestamps: pd.DatetimeIndex
    symbols: list[str]
    feature_names: list[str]
    values: np.ndarray  # float32 [T, N, F], normalized, 0 where invalid
    raw: np.ndarray  # float64 [T, N, F], NaN where undefined
    mask: np.ndarray  # bool [T, N, F]
    feature_set_hash: str
    # bool [T, N]: the symbol has a bar at t. Derived from ``raw`` when not given.
    present: np.ndarray | None = field(default=None)
    # Which series relative-strength features compare against ("SPY", or the equal-weight fallback).
    benchmark: str | None = None

    def __post_init__(self) -> None:
        shape = (len(self.timestamps), len(self.symbols), len(self.feature_names))
        for name, array, dtype in (
            ("values", self.values, np.float32),
            ("raw", self.raw, np.float64),
            ("mask", self.mask, np.bool_),
        ):
            if array.shape != shape:
                raise FeatureMatrixError(f"{name} has shape {array.shape}, expected {shape} (T, N, F)")
            if array.dtype != dtype:
                raise FeatureMatrixError(f"{name} has dtype {array.dtype}, expected {np.dtype(dtype)}")
        if self.timestamps.tz is None or str(self.timestamps.tz) != "UTC":
            raise FeatureMatrixError(f"timestamps must be tz-aware UTC, got tz={self.timestamps.tz}")
        # one float64 sum is NaN/inf iff some entry is (entries are bounded z-scores): cheap guard
        if not np.isfinite(self.values.sum(dtype=np.float64)):
            raise FeatureMatrixError("values contain NaN or inf; invalid entries must be 0 with mask False")
        if len(set(self.symbols)) != len(self.symbols):
            raise FeatureMatrixError("duplicate symbols")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise FeatureMatrixError("duplicate feature names")
        if self.present is None:
            object.__setattr__(self, "present", ~np.isnan(self.raw).all(axis=2) | self.mask.any(axis=2))
        elif self.present.shape != shape[:2]:
            raise FeatureMatrixError(f"present has shape {self.present.shape}, expected {shape[:2]}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    def feature_index(self, name: str) -> int:
        try:
            return self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"feature {name!r} not in matrix; available: {self.feature_names}") from None

    def frame(self, feature: str, *, raw: bool = False) -> pd.DataFrame:
        """One feature as a [T x N] DataFrame (normalized values, or raw with ``raw=True``)."""
        source = self.raw if raw else self.values
        return pd.DataFrame(
            source[:, :, self.feature_index(feature)], index=self.timestamps, columns=self.symbols
        )

    # -- selection -----------------------------------------------------------------------

    def slice_time(self, start: object = None, end: object = None) -> FeatureMatrix:
        """Rows with ``start <= ts <= end`` (either bound may be None)."""
        keep = np.ones(len(self.timestamps), dtype=bool)
        if start is not None:
            keep &= self.timestamps >= _utc(start)
        if end is not None:
            keep &= self.timestamps <= _utc(end)
        return self._take(rows=np.flatnonzero(keep))

    def select_symbols(self, symbols: Iterable[str]) -> FeatureMatrix:
        """Columns for ``symbols``, in the order given."""
        wanted = list(symbols)
        unknown = [s for s in wanted if s not in self.symbols]
        if unknown:
            raise KeyError(f"symbols not in matrix: {unknown}")
        position = {s: i for i, s in enumerate(self.symbols)}
        return self._take(columns=np.array([position[s] for s in wanted], dtype=np.intp))

    def _take(self, rows: np.ndarray | None = None, columns: np.ndarray | None = None) -> FeatureMatrix:
        rows = np.arange(len(self.timestamps)) if rows is None else rows
        columns = np.arange(len(self.symbols)) if columns is None else columns
        index = np.ix_(rows, columns)
        return FeatureMatrix(
            timestamps=self.timestamps[rows],
            symbols=[self.symbols[c] for c in columns],
            feature_names=list(self.feature_names),
            values=self.values[index],
            raw=self.raw[index],
            mask=self.mask[index],
            feature_set_hash=self.feature_set_hash,
            present=self.present[index],
            benchmark=self.benchmark,
        )

    # -- long form -----------------------------------------------------------------------

    def to_long(self, *, include_raw: bool = False) -> pd.DataFrame:
        """One row per (instrument, ts, feature) where the instrument has a bar at ts.

        Columns ``instrument, ts, feature, value, valid`` (value = normalized value), plus ``raw``
        with ``include_raw=True``; sorted by instrument, ts, feature order of the set.
        ``instrument`` and ``feature`` are categoricals (cheap for millions of rows).
        """
        n_features = len(self.feature_names)
        sym_idx, t_idx = np.nonzero(self.present.T)  # instrument-major, then time
        cells = t_idx * len(self.symbols) + sym_idx
        # gather whole [F] rows of the C-ordered [T*N, F] arrays: contiguous and fast
        value = self.values.reshape(-1, n_features)[cells].ravel().astype(np.float64)
        valid = self.mask.reshape(-1, n_features)[cells].ravel()
        ts_ns = np.repeat(self.timestamps.as_unit("ns").asi8[t_idx], n_features)
        instrument_codes = np.repeat(sym_idx.astype(_code_dtype(len(self.symbols))), n_features)
        feature_codes = np.tile(np.arange(n_features, dtype=_code_dtype(n_features)), len(cells))
        frame = pd.DataFrame(
            {
                "instrument": pd.Categorical.from_codes(instrument_codes, categories=self.symbols),
                "ts": pd.DatetimeIndex(ts_ns.view("datetime64[ns]")).tz_localize("UTC"),
                "feature": pd.Categorical.from_codes(feature_codes, categories=self.feature_names),
                "value": value,
                "valid": valid,
            },
            copy=False,  # every column is a fresh array already
        )
        if include_raw:
            frame["raw"] = self.raw.reshape(-1, n_features)[cells].ravel()
        return frame

    @classmethod
    def from_long(
        cls,
        frame: pd.DataFrame,
        feature_set: FeatureSet | str,
        *,
        feature_names: Sequence[str] | None = None,
        benchmark: str | None = None,
    ) -> FeatureMatrix:
        """Rebuild a matrix from long rows (``to_long`` output or rows read from ``tt_features``).

        ``feature_set`` is the ``FeatureSet`` (its hash and feature order are used) or just its
        hash. ``raw`` is restored from a ``raw`` column when there is one, else left all NaN
        (the store keeps normalized values only). ``value`` may be NULL/NaN on invalid rows.
        """
        if isinstance(feature_set, str):
            feature_set_hash = feature_set
        else:
            feature_set_hash = feature_set.hash
            if feature_names is None:
                feature_names = feature_set.feature_names
        missing = [c for c in LONG_COLUMNS if c not in frame.columns]
        if missing:
            raise FeatureMatrixError(f"long feature frame: missing columns {missing}")
        # factorize (hash-based, categorical-aware) instead of per-row Python strings
        ts_ns = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).as_unit("ns").asi8
        ti, times = pd.factorize(ts_ns, sort=True)
        timestamps = pd.DatetimeIndex(np.asarray(times).view("datetime64[ns]")).tz_localize("UTC")
        si, symbols = _factorize_labels(frame["instrument"], "instrument", sort=True)
        fi, found = _factorize_labels(frame["feature"], "feature", sort=False)
        names = list(feature_names) if feature_names is not None else found
        unknown = sorted(set(found) - set(names))
        if unknown:
            raise FeatureMatrixError(f"long feature frame: features {unknown} not in feature_names")
        fi = pd.Index(names).get_indexer(found)[fi]
        shape = (len(timestamps), len(symbols), len(names))
        flat = (ti.astype(np.int64) * shape[1] + si) * shape[2] + fi
        if (np.bincount(flat, minlength=int(np.prod(shape))) > 1).any():
            raise FeatureMatrixError("long feature frame: duplicate (instrument, ts, feature) rows")
        values = np.zeros(shape, dtype=np.float32)
        raw = np.full(shape, np.nan)
        mask = np.zeros(shape, dtype=bool)
        present = np.zeros(shape[:2], dtype=bool)
        valid = frame["valid"].to_numpy(dtype=bool)
        value = frame["value"].to_numpy(dtype=np.float64)
        if np.isnan(value[valid]).any():
            raise FeatureMatrixError("long feature frame: NaN value on a row marked valid")
        values.reshape(-1)[flat] = np.where(valid, value, 0.0)
        mask.reshape(-1)[flat] = valid
        present[ti, si] = True
        if "raw" in frame.columns:
            raw.reshape(-1)[flat] = frame["raw"].to_numpy(dtype=np.float64)
        return cls(
            timestamps=timestamps,
            symbols=symbols,
            feature_names=names,
            values=values,
            raw=raw,
            mask=mask,
            feature_set_hash=feature_set_hash,
            present=present,
            benchmark=benchmark,
        )


def _factorize_labels(column: pd.Series, what: str, *, sort: bool) -> tuple[np.ndarray, list[str]]:
    """Integer codes and labels of a string or categorical column (labels sorted on request)."""
    codes, uniques = pd.factorize(column)
    if (codes < 0).any():
        raise FeatureMatrixError(f"long feature frame: missing {what} at row {int(np.flatnonzero(codes < 0)[0])}")
    labels = [str(u) for u in uniques]
    if not sort:
        return codes, labels
    order = np.argsort(labels, kind="stable")
    position = np.empty(len(order), dtype=np.intp)
    position[order] = np.arange(len(order))
    return position[codes], [labels[i] for i in order]


def _code_dtype(n_categories: int) -> type:
    return np.int16 if n_categories < 2**15 else np.int32


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
