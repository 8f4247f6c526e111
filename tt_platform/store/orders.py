"""Orders (``tt_order``) and their fills (``tt_fill``) from backtests, paper and live trading."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import fill, order
from tt_platform.store.upsert import upsert_frame


def record_orders(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert orders by ``order_id`` (a status change is an update); returns rows inserted or changed."""
    return upsert_frame(conn_or_engine, order, frame, ["order_id"])


def record_fills(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert fills by ``fill_id``; their orders must be recorded first (foreign key)."""
    return upsert_frame(conn_or_engine, fill, frame, ["fill_id"])


def read_orders(conn_or_engine: Connection | Engine, episode_id: str | None = None) -> pd.DataFrame:
    """Orders sorted by ts and order_id, optionally of one episode."""
    statement = sa.select(*order.columns).order_by(order.c.ts, order.c.order_id)
    if episode_id is not None:
        statement = statement.where(order.c.episode_id == episode_id)
    return read_frame(conn_or_engine, statement)


def read_fills(conn_or_engine: Connection | Engine, episode_id: str | None = None) -> pd.DataFrame:
    """Fills sorted by ts and fill_id, optionally of the orders of one episode."""
    statement = sa.select(*fill.columns).order_by(fill.c.ts, fill.c.fill_id)
    if episode_id is not None:
        statement = statement.where(
            fill.c.order_id.in_(sa.select(order.c.order_id).where(order.c.episode_id == episode_id))
        )
    return read_frame(conn_or_engine, statement)
