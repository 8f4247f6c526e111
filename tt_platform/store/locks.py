"""Per-symbol write locks: concurrent runs on overlapping symbols queue instead of deadlocking.

Two runs that write the same symbols (a full run and a subset run, two backfills of one range)
would otherwise lock rows in whatever order their statements visit them and can deadlock. Each
writer therefore first takes transaction-scoped advisory locks on its symbols, per table and in
one global order (the lock keys, sorted), so writers of the same symbols take turns and writers
of different symbols never wait for each other. The locks end with the transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# first key of pg_advisory_xact_lock(int, int) per table; the second is the symbol's key
TABLE_LOCK_KEYS = {
    "tt_prices": 0x74745052,  # "ttPR"
    "tt_bar_coverage": 0x74744356,  # "ttCV"
    "tt_instruments": 0x7474494E,  # "ttIN"
}


def symbol_key(symbol: str) -> int:
    """A stable signed 32-bit key per symbol (collisions only make two symbols take turns)."""
    value = zlib.crc32(symbol.strip().upper().encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_symbols(conn: Connection, table: str, symbols: Iterable[str]) -> None:
    """Wait for, then hold until commit, the write locks of ``symbols`` on ``table``."""
    keys = sorted({symbol_key(str(s)) for s in symbols})
    if not keys:
        return
    conn.execute(
        sa.text("SELECT count(pg_advisory_xact_lock(:table_key, k)) FROM unnest(CAST(:keys AS integer[])) AS k"),
        {"table_key": TABLE_LOCK_KEYS[table], "keys": keys},
    )
