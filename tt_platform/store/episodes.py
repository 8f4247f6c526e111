"""Episode logs: one ``tt_episode`` row plus its per-step tables, written in one transaction.

``write_episode`` stores a finished episode (training, evaluation, backtest) and *replaces*
whatever was stored under its id, so re-running an evaluation leaves no rows of the previous
run behind. ``append_episode_steps`` adds steps to a running episode (paper / live loop)
without touching earlier steps. All per-step frames go through ``upsert_frame`` (binary COPY),
so a long episode costs one round trip per table, not one per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.filters import TimeLike, to_utc
from tt_platform.store.query import read_frame
from tt_platform.store.schema import (
    EPISODE_KINDS,
    action,
    episode,
    equity_curve,
    holdings,
    portfolio,
    reward,
    target_weights,
)
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame
from tt_platform.store.wire import json_safe

EPISODE_COLUMNS = [c.name for c in episode.columns]
# frame name -> table; the key of each table is its primary key
STEP_TABLES: dict[str, sa.Table] = {
    "actions": action,
    "rewards": reward,
    "equity": equity_curve,
    "weights": target_weights,
    "portfolio": portfolio,
    "holdings": holdings,
}


@dataclass
class EpisodeLog:
    """An episode as read back: its row and one frame per step table (sorted by step)."""

    row: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.frames[name]


def _episode_frame(record: Mapping[str, Any]) -> pd.DataFrame:
    unknown = sorted(set(record) - set(EPISODE_COLUMNS))
    if unknown:
        raise ValueError(f"episode row: unknown fields {unknown}; known: {EPISODE_COLUMNS}")
    for required in ("episode_id", "kind", "started_at"):
        if record.get(required) is None:
            raise ValueError(f"episode row: {required!r} is required")
    if record["kind"] not in EPISODE_KINDS:
        raise ValueError(f"episode row: kind {record['kind']!r} is not one of {EPISODE_KINDS}")
    return pd.DataFrame([dict(record)])


def _step_rows(name: str, frame: pd.DataFrame, episode_id: str) -> pd.DataFrame:
    table = STEP_TABLES[name]
    rows = frame.copy()
    if "episode_id" in rows.columns:
        others = set(rows["episode_id"].dropna().astype(str)) - {episode_id}
        if others:
            raise ValueError(f"{name} frame holds rows of other episodes {sorted(others)[:3]}, expected {episode_id!r}")
    rows["episode_id"] = episode_id
    unknown = [c for c in rows.columns if c not in table.c]
    if unknown:
        raise ValueError(f"{name} frame: columns {unknown} are not in {table.name} ({list(table.c.keys())})")
    return rows


def _write_steps(conn: Connection, episode_id: str, frames: Mapping[str, pd.DataFrame | None]) -> dict[str, int]:
    written = {}
    for name, frame in frames.items():
        if frame is None:
            continue
        table = STEP_TABLES[name]
        keys = list(table.primary_key.columns.keys())
        written[name] = upsert_frame(conn, table, _step_rows(name, frame, episode_id), keys)
    return written


def write_episode(
    conn_or_engine: Connection | Engine,
    episode_row: Mapping[str, Any],
    actions_df: pd.DataFrame | None = None,
    rewards_df: pd.DataFrame | None = None,
    equity_df: pd.DataFrame | None = None,
    weights_df: pd.DataFrame | None = None,
    *,
    portfolio_df: pd.DataFrame | None = None,
    holdings_df: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Store an episode and its step frames, replacing any earlier log under the same id.

    Frames may omit ``episode_id`` (it is taken from the row). All or nothing: one transaction.
    Returns the number of rows written per frame name.
    """
    header = _episode_frame(episode_row)
    episode_id = str(episode_row["episode_id"])
    frames = {
        "actions": actions_df,
        "rewards": rewards_df,
        "equity": equity_df,
        "weights": weights_df,
        "portfolio": portfolio_df,
        "holdings": holdings_df,
    }
    with transaction(conn_or_engine) as conn:
        upsert_frame(conn, episode, header, ["episode_id"])
        for table in STEP_TABLES.values():
            conn.execute(sa.delete(table).where(table.c.episode_id == episode_id))
        return _write_steps(conn, episode_id, frames)


def append_episode_steps(
    conn_or_engine: Connection | Engine, episode_id: str, **frames: pd.DataFrame | None
) -> dict[str, int]:
    """Upsert more steps of an existing episode (``actions=``, ``rewards=``, ``equity=``,
    ``weights=``, ``portfolio=``, ``holdings=``); earlier steps stay as they are."""
    unknown = sorted(set(frames) - set(STEP_TABLES))
    if unknown:
        raise ValueError(f"append_episode_steps: unknown frames {unknown}; known: {sorted(STEP_TABLES)}")
    with transaction(conn_or_engine) as conn:
        exists = conn.execute(sa.select(episode.c.episode_id).where(episode.c.episode_id == episode_id)).first()
        if exists is None:
            raise KeyError(f"episode {episode_id!r} is not recorded; write_episode it first")
        return _write_steps(conn, episode_id, frames)


def finish_episode(
    conn_or_engine: Connection | Engine,
    episode_id: str,
    *,
    ended_at: TimeLike,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Set the end time (and, when given, the metrics) of a recorded episode."""
    values: dict[str, Any] = {"ended_at": to_utc(ended_at, "ended_at").to_pydatetime()}
    if metrics is not None:
        values["metrics"] = json_safe(dict(metrics))
    with transaction(conn_or_engine) as conn:
        updated = conn.execute(sa.update(episode).where(episode.c.episode_id == episode_id).values(**values))
        if updated.rowcount == 0:
            raise KeyError(f"episode {episode_id!r} is not recorded")


def read_episode(conn_or_engine: Connection | Engine, episode_id: str) -> EpisodeLog | None:
    """The episode row and its step frames, None when the episode is unknown."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(sa.select(episode).where(episode.c.episode_id == episode_id)).mappings().first()
        if row is None:
            return None
        frames = {}
        for name, table in STEP_TABLES.items():
            order = [table.c.step] + ([table.c.instrument] if "instrument" in table.c else [])
            statement = sa.select(*table.columns).where(table.c.episode_id == episode_id).order_by(*order)
            frames[name] = read_frame(conn, statement)
    return EpisodeLog(row=dict(row), frames=frames)


def delete_episode(conn_or_engine: Connection | Engine, episode_id: str) -> bool:
    """Delete an episode and (by cascade) its step rows and orders; True when it existed."""
    with transaction(conn_or_engine) as conn:
        return conn.execute(sa.delete(episode).where(episode.c.episode_id == episode_id)).rowcount == 1


def list_episodes(
    conn_or_engine: Connection | Engine, policy_id: str | None = None, kind: str | None = None
) -> pd.DataFrame:
    """Episode rows, newest first, optionally filtered by policy and kind."""
    statement = sa.select(*episode.columns).order_by(episode.c.started_at.desc(), episode.c.episode_id)
    if policy_id is not None:
        statement = statement.where(episode.c.policy_id == policy_id)
    if kind is not None:
        statement = statement.where(episode.c.kind == kind)
    return read_frame(conn_or_engine, statement)
