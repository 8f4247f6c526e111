"""How fresh each bar series is: the last bar's time per symbol, cheap enough for a sensor tick.

Both reads walk the primary-key index of ``tt_prices`` (instrument, interval, adjusted, ts)
instead of scanning the table: the last bar of a series is one backward index probe, and the
stored symbols are found by a "loose index scan" (a recursive query that jumps from one
instrument to the next). ``bar_counts`` in ``prices.py`` counts every row and suits reports,
not a query that runs every few minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.filters import symbol_list
from tt_platform.store.transaction import transaction

_LAST_BAR = """
    (SELECT max(p.ts) FROM tt_prices AS p
     WHERE p.instrument = series.symbol AND p.interval = :interval AND p.adjusted = :adjusted)
"""

_OF_SYMBOLS = sa.text(
    f"SELECT series.symbol, {_LAST_BAR} AS last_ts "
    "FROM unnest(CAST(:symbols AS text[])) AS series(symbol)"
)

_OF_ALL_STORED = sa.text(
    f"""
    WITH RECURSIVE stored(symbol) AS (
        SELECT min(instrument) FROM tt_prices WHERE interval = :interval AND adjusted = :adjusted
        UNION ALL
        SELECT (SELECT min(p.instrument) FROM tt_prices AS p
                WHERE p.instrument > stored.symbol AND p.interval = :interval AND p.adjusted = :adjusted)
        FROM stored WHERE stored.symbol IS NOT NULL
    )
    SELECT series.symbol, {_LAST_BAR} AS last_ts
    FROM stored AS series WHERE series.symbol IS NOT NULL
    """
)


def limit_statement_time(conn: Connection, seconds: float) -> None:
    """Cancel any statement of ``conn``'s current transaction that runs longer than ``seconds``
    (PostgreSQL raises QueryCanceled); the limit ends with the transaction."""
    if seconds <= 0:
        raise ValueError(f"statement timeout must be positive, got {seconds}")
    conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": f"{int(seconds * 1000)}ms"})


def last_bar_times(
    conn_or_engine: Connection | Engine,
    *,
    interval: str,
    adjusted: bool = False,
    symbols: str | Sequence[str] | None = None,
) -> dict[str, pd.Timestamp]:
    """Symbol -> start of its last stored bar (UTC) for one series kind; ``symbols`` None means
    every symbol with bars of that interval. Symbols without such bars are left out."""
    params: dict[str, object] = {"interval": interval, "adjusted": bool(adjusted)}
    if symbols is None:
        statement = _OF_ALL_STORED
    else:
        wanted = symbol_list(symbols)
        if not wanted:
            return {}
        statement, params["symbols"] = _OF_SYMBOLS, wanted
    with transaction(conn_or_engine) as conn:
        rows = conn.execute(statement, params).all()
    return {row.symbol: pd.Timestamp(row.last_ts).tz_convert("UTC") for row in rows if row.last_ts is not None}
