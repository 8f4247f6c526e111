"""Compute a symbol window's features from stored bars and store them long-form in tt_features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.features.cache import FeatureCache
from tt_platform.features.compute import FeatureMatrix, compute_features
from tt_platform.features.spec import FeatureSet
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.store.features import delete_features, read_features_long, write_features_long
from tt_platform.store.transaction import transaction
from tt_platform.store.prices import read_bars

# calendar days per bar, generously, so the warmup history loaded always covers the bars needed
CALENDAR_DAYS_PER_BAR = {"1d": 1.6, "1h": 0.4, "30min": 0.2, "5min": 0.05, "1min": 0.02}


def warmup_start(start: date, feature_set: FeatureSet, interval: str) -> pd.Timestamp:
    days = int(feature_set.warmup_bars * CALENDAR_DAYS_PER_BAR.get(interval, 1.6)) + 10
    return pd.Timestamp(start, tz="UTC") - pd.Timedelta(days=days)


@dataclass(frozen=True)
class FeatureSummary:
    rows: int
    feature_set_hash: str
    features: int
    symbols: int
    first_ts: str
    last_ts: str


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
    """
    universe = sorted(set(context_symbols or symbols) | set(symbols))
    bars = read_bars(engine, universe, warmup_start(start, feature_set, interval), day_end(end), interval=interval, adjusted=adjusted)
    if bars.empty:
        return FeatureSummary(0, feature_set.hash, len(feature_set.features), 0, "", "")
    matrix = cache.get_or_compute(bars, feature_set) if cache is not None else compute_features(bars, feature_set)
    # the store takes plain text columns; to_long hands out categoricals for memory
    long = matrix.to_long().astype({"instrument": str, "feature": str})
    in_window = (long["ts"] >= day_start(start)) & (long["ts"] <= day_end(end)) & long["instrument"].isin(symbols)
    long = long.loc[in_window]
    # replace the window: a shorter bar history must not leave features at vanished timestamps
    with transaction(engine) as conn:
        delete_features(conn, matrix.feature_set_hash, symbols, day_start(start), day_end(end))
        write_features_long(conn, long.assign(feature_set_hash=matrix.feature_set_hash))
    return FeatureSummary(
        rows=len(long),
        feature_set_hash=matrix.feature_set_hash,
        features=len(matrix.feature_names),
        symbols=long["instrument"].nunique(),
        first_ts=str(long["ts"].min()) if len(long) else "",
        last_ts=str(long["ts"].max()) if len(long) else "",
    )


def load_feature_matrix(
    engine: Engine, symbols: list[str], start: date, end: date, feature_set: FeatureSet
) -> FeatureMatrix:
    """The stored features of a universe and range, as the [T, N, F] matrix policies consume."""
    long = read_features_long(engine, feature_set.hash, symbols, day_start(start), day_end(end))
    if long.empty:
        raise LookupError(
            f"no stored features for set {feature_set.hash} on {symbols} {start}..{end}; materialize the features asset first"
        )
    return FeatureMatrix.from_long(long, feature_set)
