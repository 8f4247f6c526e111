"""Fast, idempotent, all-or-nothing bulk upsert of a DataFrame into a tt_ table.

The frame is checked and converted column by column (``wire``), streamed with binary COPY into a
temporary staging table (``copy_binary``), and merged with two set-based statements:
``UPDATE … FROM stage`` for existing keys whose values differ, then ``INSERT … SELECT`` of the
keys the table does not hold yet. Unchanged rows are not rewritten, so re-running a batch costs
one read pass and leaves ``ingested_at``-style columns untouched. A plain INSERT is about twice
as fast as ``INSERT … ON CONFLICT`` (no speculative insertion per row); the ON CONFLICT form
remains the fallback when a concurrent writer inserts one of the same keys meanwhile.

Everything runs in one transaction: given an Engine, its own; given a Connection, a savepoint
inside the caller's transaction (the caller commits). A bad batch raises ``UpsertError`` and
leaves nothing written.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from tt_platform.store import schema
from tt_platform.store.copy_binary import PG_TYPES, ChunkReader, WireColumn, encode_rows
from tt_platform.store.engine import connection_lost
from tt_platform.store.transaction import transaction
from tt_platform.store.wire import WireError, first_null_row, to_wire

logger = logging.getLogger(__name__)

_COPY_READ_SIZE = 1 << 20


class UpsertError(ValueError):
    """A batch the database refused or that cannot be written; names the table and the problem."""


@dataclass(frozen=True)
class _Plan:
    table: sa.Table
    columns: list[str]
    keys: list[str]
    updates: list[str]


def upsert_frame(
    conn_or_engine: Connection | Engine,
    table: sa.Table | str,
    frame: pd.DataFrame,
    key_columns: Sequence[str],
    update_columns: Sequence[str] | None = None,
    *,
    chunk_rows: int = 250_000,
) -> int:
    """Insert ``frame`` into ``table``, updating rows whose ``key_columns`` already exist.

    ``key_columns`` must be the primary key or a unique constraint of the table.
    ``update_columns`` (default: every non-key column of the frame) are overwritten on conflict;
    an empty list means insert-only (existing rows are kept as they are). Columns of the table
    that are absent from the frame get their server default on insert; those with
    ``onupdate`` (``ingested_at``, ``updated_at``) are refreshed when a row changes.

    Returns the number of rows inserted or changed; re-running the same batch returns 0.
    """
    plan = _plan(_resolve_table(table), frame, key_columns, update_columns)
    if frame.empty:
        return 0
    wires = _to_wires(plan, frame)
    if _has_duplicate_keys(plan, wires):
        # UPDATE … FROM would silently apply one of the duplicates, ON CONFLICT DO NOTHING the first
        raise UpsertError(_duplicate_message(plan, frame))
    with transaction(conn_or_engine) as conn:
        return _execute(conn, plan, wires, frame, chunk_rows)


def _resolve_table(table: sa.Table | str) -> sa.Table:
    return schema.table(table) if isinstance(table, str) else table


def _unique_column_sets(table: sa.Table) -> list[set[str]]:
    sets = [set(table.primary_key.columns.keys())]
    sets += [set(c.columns.keys()) for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    sets += [set(ix.columns.keys()) for ix in table.indexes if ix.unique]
    return [s for s in sets if s]


def _plan(
    table: sa.Table, frame: pd.DataFrame, key_columns: Sequence[str], update_columns: Sequence[str] | None
) -> _Plan:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"upsert into {table.name}: expected a DataFrame, got {type(frame).__name__}")
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise UpsertError(f"upsert into {table.name}: the frame has duplicate column names {columns}")
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise UpsertError(
            f"upsert into {table.name}: columns {unknown} are not in the table; it has {list(table.c.keys())}"
        )
    keys = list(key_columns)
    if not keys:
        raise UpsertError(f"upsert into {table.name}: key_columns is empty")
    missing_keys = [k for k in keys if k not in columns]
    if missing_keys:
        raise UpsertError(f"upsert into {table.name}: key columns {missing_keys} are missing from the frame")
    if set(keys) not in _unique_column_sets(table):
        raise UpsertError(
            f"upsert into {table.name}: {keys} is neither the primary key nor a unique constraint "
            f"(candidates: {[sorted(s) for s in _unique_column_sets(table)]})"
        )
    required = [
        c.name for c in table.columns if not c.nullable and c.server_default is None and c.name not in columns
    ]
    if required:
        raise UpsertError(f"upsert into {table.name}: required columns {required} are missing from the frame")
    if update_columns is None:
        updates = [c for c in columns if c not in keys]
    else:
        updates = list(update_columns)
        bad = [c for c in updates if c not in columns or c in keys]
        if bad:
            raise UpsertError(
                f"upsert into {table.name}: update columns {bad} must be non-key columns of the frame"
            )
    return _Plan(table, columns, keys, updates)


def _to_wires(plan: _Plan, frame: pd.DataFrame) -> list[WireColumn]:
    wires = []
    for name in plan.columns:
        column = plan.table.c[name]
        try:
            wire = to_wire(column, frame[name])
        except WireError as err:
            raise UpsertError(f"upsert into {plan.table.name}: {err}") from err
        if not column.nullable:
            row = first_null_row(wire, frame.index)
            if row is not None:
                raise UpsertError(
                    f"upsert into {plan.table.name}: NULL (None/NaN/NaT) in NOT NULL column "
                    f"{name!r} at row {row!r}"
                )
        wires.append(wire)
    return wires


def _comparable(expression: sa.ColumnElement) -> sa.ColumnElement:
    # plain json has no equality operator; jsonb and every other stored type have one
    if isinstance(expression.type, sa.JSON) and not isinstance(expression.type, JSONB):
        return sa.cast(expression, sa.Text)
    return expression


def _has_duplicate_keys(plan: _Plan, wires: list[WireColumn]) -> bool:
    # on the wire values (integers and text codes): several times faster than on the frame
    by_name = {w.name: w for w in wires}
    keys = pd.DataFrame({name: by_name[name].values for name in plan.keys}, copy=False)
    return bool(keys.duplicated().any())


@dataclass(frozen=True)
class _Statements:
    update: sa.Update | None  # None for insert-only batches
    insert_new: sa.Insert
    upsert: sa.Insert  # the fallback: one INSERT … ON CONFLICT, safe against concurrent writers


def _statements(plan: _Plan, stage_name: str, wires: list[WireColumn]) -> _Statements:
    table = plan.table
    stage = sa.table(stage_name, *[sa.column(w.name) for w in wires])
    # JSON travels as text and integers as bigint; casts to the column's own type are free
    staged = {w.name: sa.cast(stage.c[w.name], table.c[w.name].type) for w in wires}
    refreshed = {
        column.name: column.onupdate.arg
        for column in table.columns
        if column.name not in plan.columns and column.onupdate is not None and column.onupdate.is_clause_element
    }

    def differs(target: sa.FromClause | sa.TableClause, source: dict[str, sa.ColumnElement]) -> sa.ColumnElement:
        return sa.tuple_(*[_comparable(target.c[n]) for n in plan.updates]).is_distinct_from(
            sa.tuple_(*[_comparable(source[n]) for n in plan.updates])
        )

    update = None
    if plan.updates:
        update = (
            sa.update(table)
            .values({**{n: staged[n] for n in plan.updates}, **refreshed})
            .where(*[table.c[k] == staged[k] for k in plan.keys], differs(table, staged))
        )

    existing = table.alias("existing")
    is_new = ~sa.exists().where(*[existing.c[k] == staged[k] for k in plan.keys])
    insert_new = sa.insert(table).from_select(plan.columns, sa.select(*staged.values()).where(is_new))

    upsert = pg_insert(table).from_select(plan.columns, sa.select(*staged.values()))
    if plan.updates:
        excluded = {n: upsert.excluded[n] for n in plan.updates}
        upsert = upsert.on_conflict_do_update(
            index_elements=plan.keys, set_={**excluded, **refreshed}, where=differs(table, excluded)
        )
    else:
        upsert = upsert.on_conflict_do_nothing(index_elements=plan.keys)
    return _Statements(update, insert_new, upsert)


def _merge(conn: Connection, statements: _Statements) -> int:
    try:
        with conn.begin_nested():
            updated = conn.execute(statements.update).rowcount if statements.update is not None else 0
            return updated + conn.execute(statements.insert_new).rowcount
    except sa.exc.IntegrityError as err:
        if not isinstance(err.orig, psycopg2.errors.UniqueViolation):
            raise
    # Another transaction inserted some of these keys after our NOT EXISTS check.
    logger.info("concurrent insert of the same keys; merging with INSERT … ON CONFLICT")
    return conn.execute(statements.upsert).rowcount


def _execute(conn: Connection, plan: _Plan, wires: list[WireColumn], frame: pd.DataFrame, chunk_rows: int) -> int:
    stage = f"tt_stage_{uuid.uuid4().hex[:16]}"
    quote = conn.dialect.identifier_preparer.quote
    definitions = ", ".join(f"{quote(w.name)} {PG_TYPES[w.kind]}" for w in wires)
    names = ", ".join(quote(w.name) for w in wires)
    dbapi_connection = conn.connection.dbapi_connection
    encoding = psycopg2.extensions.encodings.get(dbapi_connection.encoding, "utf-8")
    try:
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} ({definitions}) ON COMMIT DROP")
        with dbapi_connection.cursor() as cursor:
            stream = ChunkReader(encode_rows(wires, encoding=encoding, chunk_rows=chunk_rows))
            cursor.copy_expert(f"COPY {stage} ({names}) FROM STDIN WITH (FORMAT binary)", stream, size=_COPY_READ_SIZE)
        written = _merge(conn, _statements(plan, stage, wires))
        # explicit drop: ON COMMIT DROP alone would keep every stage of a long transaction alive
        conn.exec_driver_sql(f"DROP TABLE {stage}")
    except (psycopg2.Error, sa.exc.DBAPIError) as err:
        original = getattr(err, "orig", err)
        if conn.dialect.is_disconnect(original, dbapi_connection, None):
            # the COPY runs on the raw connection, outside SQLAlchemy's error handling
            raise connection_lost(conn.engine.url, original) from err
        raise UpsertError(_describe_db_error(plan, frame, err)) from err
    logger.debug("upserted %d of %d rows into %s", written, len(frame), plan.table.name)
    return written


def _describe_db_error(plan: _Plan, frame: pd.DataFrame, err: Exception) -> str:
    original = getattr(err, "orig", err)
    if isinstance(original, psycopg2.errors.CardinalityViolation):
        return _duplicate_message(plan, frame)
    diag = getattr(original, "diag", None)
    parts = [getattr(diag, "message_primary", None) or str(original).strip().splitlines()[0]]
    for extra in ("message_detail", "context"):
        text = getattr(diag, extra, None)
        if text:
            parts.append(text.strip().replace("\n", "; "))
    return f"upsert into {plan.table.name} failed, nothing written: " + " | ".join(parts)


def _duplicate_message(plan: _Plan, frame: pd.DataFrame) -> str:
    duplicated = frame.duplicated(plan.keys, keep=False)
    example = frame.loc[duplicated, plan.keys].head(1).to_dict("records")
    return (
        f"upsert into {plan.table.name}: the frame has {int(duplicated.sum())} rows sharing a key "
        f"{plan.keys}, e.g. {example}; nothing written"
    )
