"""Feature values in ``tt_features`` (long form), keyed by the feature-set hash."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.feature_frames import LONG_COLUMNS, long_to_wide, wide_to_long
from tt_platform.store.filters import TimeLike, symbol_list, time_range
from tt_platform.store.query import read_frame
from tt_platform.store.schema import features
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

FEATURE_KEY = ["feature_set_hash", "instrument", "ts", "feature"]


def write_features_long(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert long-form features (``LONG_COLUMNS``; ``valid`` defaults to "value is finite").

    Returns the number of rows inserted or changed.
    """
    missing = [c for c in LONG_COLUMNS if c not in frame.columns and c != "valid"]
    if missing:
        raise ValueError(f"write_features_long: missing columns {missing}; expected {LONG_COLUMNS}")
    rows = frame[[c for c in LONG_COLUMNS if c in frame.columns]].copy()
    if "valid" not in rows.columns:
        rows["valid"] = np.isfinite(pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64"))
    rows["instrument"] = rows["instrument"].astype(str).str.upper()
    return upsert_frame(conn_or_engine, features, rows, FEATURE_KEY)


def write_features_wide(conn_or_engine: Connection | Engine, wide: pd.DataFrame, feature_set_hash: str) -> int:
    """Upsert a wide frame (symbol, ts, one column per feature) under ``feature_set_hash``."""
    return write_features_long(conn_or_engine, wide_to_long(wide, feature_set_hash))


def _filters(
    feature_set_hash: str,
    symbols: str | Sequence[str] | None,
    start: TimeLike | None,
    end: TimeLike | None,
    names: Sequence[str] | None,
) -> list[sa.ColumnElement]:
    conditions = [features.c.feature_set_hash == feature_set_hash]
    if symbols is not None:
        conditions.append(features.c.instrument.in_(symbol_list(symbols)))
    if names is not None:
        conditions.append(features.c.feature.in_(list(names)))
    return conditions + time_range(features.c.ts, start, end)


def read_features_long(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long-form features of one feature set, ``start <= ts <= end``, sorted by instrument, ts, feature."""
    statement = (
        sa.select(*[features.c[c] for c in LONG_COLUMNS])
        .where(*_filters(feature_set_hash, symbols, start, end, names))
        .order_by(features.c.instrument, features.c.ts, features.c.feature)
    )
    return read_frame(conn_or_engine, statement)


def read_features_wide(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Features as (symbol, ts, feature columns...), invalid values as NaN."""
    return long_to_wide(read_features_long(conn_or_engine, feature_set_hash, symbols, start, end, names))


def delete_features(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> int:
    """Delete one feature set's values (optionally for some symbols / a time range); returns the count."""
    statement = sa.delete(features).where(*_filters(feature_set_hash, symbols, start, end, None))
    with transaction(conn_or_engine) as conn:
        return conn.execute(statement).rowcount
