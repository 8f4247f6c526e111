"""Splits and dividends in ``tt_corporate_actions`` (ex-dates stamped 00:00 UTC like daily bars)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.data.corporate_actions.validation import (
    DEFAULT_ORIGIN,
    validate_actions,
)
from tt_platform.store.filters import TimeLike, symbol_list, time_range
from tt_platform.store.query import read_frame
from tt_platform.store.schema import corporate_actions
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

ACTION_KEY = ["symbol", "ex_date", "action_type"]
ACTION_COLUMNS = [c.name for c in corporate_actions.columns]


def write_corporate_actions(
    conn_or_engine: Connection | Engine,
    frame: pd.DataFrame,
    *,
    origin: str = DEFAULT_ORIGIN,
    today: dt.date | None = None,
) -> int:
    """Validate, then upsert actions (symbol, ex_date, action_type, value, source); returns rows
    inserted or changed.

    The whole batch is checked (``validate_actions``) inside the write's transaction before one
    row is sent: a batch with one bad row raises ``InvalidActionsError`` (a ``ValueError`` whose
    message starts with ``origin`` and names the row) and the table keeps exactly what it had.
    ``today`` bounds future ex-dates (default: the current UTC date)."""
    with transaction(conn_or_engine) as conn:
        rows = validate_actions(frame, today=today, origin=origin)
        return upsert_frame(conn, corporate_actions, rows[ACTION_COLUMNS], ACTION_KEY)


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
