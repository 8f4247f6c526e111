"""Reference data: watchlist snapshots (``tt_watchlist_version``) and instruments (``tt_instruments``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.filters import symbol_list
from tt_platform.store.locks import lock_symbols
from tt_platform.store.query import read_frame
from tt_platform.store.schema import instruments, watchlist_version
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

INSTRUMENT_COLUMNS = [c.name for c in instruments.columns]


class WatchlistConflictError(ValueError):
    """A snapshot hash already recorded with different symbols (the hash is not a content hash)."""


def record_watchlist(
    conn_or_engine: Connection | Engine, snapshot_hash: str, symbols: Sequence[str], source: str
) -> bool:
    """Record a watchlist snapshot; True when new, False when the same snapshot was already there.

    Symbols are stored upper-cased in the given order (the order may carry meaning, e.g. rank).
    """
    if not snapshot_hash:
        raise ValueError("record_watchlist: snapshot_hash must be non-empty")
    if isinstance(symbols, str):
        raise TypeError("record_watchlist: symbols must be a sequence of symbols, not one string")
    cleaned = [str(s).strip().upper() for s in symbols]
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"record_watchlist: duplicate symbols in snapshot {snapshot_hash}")
    statement = (
        pg_insert(watchlist_version)
        .values(snapshot_hash=snapshot_hash, symbols=cleaned, source=source)
        .on_conflict_do_nothing(index_elements=["snapshot_hash"])
    )
    with transaction(conn_or_engine) as conn:
        inserted = conn.execute(statement).rowcount == 1
        if not inserted:
            stored = conn.execute(
                sa.select(watchlist_version.c.symbols).where(watchlist_version.c.snapshot_hash == snapshot_hash)
            ).scalar_one()
            if list(stored) != cleaned:
                raise WatchlistConflictError(
                    f"watchlist snapshot {snapshot_hash} is already recorded with other symbols "
                    f"({len(stored)} stored vs {len(cleaned)} given)"
                )
    return inserted


def read_watchlist(conn_or_engine: Connection | Engine, snapshot_hash: str) -> list[str] | None:
    """Symbols of one snapshot, None when it was never recorded."""
    statement = sa.select(watchlist_version.c.symbols).where(watchlist_version.c.snapshot_hash == snapshot_hash)
    with transaction(conn_or_engine) as conn:
        value = conn.execute(statement).scalar_one_or_none()
    return None if value is None else list(value)


def latest_watchlist(conn_or_engine: Connection | Engine) -> tuple[str, list[str]] | None:
    """(snapshot_hash, symbols) of the most recently recorded snapshot, None when there is none."""
    statement = (
        sa.select(watchlist_version.c.snapshot_hash, watchlist_version.c.symbols)
        .order_by(watchlist_version.c.created_at.desc(), watchlist_version.c.snapshot_hash)
        .limit(1)
    )
    with transaction(conn_or_engine) as conn:
        row = conn.execute(statement).first()
    return None if row is None else (row.snapshot_hash, list(row.symbols))


def upsert_instruments(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Insert or update instruments by ``symbol``; only the columns present in ``frame`` change."""
    if "symbol" not in frame.columns:
        raise ValueError(f"upsert_instruments: the frame needs a 'symbol' column; columns: {list(frame.columns)}")
    rows = frame.copy()
    rows["symbol"] = rows["symbol"].astype(str).str.strip().str.upper()
    with transaction(conn_or_engine) as conn:
        lock_symbols(conn, "tt_instruments", rows["symbol"])
        return upsert_frame(conn, instruments, rows, ["symbol"])


def read_instruments(
    conn_or_engine: Connection | Engine, symbols: Sequence[str] | None = None, *, active_only: bool = False
) -> pd.DataFrame:
    """Instruments sorted by symbol, optionally only some symbols or only active ones."""
    statement = sa.select(*instruments.columns).order_by(instruments.c.symbol)
    if symbols is not None:
        statement = statement.where(instruments.c.symbol.in_(symbol_list(symbols)))
    if active_only:
        statement = statement.where(instruments.c.active.is_(True))
    return read_frame(conn_or_engine, statement)
