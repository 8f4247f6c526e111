"""Bars in ``tt_prices``: write, read, delete, and replace one partition atomically.

Frames in and out are the canonical bar frame of ``tt_platform.data.bars`` (``symbol`` there,
``instrument`` in the table). A series is identified by (symbol, interval, adjusted): adjusted
and raw bars of the same symbol live side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.data.bars import BAR_COLUMNS, empty_bars, normalize_bars
from tt_platform.store.filters import TimeLike, symbol_list, time_range, to_utc
from tt_platform.store.locks import lock_symbols
from tt_platform.store.query import read_frame
from tt_platform.store.schema import prices
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

PRICE_KEY = ["instrument", "interval", "adjusted", "ts"]

def _bars_to_rows(bars: pd.DataFrame, *, source: str, interval: str, adjusted: bool) -> pd.DataFrame:
    if not source or not interval:
        raise ValueError("write_bars: source and interval must be non-empty")
    canonical = normalize_bars(bars, origin=f"bars from {source}")
    rows = canonical.rename(columns={"symbol": "instrument"})
    rows["interval"] = interval
    rows["adjusted"] = bool(adjusted)
    rows["source"] = source
    return rows


def write_bars(
    conn_or_engine: Connection | Engine, bars: pd.DataFrame, *, source: str, interval: str, adjusted: bool
) -> int:
    """Upsert canonical bars; returns the number of rows inserted or changed (0 on a re-run)."""
    rows = _bars_to_rows(bars, source=source, interval=interval, adjusted=adjusted)
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_prices", rows["instrument"].unique())
        return upsert_frame(conn, prices, rows, PRICE_KEY)


def _series_filter(
    symbols: Sequence[str] | None, start: TimeLike | None, end: TimeLike | None, interval: str, adjusted: bool
) -> list[sa.ColumnElement]:
    conditions: list[sa.ColumnElement] = [prices.c.interval == interval, prices.c.adjusted == bool(adjusted)]
    if symbols is not None:
        conditions.append(prices.c.instrument.in_(symbol_list(symbols)))
    return conditions + time_range(prices.c.ts, start, end)


def read_bars(
    conn_or_engine: Connection | Engine,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    interval: str = "1d",
    adjusted: bool = False,
) -> pd.DataFrame:
    """Canonical bars of ``symbols`` (all when None) with ``start <= ts <= end`` (both inclusive)."""
    if isinstance(symbols, str):
        symbols = [symbols]
    statement = (
        sa.select(prices.c.instrument.label("symbol"), *[prices.c[c] for c in BAR_COLUMNS[1:]])
        .where(*_series_filter(symbols, start, end, interval, adjusted))
        .order_by(prices.c.instrument, prices.c.ts)
    )
    frame = read_frame(conn_or_engine, statement)
    if frame.empty:
        return empty_bars()
    return normalize_bars(frame, origin="tt_prices")


def delete_bars(
    conn_or_engine: Connection | Engine,
    symbol: str | Sequence[str],
    start: TimeLike | None,
    end: TimeLike | None,
    interval: str,
    adjusted: bool,
) -> int:
    """Delete the bars of ``symbol`` (one or several) with ``start <= ts <= end``; returns the count."""
    statement = sa.delete(prices).where(*_series_filter(symbol_list(symbol), start, end, interval, adjusted))
    with transaction(conn_or_engine) as conn:
        return conn.execute(statement).rowcount


def replace_partition(
    conn_or_engine: Connection | Engine,
    bars: pd.DataFrame,
    *,
    symbols: str | Sequence[str],
    start: TimeLike,
    end: TimeLike,
    source: str,
    interval: str,
    adjusted: bool,
) -> int:
    """Make the stored bars of ``symbols`` in ``[start, end]`` exactly ``bars``, in one transaction.

    A re-run of a partition that now yields fewer bars (a corrected vendor file, a shorter
    session) leaves no stale rows behind. Bars outside the partition are refused rather than
    silently written where a later rewrite of another partition would not expect them.
    Returns the number of bars written.
    """
    wanted = symbol_list(symbols)
    lo, hi = to_utc(start, "start"), to_utc(end, "end")
    if lo > hi:
        raise ValueError(f"replace_partition: start {lo} is after end {hi}")
    rows = _bars_to_rows(bars, source=source, interval=interval, adjusted=adjusted)
    outside = rows[~rows["instrument"].isin(wanted) | (rows["ts"] < lo) | (rows["ts"] > hi)]
    if not outside.empty:
        first = outside.iloc[0]
        raise ValueError(
            f"replace_partition: {len(outside)} bars fall outside the partition {wanted} "
            f"[{lo}, {hi}], e.g. {first['instrument']} at {first['ts']}"
        )
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_prices", wanted)
        delete_bars(conn, wanted, lo, hi, interval, adjusted)
        upsert_frame(conn, prices, rows, PRICE_KEY)
    return len(rows)


def bar_counts(conn_or_engine: Connection | Engine, interval: str = "1d", adjusted: bool = False) -> pd.DataFrame:
    """Per symbol: number of bars, first and last timestamp (a cheap inventory of the table)."""
    statement = (
        sa.select(
            prices.c.instrument.label("symbol"),
            sa.func.count().label("bars"),
            sa.func.min(prices.c.ts).label("first_ts"),
            sa.func.max(prices.c.ts).label("last_ts"),
        )
        .where(prices.c.interval == interval, prices.c.adjusted == bool(adjusted))
        .group_by(prices.c.instrument)
        .order_by(prices.c.instrument)
    )
    return read_frame(conn_or_engine, statement)


def replace_slices(
    conn_or_engine: Connection | Engine,
    bars: pd.DataFrame,
    slices: Sequence[tuple[str, TimeLike, TimeLike]],
    *,
    source: str,
    interval: str,
    adjusted: bool,
) -> int:
    """``replace_partition`` for many (symbol, start, end) slices at once, in one transaction:
    each slice's stored bars become exactly the bars of ``bars`` inside it. A backfill of hundreds
    of symbols is then one delete and one bulk upsert instead of hundreds of round trips."""
    if not slices:
        return 0
    bounds = pd.DataFrame(
        [(str(s).strip().upper(), to_utc(lo, "start"), to_utc(hi, "end")) for s, lo, hi in slices],
        columns=["instrument", "lo", "hi"],
    )
    bad = bounds[bounds["lo"] > bounds["hi"]]
    if len(bad):
        raise ValueError(f"replace_slices: {bad['instrument'].iloc[0]} slice starts after it ends")
    rows = _bars_to_rows(bars, source=source, interval=interval, adjusted=adjusted) if len(bars) else None
    if rows is not None:
        # every bar must fall in one of its symbol's slices: nothing is written where no slice was replaced
        joined = rows[["instrument", "ts"]].reset_index().merge(bounds, on="instrument", how="left")
        inside = joined[(joined["ts"] >= joined["lo"]) & (joined["ts"] <= joined["hi"])]["index"].unique()
        if len(inside) != len(rows):
            outside = rows.drop(index=inside).iloc[0]
            raise ValueError(f"replace_slices: bars fall outside their slices, e.g. {outside['instrument']} at {outside['ts']}")
    values = sa.values(
        sa.column("instrument", prices.c.instrument.type), sa.column("lo", prices.c.ts.type), sa.column("hi", prices.c.ts.type),
        name="slices",
    ).data([(r.instrument, r.lo.to_pydatetime(), r.hi.to_pydatetime()) for r in bounds.itertuples()])
    statement = sa.delete(prices).where(
        prices.c.interval == interval,
        prices.c.adjusted == bool(adjusted),
        prices.c.instrument == values.c.instrument,
        prices.c.ts >= values.c.lo,
        prices.c.ts <= values.c.hi,
    )
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_prices", bounds["instrument"])
        conn.execute(statement)
        if rows is not None:
            upsert_frame(conn, prices, rows, PRICE_KEY)
    return 0 if rows is None else len(rows)
