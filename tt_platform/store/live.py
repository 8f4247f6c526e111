"""Persistence of the paper / live trading loop: sessions, decisions, marks, orders and fills.

A session trades one policy on one account. Its ``tt_live_session`` row says who holds the
account -- at most one running session per ``account_key``, kept alive by heartbeats -- and how
the session ended; the ``tt_episode`` of the same id (kind = mode) carries its actions, target
weights, portfolio marks, holdings and orders like any other episode, so the performance views
cover live trading too.

Every write is one transaction and may be repeated: a loop restarted after a crash re-sends
what it cannot be sure was stored. Decisions go to the append-only ``tt_live_audit`` (triggers
refuse UPDATE, DELETE and TRUNCATE): the same (session, step) with the same content again is a
no-op, other content raises ``LiveRecordConflict``. Orders are upserted by ``order_id`` (the IB
``orderRef`` for live orders); fills are keyed by ``fill_id`` (IB ``execId``), since IB re-sends
executions on every reconciliation.

Times of sessions (start, heartbeat, end) come from the database clock, so processes on
different hosts agree on how old a heartbeat is. The account is only ever known by its
``account_key`` (a hash or masked label) and no message here shows even that.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import (
    LIVE_MODES,
    LIVE_SESSION_STATUSES,
    ORDER_SIDES,
    action,
    episode,
    fill,
    live_audit,
    live_session,
    order,
    order_event,
    policy,
    portfolio,
)
# aliased: record_decision and record_mark take arguments of the plain names
from tt_platform.store.schema import holdings as holdings_table
from tt_platform.store.schema import target_weights as target_weights_table
from tt_platform.store.transaction import transaction
from tt_platform.store.wire import json_safe

logger = logging.getLogger(__name__)

RUNNING = "running"
ABANDONED = "abandoned"
SESSION_END_STATUSES = tuple(s for s in LIVE_SESSION_STATUSES if s != RUNNING)

ORDER_OPEN_STATUSES = ("pending_submit", "submitted", "partially_filled", "cancel_pending")
ORDER_TERMINAL_STATUSES = ("filled", "cancelled", "rejected", "not_sent")
ORDER_STATUSES = ORDER_OPEN_STATUSES + ORDER_TERMINAL_STATUSES
ORDER_TYPES = ("MARKET", "LIMIT")

# the columns of AuditRecord.as_row(), in table order
AUDIT_COLUMNS = tuple(
    c.name for c in live_audit.columns if c.name not in ("audit_id", "session_id", "step", "recorded_at")
)
# text columns of the audit that may be empty (no breach, no guardrail reason)
_AUDIT_MAY_BE_EMPTY = {"breaches", "guard_reasons"}
# what a repeated decision must repeat: everything but who recorded it (a restarted run has a new
# run id) and how long it took (a recomputed decision never takes the same time)
_DECISION_CONTENT = tuple(c for c in AUDIT_COLUMNS if c not in ("run_id", "latency_ms"))

ORDER_FIELDS = tuple(c.name for c in order.columns if c.name != "updated_at")
_ORDER_REQUIRED = ("order_id", "ts", "instrument", "side", "quantity", "order_type", "status")
# what an order is: a later write under the same order_id may not change these
_ORDER_IDENTITY = ("episode_id", "instrument", "side")

FILL_FIELDS = tuple(c.name for c in fill.columns)
_FILL_REQUIRED = ("fill_id", "order_id", "ts", "instrument", "quantity", "price")
# what an execution is; the other fields (commission, slippage, shadow) may arrive later
_FILL_IDENTITY = ("order_id", "instrument", "quantity", "price")

# first key of pg_advisory_xact_lock(int, int); the second is hashtext(account_key)
_ACCOUNT_LOCK_KEY = 0x74744C53  # "ttLS"
# what an IB account id looks like (U1234567, DU1234567, DF123456): refused as an account_key
_RAW_ACCOUNT_ID = re.compile(r"[A-Z]{1,3}\d{4,}")


class LiveSessionConflict(RuntimeError):
    """Another running session holds the account; the message names it, its mode and the age of
    its last heartbeat (never the account)."""


class LiveSessionNotRunning(RuntimeError):
    """The session has ended (stopped, failed, or abandoned when another session took over its
    account): it may not trade or record any more until it is opened again."""


class LiveRecordConflict(ValueError):
    """A repeated write (decision step, order, fill) whose content differs from what is stored;
    nothing was changed."""


# --- input checks ----------------------------------------------------------------------------


def _text(value: Any, name: str, *, nullable: bool = False, empty: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _number(value: Any, name: str, *, nullable: bool = False, positive: bool = False,
            non_negative: bool = False, nonzero: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number) and nullable:
        return None  # as everywhere in the store: NaN is NULL
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number!r}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be > 0, got {number!r}")
    if non_negative and number < 0:
        raise ValueError(f"{name} must be >= 0, got {number!r}")
    if nonzero and number == 0:
        raise ValueError(f"{name} must not be 0")
    return number


def _integer(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a boolean, got {value!r}")
    return bool(value)


def _time(value: Any, name: str, *, nullable: bool = False) -> dt.datetime | None:
    """A tz-aware instant in UTC; naive times are refused (a live clock always has a zone)."""
    if (value is None or value is pd.NaT) and nullable:
        return None
    if not isinstance(value, (dt.datetime, pd.Timestamp)) or value is pd.NaT:
        raise ValueError(f"{name} must be a tz-aware datetime, got {value!r}")
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{name} must be tz-aware, got the naive {value!r}")
    return stamp.tz_convert("UTC").to_pydatetime()


def _account_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("account_key must be a non-empty string (a hash or masked label of the account)")
    if _RAW_ACCOUNT_ID.fullmatch(value.strip()):
        # the value is not repeated: it looks like the secret it must not be
        raise ValueError("account_key looks like a raw broker account id; pass a hash or masked label instead")
    return value


def _one_of(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _weights(values: Mapping[str, float], name: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise TypeError(f"{name} must be a mapping of instrument -> number, got {type(values).__name__}")
    return {_text(k, f"{name} instrument"): _number(v, f"{name}[{k!r}]") for k, v in values.items()}


def _same(stored: Any, given: Any) -> bool:
    """Equal as stored values: instants compare as instants, numbers as floats."""
    if stored is None or given is None:
        return stored is None and given is None
    if isinstance(stored, dt.datetime) or isinstance(given, dt.datetime):
        return pd.Timestamp(stored) == pd.Timestamp(given)
    if isinstance(stored, bool) or isinstance(given, bool):
        return isinstance(stored, bool) and isinstance(given, bool) and stored == given
    if isinstance(stored, (int, float)) and isinstance(given, (int, float)):
        return float(stored) == float(given)
    return stored == given


def _differences(stored: Mapping[str, Any], given: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    return [
        f"{n}: stored {stored[n]!r}, given {given[n]!r}" for n in names if n in given and not _same(stored[n], given[n])
    ]


def _listed(items: list[str], limit: int = 4) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


# --- sessions --------------------------------------------------------------------------------


def open_session(
    conn_or_engine: Connection | Engine,
    *,
    session_id: str,
    run_id: str | None,
    account_key: str,
    mode: str,
    policy_id: str | None,
    policy_version: str,
    feature_set_hash: str,
    config: Mapping[str, Any],
    stale_after: dt.timedelta,
) -> dict[str, Any]:
    """Start (or resume) ``session_id`` as the one running session of ``account_key``; returns
    its row.

    Under a transaction-level lock of the account: running sessions of the account whose last
    heartbeat is older than ``stale_after`` become 'abandoned'; a fresh running session with
    another id raises ``LiveSessionConflict``. A new id is inserted; a known one is re-opened
    (running again, restarts + 1, no end) provided account, mode, policy, policy version and
    feature set are the same (ValueError otherwise: that is a new session). The ``tt_episode``
    of the same id (kind = mode) is created, or re-opened, alongside. ``policy_id`` must be
    registered in ``tt_policy``, or None.
    """
    values = {
        "session_id": _text(session_id, "session_id"),
        "run_id": _text(run_id, "run_id", nullable=True),
        "account_key": _account_key(account_key),
        "mode": _one_of(mode, LIVE_MODES, "mode"),
        "policy_id": _text(policy_id, "policy_id", nullable=True),
        "policy_version": _text(policy_version, "policy_version"),
        "feature_set_hash": _text(feature_set_hash, "feature_set_hash"),
    }
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    if not isinstance(stale_after, dt.timedelta) or stale_after <= dt.timedelta(0):
        raise ValueError(f"stale_after must be a positive timedelta, got {stale_after!r}")
    config_json = json_safe(dict(config))
    with transaction(conn_or_engine) as conn:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(:account))"),
            {"key": _ACCOUNT_LOCK_KEY, "account": account_key},
        )
        _abandon_stale(conn, account_key, session_id, stale_after)
        _refuse_other_holder(conn, account_key, session_id, stale_after)
        stored = conn.execute(
            sa.select(live_session).where(live_session.c.session_id == session_id).with_for_update()
        ).mappings().first()
        if stored is None:
            _check_policy_registered(conn, policy_id)
            conn.execute(
                sa.insert(live_session).values(**values, status=RUNNING, config=config_json, restarts=0)
            )
        else:
            _check_same_session(stored, values)
            conn.execute(
                sa.update(live_session)
                .where(live_session.c.session_id == session_id)
                .values(
                    status=RUNNING, restarts=live_session.c.restarts + 1, heartbeat_at=sa.func.now(),
                    ended_at=None, reason=None, run_id=values["run_id"], config=config_json,
                )
            )
        row = _session_row(conn, session_id)
        _ensure_episode(conn, row)
    opened = "opened" if stored is None else f"re-opened (restart {row['restarts']})"
    logger.info("live session %r (%s) %s", session_id, mode, opened)
    return row


def _abandon_stale(conn: Connection, account_key: str, session_id: str, stale_after: dt.timedelta) -> None:
    seconds = stale_after.total_seconds()
    reason = (
        f"abandoned: no heartbeat for more than {seconds:g} s when session {session_id!r} "
        "opened on the same account"
    )
    stale = conn.execute(
        sa.update(live_session)
        .where(
            live_session.c.account_key == account_key,
            live_session.c.status == RUNNING,
            live_session.c.session_id != session_id,
            live_session.c.heartbeat_at < sa.func.now() - sa.literal(stale_after, sa.Interval()),
        )
        # it ended, as far as anyone knows, with its last heartbeat
        .values(status=ABANDONED, ended_at=live_session.c.heartbeat_at, reason=reason)
        .returning(live_session.c.session_id, live_session.c.heartbeat_at)
    ).all()
    for abandoned, last_seen in stale:
        conn.execute(sa.update(episode).where(episode.c.episode_id == abandoned).values(ended_at=last_seen))
        logger.warning("live session %r marked abandoned (%s)", abandoned, reason)


def _refuse_other_holder(conn: Connection, account_key: str, session_id: str, stale_after: dt.timedelta) -> None:
    age = sa.extract("epoch", sa.func.now() - live_session.c.heartbeat_at)
    holder = conn.execute(
        sa.select(live_session.c.session_id, live_session.c.mode, age.label("age"))
        .where(
            live_session.c.account_key == account_key,
            live_session.c.status == RUNNING,
            live_session.c.session_id != session_id,
        )
        .order_by(live_session.c.heartbeat_at.desc())
    ).first()
    if holder is not None:
        raise LiveSessionConflict(
            f"cannot open live session {session_id!r}: the account is held by the running {holder.mode} session "
            f"{holder.session_id!r}, last heartbeat {float(holder.age):.0f} s ago (it counts as abandoned after "
            f"{stale_after.total_seconds():g} s without one); stop that session first"
        )


def _check_same_session(stored: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    names = ("mode", "policy_id", "policy_version", "feature_set_hash")
    changed = _differences(stored, values, names)
    if stored["account_key"] != values["account_key"]:
        changed.insert(0, "account_key differs")  # neither key is shown
    if changed:
        raise ValueError(
            f"live session {values['session_id']!r} is recorded with other settings ({_listed(changed)}); "
            "a session trades one policy version on one account in one mode: use a new session_id"
        )


def _check_policy_registered(conn: Connection, policy_id: str | None) -> None:
    # the episode's foreign key would refuse it too, with a database message
    if policy_id is None:
        return
    if conn.execute(sa.select(policy.c.policy_id).where(policy.c.policy_id == policy_id)).first() is None:
        raise ValueError(
            f"policy_id {policy_id!r} is not registered in tt_policy; register the policy first or pass policy_id=None"
        )


def _ensure_episode(conn: Connection, session: Mapping[str, Any]) -> None:
    """The session's tt_episode (same id, kind = mode), created or re-opened."""
    session_id = session["session_id"]
    stored = conn.execute(
        sa.select(episode.c.kind, episode.c.policy_id).where(episode.c.episode_id == session_id).with_for_update()
    ).first()
    if stored is None:
        conn.execute(
            sa.insert(episode).values(
                episode_id=session_id, policy_id=session["policy_id"], kind=session["mode"],
                started_at=session["started_at"], config=session["config"],
            )
        )
        return
    if stored.kind != session["mode"] or stored.policy_id != session["policy_id"]:
        raise ValueError(
            f"episode {session_id!r} already exists as a {stored.kind} episode of policy {stored.policy_id!r}; "
            f"a {session['mode']} session needs an episode id of its own"
        )
    conn.execute(sa.update(episode).where(episode.c.episode_id == session_id).values(ended_at=None))


def _session_row(conn: Connection, session_id: str) -> dict[str, Any]:
    return dict(conn.execute(sa.select(live_session).where(live_session.c.session_id == session_id)).mappings().one())


def _require_running(conn: Connection, session_id: str) -> None:
    """Raise unless the session is running; holds its row (shared) until the transaction ends,
    so it cannot be marked abandoned in between."""
    statement = (
        sa.select(live_session.c.status, live_session.c.reason)
        .where(live_session.c.session_id == session_id)
        .with_for_update(read=True)
    )
    row = conn.execute(statement).first()
    if row is None:
        raise KeyError(f"live session {session_id!r} is not recorded; open_session it first")
    if row.status != RUNNING:
        raise LiveSessionNotRunning(
            f"live session {session_id!r} is {row.status}" + (f" ({row.reason})" if row.reason else "")
            + "; it may not trade or record any more unless opened again"
        )


def heartbeat(
    conn_or_engine: Connection | Engine,
    session_id: str,
    *,
    last_bar_time: dt.datetime | pd.Timestamp | None = None,
    equity: float | None = None,
) -> None:
    """Mark the session alive now; ``last_bar_time`` only moves forward, ``equity`` is the last
    marked equity. Raises ``LiveSessionNotRunning`` when the session has ended (e.g. another
    session found it stale and took over the account), KeyError when it is unknown."""
    values: dict[str, Any] = {"heartbeat_at": sa.func.now()}
    if last_bar_time is not None:
        bar = sa.literal(_time(last_bar_time, "last_bar_time"), live_session.c.last_bar_time.type)
        values["last_bar_time"] = sa.func.greatest(live_session.c.last_bar_time, bar)
    if equity is not None:
        values["equity"] = _number(equity, "equity")
    with transaction(conn_or_engine) as conn:
        updated = conn.execute(
            sa.update(live_session)
            .where(live_session.c.session_id == session_id, live_session.c.status == RUNNING)
            .values(**values)
        ).rowcount
        if updated == 0:
            _require_running(conn, session_id)  # raises: unknown or not running


def close_session(conn_or_engine: Connection | Engine, session_id: str, status: str, reason: str = "") -> None:
    """End a running session with ``status`` ('stopped', 'canceled', 'failed' or 'abandoned') and
    ``reason``, stamping ``ended_at`` on it and on its episode.

    Closing an ended session changes nothing: its first ending stands (a session abandoned
    while it still ran stays abandoned when it then stops). KeyError for an unknown session."""
    _one_of(status, SESSION_END_STATUSES, "status")
    _text(reason, "reason", nullable=True, empty=True)
    with transaction(conn_or_engine) as conn:
        stored = conn.execute(
            sa.select(live_session.c.status).where(live_session.c.session_id == session_id).with_for_update()
        ).first()
        if stored is None:
            raise KeyError(f"live session {session_id!r} is not recorded")
        if stored.status != RUNNING:
            if stored.status != status:
                logger.warning("live session %r already ended as %s; closing it as %s changes nothing",
                               session_id, stored.status, status)
            return
        conn.execute(
            sa.update(live_session)
            .where(live_session.c.session_id == session_id)
            .values(status=status, reason=reason or None, ended_at=sa.func.now())
        )
        conn.execute(sa.update(episode).where(episode.c.episode_id == session_id).values(ended_at=sa.func.now()))
    logger.info("live session %r closed: %s", session_id, status)


def get_session(conn_or_engine: Connection | Engine, session_id: str) -> dict[str, Any] | None:
    """The session row as a dict, None when unknown."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(sa.select(live_session).where(live_session.c.session_id == session_id)).mappings().first()
    return None if row is None else dict(row)


def running_sessions(conn_or_engine: Connection | Engine, account_key: str | None = None) -> pd.DataFrame:
    """Running sessions (of one account when given), oldest first."""
    statement = (
        sa.select(*live_session.columns)
        .where(live_session.c.status == RUNNING)
        .order_by(live_session.c.started_at, live_session.c.session_id)
    )
    if account_key is not None:
        statement = statement.where(live_session.c.account_key == account_key)
    return read_frame(conn_or_engine, statement)


# --- decisions and marks ---------------------------------------------------------------------


def _audit_values(audit: Mapping[str, Any]) -> dict[str, Any]:
    """``AuditRecord.as_row()`` checked column by column, as stored (order_refs as a list)."""
    if not isinstance(audit, Mapping):
        raise TypeError(f"audit must be a mapping (AuditRecord.as_row()), got {type(audit).__name__}")
    missing = [c for c in AUDIT_COLUMNS if c not in audit]
    unknown = sorted(str(k) for k in audit if k not in AUDIT_COLUMNS)
    if missing or unknown:
        raise ValueError(
            f"audit row: missing columns {missing}, unknown columns {unknown}; expected {list(AUDIT_COLUMNS)}"
        )
    values: dict[str, Any] = {}
    for name in AUDIT_COLUMNS:
        column, value, label = live_audit.c[name], audit[name], f"audit {name}"
        if name == "order_refs":
            values[name] = _order_refs(value)
        elif isinstance(column.type, sa.DateTime):
            values[name] = _time(value, label)
        elif isinstance(column.type, sa.Boolean):
            values[name] = _boolean(value, label)
        elif isinstance(column.type, sa.Integer):
            values[name] = _integer(value, label)
        elif isinstance(column.type, sa.Float):
            values[name] = _number(value, label, nullable=column.nullable)
        else:
            values[name] = _text(value, label, empty=name in _AUDIT_MAY_BE_EMPTY)
    if values["n_orders"] != len(values["order_refs"]):
        refs = len(values["order_refs"])
        raise ValueError(f"audit n_orders is {values['n_orders']} but order_refs holds {refs} refs")
    return values


def _order_refs(value: Any) -> list[str]:
    refs = value
    if isinstance(value, str):
        try:
            refs = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"audit order_refs is not JSON ({err}): {value!r}") from None
    if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) and r for r in refs):
        raise ValueError(f"audit order_refs must be a JSON array of non-empty strings, got {value!r}")
    return list(refs)


def record_decision(
    conn_or_engine: Connection | Engine,
    *,
    session_id: str,
    step: int,
    audit: Mapping[str, Any],
    actions: Mapping[str, float],
    target_weights: Mapping[str, float],
) -> int:
    """Record one decision: its ``tt_live_audit`` row (``AuditRecord.as_row()``) and its
    ``tt_action`` and ``tt_target_weights`` rows (step ``step``, ts = the audit's bar_time), in
    one transaction; returns the audit_id.

    The same (session, step) again with the same content (every column but run_id and
    latency_ms, and the same actions and weights) returns the stored audit_id and writes nothing:
    the first recording stands. Other content raises ``LiveRecordConflict``. A new decision needs a running session
    whose policy version and feature set the audit repeats (``LiveSessionNotRunning``,
    ValueError)."""
    row = _audit_values(audit)
    step = _integer(step, "step")
    given_actions = _weights(actions, "actions")
    given_weights = _weights(target_weights, "target_weights")
    with transaction(conn_or_engine) as conn:
        stored = _stored_decision(conn, session_id, step)
        if stored is not None:
            return _same_decision(conn, session_id, step, stored, row, given_actions, given_weights)
        _require_running(conn, session_id)
        _check_decision_lineage(conn, session_id, row)
        audit_id = conn.execute(
            pg_insert(live_audit)
            .values(session_id=session_id, step=step, **row)
            .on_conflict_do_nothing(index_elements=["session_id", "step"])
            .returning(live_audit.c.audit_id)
        ).scalar()
        if audit_id is None:  # a concurrent writer recorded this step meanwhile
            stored = _stored_decision(conn, session_id, step)
            return _same_decision(conn, session_id, step, stored, row, given_actions, given_weights)
        bar_time = row["bar_time"]
        _write_step_values(conn, action, "action", session_id, step, bar_time, given_actions)
        _write_step_values(conn, target_weights_table, "weight", session_id, step, bar_time, given_weights)
        return int(audit_id)


def _stored_decision(conn: Connection, session_id: str, step: int) -> dict[str, Any] | None:
    statement = sa.select(live_audit).where(live_audit.c.session_id == session_id, live_audit.c.step == step)
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def _step_values(conn: Connection, table: sa.Table, column: str, session_id: str, step: int) -> dict[str, float]:
    mine = (table.c.episode_id == session_id, table.c.step == step)
    statement = sa.select(table.c.instrument, table.c[column]).where(*mine)
    return {instrument: value for instrument, value in conn.execute(statement).all()}


def _same_decision(
    conn: Connection,
    session_id: str,
    step: int,
    stored: Mapping[str, Any],
    row: Mapping[str, Any],
    actions_: Mapping[str, float],
    weights: Mapping[str, float],
) -> int:
    differences = _differences(stored, row, _DECISION_CONTENT)
    for name, table, column, given in (("actions", action, "action", actions_),
                                       ("target_weights", target_weights_table, "weight", weights)):
        kept = _step_values(conn, table, column, session_id, step)
        if set(kept) != set(given):
            differences.append(f"{name}: stored for {sorted(kept)}, given for {sorted(given)}")
        else:
            differences += [f"{name}[{k!r}]: stored {kept[k]!r}, given {given[k]!r}" for k in sorted(given)
                            if kept[k] != given[k]]
    if differences:
        raise LiveRecordConflict(
            f"decision step {step} of live session {session_id!r} is already recorded with other content "
            f"({_listed(differences)}); the audit is append-only: record the new decision under the next step"
        )
    return int(stored["audit_id"])


def _check_decision_lineage(conn: Connection, session_id: str, row: Mapping[str, Any]) -> None:
    statement = sa.select(live_session.c.policy_version, live_session.c.feature_set_hash).where(
        live_session.c.session_id == session_id
    )
    session = conn.execute(statement).mappings().one()
    mismatched = _differences(session, row, ("policy_version", "feature_set_hash"))
    if mismatched:
        raise ValueError(
            f"decision of live session {session_id!r} made by another policy than the session's ({_listed(mismatched)})"
        )


def _write_step_values(
    conn: Connection, table: sa.Table, column: str, session_id: str, step: int, ts: dt.datetime,
    values: Mapping[str, float],
) -> None:
    if not values:
        return
    rows = [{"episode_id": session_id, "step": step, "ts": ts, "instrument": k, column: v} for k, v in values.items()]
    statement = pg_insert(table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["episode_id", "step", "instrument"],
            set_={"ts": statement.excluded.ts, column: statement.excluded[column]},
        ),
        rows,
    )


def record_mark(
    conn_or_engine: Connection | Engine,
    *,
    session_id: str,
    step: int,
    ts: dt.datetime | pd.Timestamp,
    cash: float,
    equity: float,
    leverage: float | None,
    holdings: Mapping[str, tuple[float, float | None]],
) -> None:
    """Record the portfolio of a running session at ``step``: its ``tt_portfolio`` row and its
    ``tt_holdings`` (instrument -> (quantity, market_value)). Recording a step again replaces
    that step's mark and holdings (instruments no longer given are removed)."""
    step = _integer(step, "step")
    stamp = _time(ts, "ts")
    mark = {
        "ts": stamp,
        "cash": _number(cash, "cash"),
        "equity": _number(equity, "equity"),
        "leverage": _number(leverage, "leverage", nullable=True),
    }
    if not isinstance(holdings, Mapping):
        raise TypeError(
            f"holdings must be a mapping of instrument -> (quantity, market_value), got {type(holdings).__name__}"
        )
    positions = []
    for instrument, position in holdings.items():
        _text(instrument, "holdings instrument")
        if not isinstance(position, (tuple, list)) or len(position) != 2:
            raise ValueError(f"holdings[{instrument!r}] must be (quantity, market_value), got {position!r}")
        positions.append({
            "episode_id": session_id, "step": step, "ts": stamp, "instrument": instrument,
            "quantity": _number(position[0], f"holdings[{instrument!r}] quantity"),
            "market_value": _number(position[1], f"holdings[{instrument!r}] market_value", nullable=True),
        })
    with transaction(conn_or_engine) as conn:
        _require_running(conn, session_id)
        statement = pg_insert(portfolio).values(episode_id=session_id, step=step, **mark)
        conn.execute(statement.on_conflict_do_update(index_elements=["episode_id", "step"], set_=mark))
        at_step = (holdings_table.c.episode_id == session_id, holdings_table.c.step == step)
        conn.execute(sa.delete(holdings_table).where(*at_step))
        if positions:
            conn.execute(sa.insert(holdings_table), positions)


def next_step(conn_or_engine: Connection | Engine, session_id: str) -> int:
    """The step the session records next: 1 + the largest step of its decisions and marks, 0
    when it has none, so a restarted session continues the numbering."""
    decided = sa.select(sa.func.max(live_audit.c.step)).where(live_audit.c.session_id == session_id).scalar_subquery()
    marked = sa.select(sa.func.max(portfolio.c.step)).where(portfolio.c.episode_id == session_id).scalar_subquery()
    with transaction(conn_or_engine) as conn:
        value = conn.execute(sa.select(sa.func.coalesce(sa.func.greatest(decided, marked) + 1, 0))).scalar()
    return int(value)


def last_audit(conn_or_engine: Connection | Engine, session_id: str) -> dict[str, Any] | None:
    """The session's latest decision (by step) as a dict, None when it has none; order_refs is a
    list. What a restarted session resumes its circuit breaker from."""
    statement = (
        sa.select(live_audit).where(live_audit.c.session_id == session_id).order_by(live_audit.c.step.desc()).limit(1)
    )
    with transaction(conn_or_engine) as conn:
        row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def day_start_equity(conn_or_engine: Connection | Engine, session_id: str, trading_day: str) -> float | None:
    """The equity the session's ``trading_day`` started from, as its daily kill switch counts it:
    the last equity decided on an earlier day, else the day's first; None without decisions that day."""
    earlier = (
        sa.select(live_audit.c.guard_equity)
        .where(live_audit.c.session_id == session_id, live_audit.c.guard_trading_day < trading_day)
        .order_by(live_audit.c.step.desc()).limit(1)
    )
    first = (
        sa.select(live_audit.c.guard_equity)
        .where(live_audit.c.session_id == session_id, live_audit.c.guard_trading_day == trading_day)
        .order_by(live_audit.c.step).limit(1)
    )
    with transaction(conn_or_engine) as conn:
        that_day = conn.execute(first).scalar()
        if that_day is None:
            return None
        before = conn.execute(earlier).scalar()
    return float(before if before is not None else that_day)


def read_audit(conn_or_engine: Connection | Engine, session_id: str) -> pd.DataFrame:
    """The session's decisions, by step."""
    statement = sa.select(*live_audit.columns).where(live_audit.c.session_id == session_id).order_by(live_audit.c.step)
    return read_frame(conn_or_engine, statement)


def read_marks(conn_or_engine: Connection | Engine, session_id: str) -> pd.DataFrame:
    """The session's ``tt_portfolio`` rows, by step."""
    statement = sa.select(*portfolio.columns).where(portfolio.c.episode_id == session_id).order_by(portfolio.c.step)
    return read_frame(conn_or_engine, statement)


def read_holdings(conn_or_engine: Connection | Engine, session_id: str, step: int | None = None) -> pd.DataFrame:
    """The session's holdings at ``step`` (default: its latest marked step), by instrument."""
    mine = holdings_table.c.episode_id == session_id
    if step is None:
        at = sa.select(sa.func.max(holdings_table.c.step)).where(mine).scalar_subquery()
    else:
        at = _integer(step, "step")
    statement = sa.select(*holdings_table.columns).where(mine, holdings_table.c.step == at)
    return read_frame(conn_or_engine, statement.order_by(holdings_table.c.instrument))


# --- orders and fills ------------------------------------------------------------------------


def _order_value(name: str, value: Any) -> Any:
    """One tt_order field, checked and as stored."""
    if name in ("order_id", "instrument"):
        return _text(value, name)
    if name in ("episode_id", "order_ref", "tif"):
        return _text(value, name, nullable=True)
    if name == "broker_order_id":
        # IB order ids are integers; the column keeps any broker's text
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(value)
        return _text(value, name, nullable=True)
    if name == "message":
        return _text(value, name, nullable=True, empty=True)
    if name in ("ts", "submitted_at"):
        return _time(value, name, nullable=name == "submitted_at")
    if name == "side":
        return _one_of(value, ORDER_SIDES, "side")
    if name == "order_type":
        return _one_of(value, ORDER_TYPES, "order_type")
    if name == "status":
        return _one_of(value, ORDER_STATUSES, "status")
    if name == "quantity":
        return _number(value, name, positive=True)
    if name == "filled_quantity":
        return _number(value, name, non_negative=True)
    if name in ("limit_price", "avg_fill_price"):
        return _number(value, name, nullable=True, positive=True)
    raise ValueError(f"tt_order has no field {name!r}; fields: {list(ORDER_FIELDS)}")


def _check_order(values: Mapping[str, Any]) -> None:
    """Rules between the fields of a whole order."""
    if values.get("order_type") == "LIMIT" and values.get("limit_price") is None:
        raise ValueError(f"order {values['order_id']!r}: a LIMIT order needs a limit_price")
    if values.get("filled_quantity", 0.0) > values["quantity"]:
        raise ValueError(
            f"order {values['order_id']!r}: filled_quantity {values['filled_quantity']!r} exceeds quantity "
            f"{values['quantity']!r}"
        )


def record_order(conn_or_engine: Connection | Engine, row: Mapping[str, Any]) -> None:
    """Insert or update one order by ``order_id`` (for live orders, ``order_id == order_ref``).

    ``row`` holds at least order_id, ts, instrument, side ('buy'/'sell'), quantity (> 0),
    order_type ('MARKET'/'LIMIT') and status (``ORDER_STATUSES``); optionally episode_id (the
    session id), limit_price, broker_order_id, order_ref, tif, submitted_at, filled_quantity,
    avg_fill_price and message. On update only the fields given change; episode, instrument and
    side of a stored order never do (``LiveRecordConflict``), nor may its order_ref belong to
    another order."""
    if not isinstance(row, Mapping):
        raise TypeError(f"record_order: row must be a mapping, got {type(row).__name__}")
    missing = [n for n in _ORDER_REQUIRED if n not in row]
    if missing:
        raise ValueError(f"record_order: the row lacks {missing} (order {row.get('order_id')!r})")
    values = {name: _order_value(name, value) for name, value in row.items()}
    with transaction(conn_or_engine) as conn:
        _check_ref_free(conn, values["order_id"], values.get("order_ref"))
        stored = _stored_order(conn, values["order_id"])
        if stored is not None:
            _update_stored_order(conn, stored, values)
            return
        _check_order(values)
        episode_id = values.get("episode_id")
        if episode_id is not None and conn.execute(
            sa.select(episode.c.episode_id).where(episode.c.episode_id == episode_id)
        ).first() is None:
            raise KeyError(
                f"order {values['order_id']!r}: episode {episode_id!r} is not recorded (open the session first)"
            )
        conn.execute(sa.insert(order).values(**values))


def update_order(conn_or_engine: Connection | Engine, order_id: str, **fields: Any) -> None:
    """Change only the named fields of a stored order (status, filled_quantity, avg_fill_price,
    broker_order_id, message, ...); ``updated_at`` moves when something changed. KeyError when
    the order is unknown."""
    values = {name: _order_value(name, value) for name, value in fields.items()}
    if "order_id" in values and values["order_id"] != order_id:
        raise ValueError(f"update_order: the order_id of order {order_id!r} cannot change")
    with transaction(conn_or_engine) as conn:
        stored = _stored_order(conn, order_id)
        if stored is None:
            raise KeyError(f"order {order_id!r} is not recorded")
        _check_ref_free(conn, order_id, values.get("order_ref"))
        _update_stored_order(conn, stored, values)


def _stored_order(conn: Connection, order_id: str) -> dict[str, Any] | None:
    statement = sa.select(*[order.c[n] for n in ORDER_FIELDS]).where(order.c.order_id == order_id).with_for_update()
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def _check_ref_free(conn: Connection, order_id: str, order_ref: str | None) -> None:
    if order_ref is None:
        return
    statement = sa.select(order.c.order_id).where(order.c.order_ref == order_ref, order.c.order_id != order_id)
    other = conn.execute(statement).scalar()
    if other is not None:
        raise LiveRecordConflict(f"order {order_id!r}: order_ref {order_ref!r} already belongs to order {other!r}")


def _update_stored_order(conn: Connection, stored: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    order_id = stored["order_id"]
    changed_identity = _differences(stored, values, _ORDER_IDENTITY)
    if changed_identity:
        raise LiveRecordConflict(
            f"order {order_id!r} is recorded with other {_listed(changed_identity)}; an order id names one order"
        )
    changes = {n: v for n, v in values.items() if n != "order_id" and not _same(stored[n], v)}
    if not changes:
        return
    _check_order({**stored, **changes})
    conn.execute(sa.update(order).where(order.c.order_id == order_id).values(**changes, updated_at=sa.func.now()))


def _session_orders_statement(session_id: str) -> sa.Select:
    return sa.select(*order.columns).where(order.c.episode_id == session_id).order_by(order.c.ts, order.c.order_id)


def open_orders(conn_or_engine: Connection | Engine, session_id: str) -> pd.DataFrame:
    """The session's orders whose status is open (``ORDER_OPEN_STATUSES``), by ts."""
    statement = _session_orders_statement(session_id).where(order.c.status.in_(ORDER_OPEN_STATUSES))
    return read_frame(conn_or_engine, statement)


def session_orders(conn_or_engine: Connection | Engine, session_id: str) -> pd.DataFrame:
    """Every order of the session, by ts."""
    return read_frame(conn_or_engine, _session_orders_statement(session_id))


def known_order_refs(conn_or_engine: Connection | Engine, session_id: str) -> set[str]:
    """The order refs of the session's stored orders, whatever their status."""
    statement = sa.select(order.c.order_ref).where(order.c.episode_id == session_id, order.c.order_ref.is_not(None))
    with transaction(conn_or_engine) as conn:
        return set(conn.execute(statement).scalars())


def _fill_values(row: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise TypeError(f"record_fill: row must be a mapping, got {type(row).__name__}")
    missing = [n for n in _FILL_REQUIRED if n not in row]
    unknown = sorted(str(n) for n in row if n not in FILL_FIELDS)
    if missing or unknown:
        raise ValueError(
            f"record_fill (fill {row.get('fill_id')!r}): missing fields {missing}, unknown fields {unknown}; "
            f"fields: {list(FILL_FIELDS)}"
        )
    checks = {
        "fill_id": lambda v: _text(v, "fill_id"),
        "order_id": lambda v: _text(v, "order_id"),
        "ts": lambda v: _time(v, "ts"),
        "instrument": lambda v: _text(v, "instrument"),
        # signed: positive bought, negative sold
        "quantity": lambda v: _number(v, "quantity", nonzero=True),
        "price": lambda v: _number(v, "price", positive=True),
        "commission": lambda v: _number(v, "commission"),
        "slippage": lambda v: _number(v, "slippage", nullable=True),
        "shadow_price": lambda v: _number(v, "shadow_price", nullable=True, positive=True),
        "divergence_bps": lambda v: _number(v, "divergence_bps", nullable=True),
    }
    return {name: checks[name](value) for name, value in row.items()}


def record_fill(conn_or_engine: Connection | Engine, row: Mapping[str, Any]) -> bool:
    """Store one execution by ``fill_id`` (IB execId or a paper fill id); True when new.

    Its order must be recorded, with the same instrument and the side its quantity's sign says.
    The same fill_id again (IB re-sends executions) returns False; its commission, slippage,
    shadow_price and divergence_bps are updated when given with other values (IB reports the
    commission after the execution). Another order, instrument, quantity or price under a
    stored fill_id raises ``LiveRecordConflict``."""
    values = _fill_values(row)
    fill_id = values["fill_id"]
    with transaction(conn_or_engine) as conn:
        parent = conn.execute(
            sa.select(order.c.side, order.c.instrument).where(order.c.order_id == values["order_id"])
        ).first()
        if parent is None:
            raise KeyError(f"fill {fill_id!r}: order {values['order_id']!r} is not recorded; record_order it first")
        if parent.instrument != values["instrument"]:
            raise ValueError(
                f"fill {fill_id!r} is for {values['instrument']!r} but its order {values['order_id']!r} is for "
                f"{parent.instrument!r}"
            )
        if (values["quantity"] > 0) != (parent.side == "buy"):
            raise ValueError(
                f"fill {fill_id!r}: quantity {values['quantity']!r} has the wrong sign for a {parent.side} order "
                "(positive bought, negative sold)"
            )
        insert = pg_insert(fill).values(**values).on_conflict_do_nothing(index_elements=["fill_id"])
        inserted = conn.execute(insert.returning(fill.c.fill_id)).first()
        if inserted is not None:
            return True
        stored = dict(conn.execute(sa.select(fill).where(fill.c.fill_id == fill_id).with_for_update()).mappings().one())
        conflicting = _differences(stored, values, _FILL_IDENTITY)
        if conflicting:
            raise LiveRecordConflict(f"fill {fill_id!r} is already recorded with other values ({_listed(conflicting)})")
        changes = {n: v for n, v in values.items() if n not in _FILL_IDENTITY and n not in ("fill_id", "ts")
                   and not _same(stored[n], v)}
        if changes:
            conn.execute(sa.update(fill).where(fill.c.fill_id == fill_id).values(**changes))
        return False


def order_journal(conn_or_engine: Connection | Engine, session_id: str | None = None,
                  order_id: str | None = None) -> pd.DataFrame:
    """The append-only journal of order changes (``tt_order_event``), oldest first: every change
    the session's (or one order's) records went through, as the database itself wrote it."""
    statement = sa.select(*order_event.columns).order_by(order_event.c.event_id)
    if session_id is not None:
        statement = statement.where(order_event.c.session_id == session_id)
    if order_id is not None:
        statement = statement.where(order_event.c.order_id == order_id)
    return read_frame(conn_or_engine, statement)


def session_fills(conn_or_engine: Connection | Engine, session_id: str) -> pd.DataFrame:
    """The fills of the session's orders, by ts."""
    statement = (
        sa.select(*fill.columns)
        .where(fill.c.order_id.in_(sa.select(order.c.order_id).where(order.c.episode_id == session_id)))
        .order_by(fill.c.ts, fill.c.fill_id)
    )
    return read_frame(conn_or_engine, statement)


def record_new_orders(conn_or_engine: Connection | Engine, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert new orders of one session in one statement (the live loop's write-ahead before
    sending): every row is checked as ``record_order`` checks a new one; an order id or ref
    already stored refuses the whole batch (``LiveRecordConflict``) and nothing is written."""
    if not rows:
        return 0
    batch = []
    for row in rows:
        missing = [n for n in _ORDER_REQUIRED if n not in row]
        if missing:
            raise ValueError(f"record_new_orders: the row lacks {missing} (order {row.get('order_id')!r})")
        values = {name: _order_value(name, value) for name, value in row.items()}
        _check_order(values)
        batch.append(values)
    ids = [v["order_id"] for v in batch]
    refs = [v["order_ref"] for v in batch if v.get("order_ref")]
    if len(set(ids)) != len(ids) or len(set(refs)) != len(refs):
        raise LiveRecordConflict(f"record_new_orders: the batch names an order or ref twice ({_listed(ids)})")
    columns = sorted({name for values in batch for name in values})
    # one statement: the table's keys and its episode foreign key refuse a clash, so the live
    # loop's write-ahead costs one round trip; what was refused is looked up only then
    try:
        with transaction(conn_or_engine) as conn:
            conn.execute(sa.insert(order), [{name: values.get(name) for name in columns} for values in batch])
    except sa.exc.IntegrityError as exc:
        raise _new_orders_refused(conn_or_engine, batch, ids, refs, exc) from None
    return len(batch)


def _new_orders_refused(conn_or_engine: Connection | Engine, batch: list[dict[str, Any]], ids: list[str],
                        refs: list[str], error: sa.exc.IntegrityError) -> Exception:
    """Why the database refused a batch of new orders, as ``record_new_orders`` reports it."""
    episodes = {v.get("episode_id") for v in batch} - {None}
    with transaction(conn_or_engine) as conn:
        clash = conn.execute(sa.select(order.c.order_id).where(
            sa.or_(order.c.order_id.in_(ids), order.c.order_ref.in_(refs or ids)))).scalars().all()
        if clash:
            return LiveRecordConflict(f"orders already recorded: {_listed(sorted(clash))}; an order is never recorded twice")
        known = set(conn.execute(sa.select(episode.c.episode_id).where(episode.c.episode_id.in_(episodes))).scalars())
    if episodes - known:
        return KeyError(f"orders of episode(s) {sorted(episodes - known)} that are not recorded (open the session first)")
    return error


def record_order_progress(conn_or_engine: Connection | Engine, fills: Sequence[Mapping[str, Any]],
                       updates: Sequence[Mapping[str, Any]]) -> int:
    """Fills and their orders' new state, in one transaction.

    ``fills``: rows as ``record_fill`` takes them (new fill ids only); ``updates``: per order,
    ``order_id`` plus the fields to set (status, filled_quantity, avg_fill_price, message)."""
    values = [_fill_values(row) for row in fills]
    # an order named twice gets both updates, the later one's fields winning (as if applied in
    # turn); then one UPDATE ... FROM (VALUES ...) per set of fields updated
    merged: dict[str, dict[str, Any]] = {}
    for update in updates:
        order_id = _text(update["order_id"], "order_id")
        fields = {name: _order_value(name, value) for name, value in update.items() if name != "order_id"}
        merged[order_id] = merged.get(order_id, {}) | fields
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for order_id, fields in merged.items():
        groups.setdefault(tuple(sorted(fields)), []).append({"order_id": order_id} | fields)
    with transaction(conn_or_engine) as conn:
        if values:
            conn.execute(pg_insert(fill).on_conflict_do_nothing(index_elements=["fill_id"]), values)
        for names, rows in groups.items():
            conn.execute(_progress_update(names, rows))
    return len(values)


def _progress_update(names: tuple[str, ...], rows: list[dict[str, Any]]) -> sa.Update:
    """One UPDATE setting ``names`` of every order in ``rows`` (each with ``order_id``)."""
    if len(rows) == 1:
        (row,) = rows
        return sa.update(order).where(order.c.order_id == row["order_id"]).values(
            **{name: row[name] for name in names}, updated_at=sa.func.now())
    columns = [sa.column("order_id", order.c.order_id.type), *[sa.column(name, order.c[name].type) for name in names]]
    given = sa.values(*columns, name="progress").data([tuple(row[c.name] for c in columns) for row in rows])
    # a VALUES column of NULLs only is text to PostgreSQL: cast each to the column's type
    return (sa.update(order).where(order.c.order_id == given.c.order_id)
            .values(**{name: sa.cast(given.c[name], order.c[name].type) for name in names}, updated_at=sa.func.now()))


def get_order(conn_or_engine: Connection | Engine, order_id: str) -> dict[str, Any] | None:
    """One order's row, None when it is not recorded."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(sa.select(*[order.c[n] for n in ORDER_FIELDS]).where(order.c.order_id == order_id)).mappings().first()
    return None if row is None else dict(row)


def get_orders(conn_or_engine: Connection | Engine, order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The rows of the given orders that are recorded, by order id (one query)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    with transaction(conn_or_engine) as conn:
        rows = conn.execute(sa.select(*[order.c[n] for n in ORDER_FIELDS]).where(order.c.order_id.in_(ids))).mappings()
        return {row["order_id"]: dict(row) for row in rows}


def insert_new_fills(conn_or_engine: Connection | Engine, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert executions in one statement and return the fill ids that were new (a fill id
    already stored is left as it is: executions are delivered again after reconnects).

    Every row is checked as ``record_fill`` checks one: known order, same instrument, the sign
    of the order's side; a bad row refuses the whole batch."""
    if not rows:
        return set()
    values = [_fill_values(row) for row in rows]
    with transaction(conn_or_engine) as conn:
        parents = {row.order_id: row for row in conn.execute(
            sa.select(order.c.order_id, order.c.side, order.c.instrument)
            .where(order.c.order_id.in_({v["order_id"] for v in values})))}
        for v in values:
            parent = parents.get(v["order_id"])
            if parent is None:
                raise KeyError(f"fill {v['fill_id']!r}: order {v['order_id']!r} is not recorded; record_order it first")
            if parent.instrument != v["instrument"] or (v["quantity"] > 0) != (parent.side == "buy"):
                raise ValueError(f"fill {v['fill_id']!r} ({v['instrument']}, {v['quantity']:+g}) does not fit its "
                                 f"{parent.side} order {v['order_id']!r} for {parent.instrument}")
        columns = sorted({name for v in values for name in v})
        statement = (pg_insert(fill).values([{name: v.get(name) for name in columns} for v in values])
                     .on_conflict_do_nothing(index_elements=["fill_id"]).returning(fill.c.fill_id))
        return set(conn.execute(statement).scalars())
