"""Compute a symbol window's features from stored bars and store them (wide rows, see
``tt_platform.store.features``); read them back as the matrix policies consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.features.cache import FeatureCache
from tt_platform.features.compute import FeatureMatrix, compute_features
from tt_platform.features.spec import FeatureSet
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.store.features import FeatureStoreError, read_feature_matrix, write_feature_matrix
from tt_platform.store.filters import symbol_list
from tt_platform.store.prices import read_bars

# calendar days per bar, generously, so the warmup history loaded always covers the bars needed
CALENDAR_DAYS_PER_BAR = {"1d": 1.6, "1h": 0.4, "30min": 0.2, "5min": 0.05, "1min": 0.02}


def warmup_start(start: date, feature_set: FeatureSet, interval: str) -> pd.Timestamp:
    days = int(feature_set.warmup_bars * CALENDAR_DAYS_PER_BAR.get(interval, 1.6)) + 10
    return pd.Timestamp(start, tz="UTC") - pd.Timedelta(days=days)


@dataclass(frozen=True)
class FeatureSummary:
    """What ``build_features`` stored for its window."""

    rows: int  # stored (symbol, ts) rows, one wide row each
    feature_set_hash: str
    features: int
    symbols: int  # symbols with at least one stored row
    first_ts: str
    last_ts: str
    values: int = 0  # feature values stored: rows x features
    # "YYYY-MM" -> stored (symbol, ts) rows in that month (UTC), for per-partition metadata
    rows_by_month: dict[str, int] = field(default_factory=dict)


def build_features(
    engine: Engine,
    symbols: list[str],
    start: date,
    end: date,
    *,
    interval: str,
    adjusted: bool,
    feature_set: FeatureSet,
    context_symbols: list[str] | None = None,
    cache: FeatureCache | None = None,
) -> FeatureSummary:
    """Features for ``symbols`` on [start, end], from bars including the warmup before ``start``.

    ``context_symbols`` is the whole universe: cross-sectional features (ranks, relative strength)
    need it even when only some symbols are recomputed. With a ``cache``, the wide matrix is
    also kept on disk keyed by (feature_set_hash, symbols, range) and reused while the bars it was
    computed from are unchanged.

    The stored window (``symbols`` x [start, end], this feature set) is replaced in one
    transaction: rows at timestamps the bars no longer have are removed, and a window without
    bars ends up empty. The batch is validated before anything is written.
    """
    window = symbol_list(symbols)
    universe = sorted(set(symbol_list(context_symbols or [])) | set(window))
    bars = read_bars(engine, universe, warmup_start(start, feature_set, interval), day_end(end), interval=interval, adjusted=adjusted)
    if bars.empty:
        matrix = _no_rows(feature_set)
    else:
        matrix = cache.get_or_compute(bars, feature_set) if cache is not None else compute_features(bars, feature_set)
    if matrix.feature_set_hash != feature_set.hash or matrix.feature_names != feature_set.feature_names:
        raise FeatureStoreError(
            f"computed features ({matrix.feature_set_hash}, {matrix.feature_names}) do not match the set "
            f"{feature_set.hash} ({feature_set.feature_names})"
        )
    written = write_feature_matrix(
        engine, matrix, symbols=window, start=day_start(start), end=day_end(end), definition=feature_set.canonical()
    )
    return FeatureSummary(
        rows=written.rows,
        feature_set_hash=feature_set.hash,
        features=len(feature_set.features),
        symbols=written.symbols,
        first_ts=str(written.first_ts) if written.first_ts is not None else "",
        last_ts=str(written.last_ts) if written.last_ts is not None else "",
        values=written.values,
        rows_by_month=written.rows_by_month,
    )


def _no_rows(feature_set: FeatureSet) -> FeatureMatrix:
    shape = (0, 0, len(feature_set.features))
    return FeatureMatrix(
        timestamps=pd.DatetimeIndex([], tz="UTC"),
        symbols=[],
        feature_names=feature_set.feature_names,
        values=np.zeros(shape, dtype=np.float32),
        raw=np.zeros(shape),
        mask=np.zeros(shape, dtype=bool),
        feature_set_hash=feature_set.hash,
        present=np.zeros(shape[:2], dtype=bool),
    )


def load_feature_matrix(
    engine: Engine, symbols: list[str], start: date, end: date, feature_set: FeatureSet
) -> FeatureMatrix:
    """The stored features of a universe and range, as the [T, N, F] matrix policies consume.

    Values (float32) and masks are exactly what ``build_features`` stored; columns are the
    requested symbols that have features (sorted), ``raw`` is an all-NaN read-only view (only
    normalized values are stored).
    """
    matrix = read_feature_matrix(
        engine, feature_set.hash, symbols, day_start(start), day_end(end), feature_names=feature_set.feature_names
    )
    if not len(matrix.timestamps):
        raise LookupError(
            f"no stored features for set {feature_set.hash} on {symbols} {start}..{end}; materialize the features asset first"
        )
    return matrix
