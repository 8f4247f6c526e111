"""tt_bar_coverage: per (instrument, month) what the bars hold, and monthly counts of stored bars."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.locks import lock_symbols
from tt_platform.store.query import read_frame
from tt_platform.store.schema import bar_coverage, prices
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

COVERAGE_KEY = ("instrument", "interval", "adjusted", "partition_key")
COVERAGE_COLUMNS = [
    "instrument", "interval", "adjusted", "partition_key", "status", "reason", "rows",
    "first_ts", "last_ts", "fetched_through", "source",
]


def record_coverage(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Insert or replace coverage rows (columns ``COVERAGE_COLUMNS``) in one transaction."""
    if frame.empty:
        return 0
    missing = [c for c in COVERAGE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"record_coverage: missing columns {missing}")
    bad = frame[~frame["status"].isin(["stored", "absent"])]
    if len(bad):
        raise ValueError(f"record_coverage: status must be 'stored' or 'absent', got {bad['status'].iloc[0]!r}")
    unexplained = frame[(frame["status"] == "absent") & frame["reason"].isna()]
    if len(unexplained):
        row = unexplained.iloc[0]
        raise ValueError(f"record_coverage: {row['instrument']} {row['partition_key']} is absent without a reason")
    rows = frame[COVERAGE_COLUMNS].copy()
    # days are stamped 00:00 UTC, like daily bars
    rows["fetched_through"] = pd.to_datetime(rows["fetched_through"]).dt.tz_localize("UTC")
    for column in ("first_ts", "last_ts"):
        rows[column] = pd.to_datetime(rows[column], utc=True)
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_bar_coverage", rows["instrument"].unique())
        return upsert_frame(conn, bar_coverage, rows, COVERAGE_KEY)


def read_coverage(
    conn_or_engine: Connection | Engine,
    *,
    interval: str,
    adjusted: bool,
    symbols: Sequence[str] | None = None,
    partition_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    statement = sa.select(*(bar_coverage.c[c] for c in COVERAGE_COLUMNS)).where(
        bar_coverage.c.interval == interval, bar_coverage.c.adjusted == adjusted
    )
    if symbols is not None:
        statement = statement.where(bar_coverage.c.instrument.in_(list(symbols)))
    if partition_keys is not None:
        statement = statement.where(bar_coverage.c.partition_key.in_(list(partition_keys)))
    with transaction(conn_or_engine) as conn:
        frame = read_frame(conn, statement.order_by(bar_coverage.c.partition_key, bar_coverage.c.instrument))
    if frame.empty:
        return pd.DataFrame(columns=COVERAGE_COLUMNS)
    frame["fetched_through"] = pd.to_datetime(frame["fetched_through"], utc=True).dt.date
    return frame


def delete_coverage(conn_or_engine: Connection | Engine, *, interval: str, adjusted: bool, symbols: Sequence[str]) -> int:
    statement = sa.delete(bar_coverage).where(
        bar_coverage.c.interval == interval,
        bar_coverage.c.adjusted == adjusted,
        bar_coverage.c.instrument.in_(list(symbols)),
    )
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_bar_coverage", symbols)
        return conn.execute(statement).rowcount


def monthly_bar_counts(
    conn_or_engine: Connection | Engine,
    symbols: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    interval: str,
    adjusted: bool,
) -> pd.DataFrame:
    """Stored bars per (instrument, month) in [start, end]: rows, first_ts, last_ts."""
    month = sa.func.to_char(sa.func.timezone("UTC", prices.c.ts), "YYYY-MM").label("partition_key")
    statement = (
        sa.select(
            prices.c.instrument,
            month,
            sa.func.count().label("rows"),
            sa.func.min(prices.c.ts).label("first_ts"),
            sa.func.max(prices.c.ts).label("last_ts"),
        )
        .where(
            prices.c.instrument.in_(list(symbols)),
            prices.c.interval == interval,
            prices.c.adjusted == adjusted,
            prices.c.ts >= start,
            prices.c.ts <= end,
        )
        .group_by(prices.c.instrument, month)
    )
    with transaction(conn_or_engine) as conn:
        frame = read_frame(conn, statement)
    if frame.empty:
        return pd.DataFrame(columns=["instrument", "partition_key", "rows", "first_ts", "last_ts"])
    return frame
