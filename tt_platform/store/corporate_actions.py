"""Splits and dividends in ``tt_corporate_actions`` (ex-dates stamped 00:00 UTC like daily bars)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.filters import TimeLike, symbol_list, time_range
from tt_platform.store.query import read_frame
from tt_platform.store.schema import corporate_actions
from tt_platform.store.upsert import upsert_frame

ACTION_KEY = ["symbol", "ex_date", "action_type"]
ACTION_COLUMNS = [c.name for c in corporate_actions.columns]


def write_corporate_actions(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert actions (symbol, ex_date, action_type, value, source); returns rows inserted or changed."""
    missing = [c for c in ACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"write_corporate_actions: missing columns {missing}; expected {ACTION_COLUMNS}")
    rows = frame[ACTION_COLUMNS].copy()
    rows["symbol"] = rows["symbol"].astype(str).str.strip().str.upper()
    return upsert_frame(conn_or_engine, corporate_actions, rows, ACTION_KEY)


def read_corporate_actions(
    conn_or_engine: Connection | Engine,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pd.DataFrame:
    """Actions with ``start <= ex_date <= end``, sorted by symbol, ex_date, action_type."""
    statement = sa.select(*corporate_actions.columns).order_by(*[corporate_actions.c[c] for c in ACTION_KEY])
    conditions = time_range(corporate_actions.c.ex_date, start, end)
    if symbols is not None:
        conditions.append(corporate_actions.c.symbol.in_(symbol_list(symbols)))
    return read_frame(conn_or_engine, statement.where(*conditions))
