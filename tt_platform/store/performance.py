"""Episode performance as the views of migration 0005 compute it, read into DataFrames.

- ``tt_episode_summary``: one row per episode: its tt_episode fields, steps (rewards recorded),
  the equity curve's points, first / last timestamps, initial / final equity, total_return,
  max_drawdown (1 - min(equity / running max), a positive fraction), total_reward, total_cost
  (commission + slippage of its fills, else ``metrics.total_cost``), mean_turnover
  (``metrics.turnover``), mean_gross_exposure (over the equity points after the first) and the
  metrics JSON. NULL (NaN / None here) where the episode recorded nothing to compute it from.
- ``tt_daily_performance``: one row per episode and UTC calendar day of its equity curve: the
  day's last equity, daily_return (NULL on the episode's first day), drawdown (from the highest
  equity so far, a positive fraction) and cumulative_return (since the first equity point).

The views are not part of ``schema.metadata`` (Alembic owns them, as ``tt_features``); the
lightweight tables below give their columns and types to ``read_frame``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import FLOAT, TEXT, TS

episode_summary_view = sa.table(
    "tt_episode_summary",
    sa.column("episode_id", TEXT),
    sa.column("policy_id", TEXT),
    sa.column("kind", TEXT),
    sa.column("seed", sa.BigInteger),
    sa.column("started_at", TS),
    sa.column("ended_at", TS),
    sa.column("steps", sa.BigInteger),
    sa.column("equity_points", sa.BigInteger),
    sa.column("first_ts", TS),
    sa.column("last_ts", TS),
    sa.column("initial_equity", FLOAT),
    sa.column("final_equity", FLOAT),
    sa.column("total_return", FLOAT),
    sa.column("max_drawdown", FLOAT),
    sa.column("total_reward", FLOAT),
    sa.column("total_cost", FLOAT),
    sa.column("mean_turnover", FLOAT),
    sa.column("mean_gross_exposure", FLOAT),
    sa.column("metrics", JSONB),
)

daily_performance_view = sa.table(
    "tt_daily_performance",
    sa.column("episode_id", TEXT),
    sa.column("policy_id", TEXT),
    sa.column("kind", TEXT),
    sa.column("day", sa.Date),
    sa.column("equity", FLOAT),
    sa.column("daily_return", FLOAT),
    sa.column("drawdown", FLOAT),
    sa.column("cumulative_return", FLOAT),
)

SUMMARY_COLUMNS = [c.name for c in episode_summary_view.columns]
DAILY_COLUMNS = [c.name for c in daily_performance_view.columns]


def _id_list(ids: str | Iterable[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))


def read_episode_summary(
    conn_or_engine: Connection | Engine,
    policy_id: str | None = None,
    kind: str | None = None,
    episode_ids: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """``tt_episode_summary`` rows, newest episode first (as ``list_episodes``), optionally of
    one policy, one kind and / or the given episodes.

    Counts (steps, equity_points) are int64; seed is float64 when some are NULL; missing
    statistics are NaN and a missing metrics JSON None."""
    view = episode_summary_view
    statement = sa.select(*view.columns).order_by(view.c.started_at.desc(), view.c.episode_id)
    if policy_id is not None:
        statement = statement.where(view.c.policy_id == policy_id)
    if kind is not None:
        statement = statement.where(view.c.kind == kind)
    if episode_ids is not None:
        statement = statement.where(view.c.episode_id.in_(_id_list(episode_ids)))
    return read_frame(conn_or_engine, statement)


def read_daily_performance(
    conn_or_engine: Connection | Engine,
    episode_ids: str | Iterable[str] | None = None,
    *,
    policy_id: str | None = None,
    kind: str | None = None,
) -> pd.DataFrame:
    """``tt_daily_performance`` rows sorted by episode_id and day, of the given episodes (all
    when None), optionally of one policy and / or kind.

    ``day`` is returned as 00:00 UTC of the date (``datetime64[ns, UTC]``), the store's
    convention for daily values."""
    view = daily_performance_view
    statement = sa.select(*view.columns).order_by(view.c.episode_id, view.c.day)
    if episode_ids is not None:
        statement = statement.where(view.c.episode_id.in_(_id_list(episode_ids)))
    if policy_id is not None:
        statement = statement.where(view.c.policy_id == policy_id)
    if kind is not None:
        statement = statement.where(view.c.kind == kind)
    frame = read_frame(conn_or_engine, statement)
    frame["day"] = pd.to_datetime(frame["day"].astype("object"), utc=True).astype("datetime64[ns, UTC]")
    return frame
