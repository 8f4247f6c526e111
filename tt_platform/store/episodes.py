"""Episode logs: one ``tt_episode`` row plus its per-step tables, written in one transaction.

``write_episode`` stores a finished episode (training, evaluation, backtest) and *replaces*
whatever was stored under its id, so re-running an evaluation leaves no rows of the previous
run behind. ``append_episode_steps`` adds steps to a running episode (paper / live loop)
without touching earlier steps. All per-step frames go through ``upsert_frame`` (binary COPY),
so a long episode costs one round trip per table, not one per step.

Validate, then commit: every write checks its whole batch (``tt_platform.core.records``) inside
its transaction and before its first row, so a refused batch raises ``EpisodeRecordError`` and
leaves the store exactly as it was: a rewrite with a bad frame keeps the previous log. Appends
are checked together with the stored steps around them (order of steps and timestamps, a
wiped-out step that must stay the last), ``finish_episode`` against the episode's start and its
last recorded step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.core.records import (
    EpisodeSpan,
    RecordError,
    StepFrameSpec,
    check_episode_row,
    check_finish,
    check_frames_agree,
    check_step_frame,
    raised_as,
)
from tt_platform.store.filters import TimeLike, to_utc
from tt_platform.store.query import read_frame
from tt_platform.store.schema import (
    EPISODE_KINDS,
    action,
    episode,
    equity_curve,
    holdings,
    policy,
    portfolio,
    reward,
    target_weights,
)
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import UpsertError, upsert_frame
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


class EpisodeRecordError(RecordError, UpsertError):
    """An episode write refused before its first row: nothing of it was written.

    Also an ``UpsertError``, the store's error for a batch it cannot write, so callers that
    catch that keep catching every refused episode batch."""


def _frame_spec(name: str, table: sa.Table) -> StepFrameSpec:
    return StepFrameSpec(
        name=name,
        table=table.name,
        columns=tuple(table.c.keys()),
        # episode_id comes from the episode row when a frame leaves it out
        required=tuple(
            c.name for c in table.columns if not c.nullable and c.server_default is None and c.name != "episode_id"
        ),
        numeric={c.name: c.nullable for c in table.columns if isinstance(c.type, sa.Float)},
        per_instrument="instrument" in table.c,
    )


FRAME_SPECS = {name: _frame_spec(name, table) for name, table in STEP_TABLES.items()}


def _given(frames: Mapping[str, pd.DataFrame | None]) -> dict[str, pd.DataFrame]:
    return {name: frame for name, frame in frames.items() if frame is not None}


def _check_policy_registered(conn: Connection, episode_id: str, policy_id: Any) -> None:
    # the foreign key would refuse it too, but only after rows were sent, with a database message
    if policy_id is None:
        return
    found = conn.execute(sa.select(policy.c.policy_id).where(policy.c.policy_id == policy_id)).first()
    if found is None:
        raise EpisodeRecordError(
            f"Episode {episode_id!r}: its policy_id {policy_id!r} is not registered in tt_policy "
            "(foreign key), so register the policy first."
        )


def _check_new_episode(conn: Connection, episode_row: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]) -> None:
    """Every check of a complete episode; raises before anything is written."""
    with raised_as(EpisodeRecordError):
        span = check_episode_row(episode_row, columns=EPISODE_COLUMNS, kinds=EPISODE_KINDS)
        episode_id = episode_row["episode_id"]
        for name, frame in frames.items():
            check_step_frame(episode_id, FRAME_SPECS[name], frame, span)
        check_frames_agree(episode_id, frames)
    _check_policy_registered(conn, episode_id, episode_row.get("policy_id"))


def _write_steps(conn: Connection, episode_id: str, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    written = {}
    for name, frame in frames.items():
        table = STEP_TABLES[name]
        keys = list(table.primary_key.columns.keys())
        written[name] = upsert_frame(conn, table, frame.assign(episode_id=episode_id), keys)
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

    Frames may omit ``episode_id`` (it is taken from the row). All or nothing: one transaction,
    in which the whole episode is checked before its first row is written (``EpisodeRecordError``
    and the previous log kept when a check fails). Returns the number of rows written per frame.
    """
    frames = _given(
        {
            "actions": actions_df,
            "rewards": rewards_df,
            "equity": equity_df,
            "weights": weights_df,
            "portfolio": portfolio_df,
            "holdings": holdings_df,
        }
    )
    with transaction(conn_or_engine) as conn:
        _check_new_episode(conn, episode_row, frames)
        episode_id = episode_row["episode_id"]
        upsert_frame(conn, episode, pd.DataFrame([dict(episode_row)]), ["episode_id"])
        for table in STEP_TABLES.values():
            conn.execute(sa.delete(table).where(table.c.episode_id == episode_id))
        return _write_steps(conn, episode_id, frames)


def append_episode_steps(
    conn_or_engine: Connection | Engine, episode_id: str, **frames: pd.DataFrame | None
) -> dict[str, int]:
    """Upsert more steps of an existing episode (``actions=``, ``rewards=``, ``equity=``,
    ``weights=``, ``portfolio=``, ``holdings=``); earlier steps stay as they are.

    Each frame is checked alone and together with the stored steps around it, before the first
    row is written; a refused batch raises ``EpisodeRecordError`` and appends nothing."""
    unknown = sorted(set(frames) - set(STEP_TABLES))
    if unknown:
        raise ValueError(f"append_episode_steps: unknown frames {unknown}; known: {sorted(STEP_TABLES)}")
    given = _given(frames)
    with transaction(conn_or_engine) as conn:
        span = _recorded_span(conn, episode_id)
        for name, frame in given.items():
            _check_appended(conn, episode_id, FRAME_SPECS[name], frame, span)
        return _write_steps(conn, episode_id, given)


def _recorded_span(conn: Connection, episode_id: str) -> EpisodeSpan:
    """The stored start and end of the episode, locked against concurrent appends and finishes
    so the stored steps the checks read stay as they were until this write commits."""
    statement = (
        sa.select(episode.c.started_at, episode.c.ended_at)
        .where(episode.c.episode_id == episode_id)
        .with_for_update()
    )
    row = conn.execute(statement).first()
    if row is None:
        raise KeyError(f"episode {episode_id!r} is not recorded; write_episode it first")
    return EpisodeSpan(pd.Timestamp(row.started_at), None if row.ended_at is None else pd.Timestamp(row.ended_at))


def _check_appended(
    conn: Connection, episode_id: str, spec: StepFrameSpec, frame: pd.DataFrame, span: EpisodeSpan
) -> None:
    with raised_as(EpisodeRecordError):
        check_step_frame(episode_id, spec, frame, span)
        if len(frame):
            check_step_frame(episode_id, spec, _with_stored_neighbours(conn, episode_id, spec, frame), span)


def _with_stored_neighbours(conn: Connection, episode_id: str, spec: StepFrameSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The batch merged over the stored rows that the order checks compare it with: those of
    its step range, the nearest stored step on each side and (for a portfolio value) every
    stored step with equity <= 0, which must stay the episode's last. Batch rows win."""
    table = STEP_TABLES[spec.name]
    steps = pd.to_numeric(frame["step"])
    first, last = int(steps.min()), int(steps.max())
    mine = table.c.episode_id == episode_id
    before = sa.select(sa.func.max(table.c.step)).where(mine, table.c.step < first).scalar_subquery()
    after = sa.select(sa.func.min(table.c.step)).where(mine, table.c.step > last).scalar_subquery()
    near = [table.c.step.between(first, last), table.c.step == before, table.c.step == after]
    if "equity" in table.c:
        near.append(table.c.equity <= 0)
    # JSON columns are not checked, and episode_id is the same for every row
    columns = [c for c in table.columns if c.name != "episode_id" and not isinstance(c.type, sa.JSON)]
    stored = read_frame(conn, sa.select(*columns).where(mine, sa.or_(*near)))
    batch = frame.drop(columns=["episode_id", "components"], errors="ignore")
    merged = pd.concat([stored, batch], ignore_index=True) if len(stored) else batch.reset_index(drop=True)
    return merged.drop_duplicates(spec.key, keep="last").reset_index(drop=True)


def finish_episode(
    conn_or_engine: Connection | Engine,
    episode_id: str,
    *,
    ended_at: TimeLike,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Set the end time (and, when given, the metrics) of a recorded episode; ``ended_at`` may
    not be before its start nor before its last recorded step (``EpisodeRecordError``)."""
    end = to_utc(ended_at, "ended_at")
    values: dict[str, Any] = {"ended_at": end.to_pydatetime()}
    if metrics is not None:
        values["metrics"] = json_safe(dict(metrics))
    with transaction(conn_or_engine) as conn:
        try:
            span = _recorded_span(conn, episode_id)
        except KeyError:
            raise KeyError(f"episode {episode_id!r} is not recorded") from None
        with raised_as(EpisodeRecordError):
            check_finish(episode_id, span, end, _last_step_at(conn, episode_id))
        conn.execute(sa.update(episode).where(episode.c.episode_id == episode_id).values(**values))


def _last_step_at(conn: Connection, episode_id: str) -> pd.Timestamp | None:
    """The latest ts of any step of the episode (each table's index on (episode_id, ts) serves it)."""
    latest = sa.union_all(
        *[sa.select(sa.func.max(t.c.ts).label("ts")).where(t.c.episode_id == episode_id) for t in STEP_TABLES.values()]
    ).subquery()
    value = conn.execute(sa.select(sa.func.max(latest.c.ts))).scalar()
    return None if value is None else pd.Timestamp(value)


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
