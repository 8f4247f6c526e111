"""Feature values in PostgreSQL, stored wide and keyed by the feature-set hash.

Layout (see ``store.schema``):

- ``tt_feature_sets``: one row per feature set, its ordered ``feature_names``;
- ``tt_feature_values``: one row per (feature_set_hash, instrument, ts) with ``value float4[]``
  (normalized values, 0 where not valid) and ``valid bool[]``, element i being feature i of the
  set. A universe of 500 symbols x 20 years is 2.5 million such rows rather than 90 million
  long ones;
- ``tt_features``: a view unnesting the wide rows into (instrument, ts, feature_set_hash,
  feature, value, valid), the columns of the long table it replaced; value is NULL where not valid.

Values are stored as float32, the precision policies consume (``FeatureMatrix.values``), so a
matrix written and read back has bit-identical values and masks. Writes and reads use binary
COPY encoded and decoded with numpy: every row of a set has the same byte layout (arrays of one
dimension from index 1 without NULL elements, which a CHECK constraint guarantees, of the set's
length, which the reader verifies), so the stream is built and parsed as structured arrays.

Writers:

- ``write_feature_matrix``: replaces a window (symbols x [start, end]) of one set by a matrix's
  rows there, in one transaction, after validating the whole batch;
- ``write_features_wide`` / ``write_features_long``: upsert frames (one column per feature, or
  the long form), for small batches and tools.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.copy_binary import HEADER, PG_EPOCH_US, TRAILER, ChunkReader
from tt_platform.store.feature_frames import (
    LONG_COLUMNS,
    FeatureArrays,
    long_to_arrays,
    wide_to_arrays,
)
from tt_platform.store.filters import TimeLike, symbol_list, to_utc
from tt_platform.store.transaction import transaction

if TYPE_CHECKING:
    # imported where used: the feature library pulls in TA-Lib, the store must stay light
    from tt_platform.features.matrix import FeatureMatrix

# First key of pg_advisory_xact_lock(int, int) taken by feature writers; the second is the
# feature-set hash, so writers of one set queue behind each other instead of colliding on keys.
FEATURE_WRITE_LOCK_KEY = 0x74744657  # "ttFW"
FLOAT4_OID = 700
BOOL_OID = 16
_COPY_READ_SIZE = 1 << 20
_SIGNATURE = HEADER[:11]


class FeatureStoreError(ValueError):
    """A feature batch that cannot be stored, or stored rows that cannot be read; names the problem."""


@dataclass(frozen=True)
class FeatureWrite:
    """What one write stored."""

    feature_set_hash: str
    rows: int  # (instrument, ts) rows written, one wide row each
    values: int  # rows x features of the set
    symbols: int  # instruments with at least one row written
    rows_by_month: dict[str, int] = field(default_factory=dict)  # "YYYY-MM" -> rows in that month
    first_ts: pd.Timestamp | None = None
    last_ts: pd.Timestamp | None = None
    deleted: int = 0  # rows of the replaced window removed first (write_feature_matrix)


@dataclass(frozen=True)
class _Block:
    """Rows of one instrument: timestamps (microseconds since 2000-01-01 UTC) and [n, F] arrays."""

    symbol: str
    ts_us: np.ndarray
    values: np.ndarray  # float32, 0 where not valid
    valid: np.ndarray  # bool


# -- feature sets ---------------------------------------------------------------------------


def feature_set_names(conn_or_engine: Connection | Engine, feature_set_hash: str) -> list[str] | None:
    """The recorded feature order of a set, None when the set was never written."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return feature_set_names(conn, feature_set_hash)
    names = conn_or_engine.execute(
        sa.text("SELECT feature_names FROM tt_feature_sets WHERE feature_set_hash = :h"),
        {"h": feature_set_hash},
    ).scalar()
    return None if names is None else list(names)


def register_feature_set(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    feature_names: Sequence[str],
    definition: dict | None = None,
) -> list[str]:
    """Record a set's ordered feature names (idempotent); returns them.

    A set already recorded with other names raises ``FeatureStoreError``: one hash is one recipe.
    """
    names = _check_names(feature_set_hash, feature_names)
    with transaction(conn_or_engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tt_feature_sets (feature_set_hash, feature_names, definition) "
                "VALUES (:h, CAST(:names AS text[]), CAST(:definition AS jsonb)) "
                "ON CONFLICT (feature_set_hash) DO NOTHING"
            ),
            {"h": feature_set_hash, "names": names, "definition": None if definition is None else json.dumps(definition)},
        )
        stored, stored_definition = conn.execute(
            sa.text("SELECT feature_names, definition FROM tt_feature_sets WHERE feature_set_hash = :h"),
            {"h": feature_set_hash},
        ).one()
        if list(stored) != names:
            raise FeatureStoreError(
                f"feature set {feature_set_hash} is recorded with features {list(stored)}, not {names}"
            )
        if definition is not None and stored_definition is None:
            conn.execute(
                sa.text("UPDATE tt_feature_sets SET definition = CAST(:d AS jsonb) WHERE feature_set_hash = :h"),
                {"h": feature_set_hash, "d": json.dumps(definition)},
            )
    return names


def _check_names(feature_set_hash: str, feature_names: Sequence[str]) -> list[str]:
    if not feature_set_hash:
        raise FeatureStoreError("feature_set_hash must be non-empty")
    names = [str(n) for n in feature_names]
    if not names:
        raise FeatureStoreError(f"feature set {feature_set_hash}: no features")
    if len(set(names)) != len(names):
        raise FeatureStoreError(f"feature set {feature_set_hash}: duplicate feature names in {names}")
    return names


def _lock_set(conn: Connection, feature_set_hash: str) -> None:
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(:h))"),
        {"key": FEATURE_WRITE_LOCK_KEY, "h": feature_set_hash},
    )


# -- writing a matrix -----------------------------------------------------------------------


def write_feature_matrix(
    conn_or_engine: Connection | Engine,
    matrix: FeatureMatrix,
    *,
    symbols: Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    definition: dict | None = None,
) -> FeatureWrite:
    """Replace the stored features of ``matrix``'s set for ``symbols`` on ``[start, end]``.

    The rows written are the matrix's (instrument, ts) cells inside the window where the
    instrument has a bar (``matrix.present``); every stored row of those symbols in the window is
    deleted first, so a shorter history leaves nothing stale. Symbols default to the matrix's,
    the window to its first and last timestamp. The whole batch is validated before anything is
    written (no NaN/inf where the mask says valid, shapes and feature names matching the set),
    and delete and insert run in one transaction: all or nothing.
    """
    window = _MatrixWindow.select(matrix, symbols, start, end)
    window.validate()
    with transaction(conn_or_engine) as conn:
        _lock_set(conn, matrix.feature_set_hash)
        register_feature_set(conn, matrix.feature_set_hash, matrix.feature_names, definition)
        deleted = _delete(conn, matrix.feature_set_hash, window.symbols, window.start, window.end)
        _copy_in(conn, "tt_feature_values", matrix.feature_set_hash, window.blocks())
    return window.summary(deleted)


@dataclass
class _MatrixWindow:
    matrix: FeatureMatrix
    symbols: list[str]  # the window's symbols (rows of these are replaced)
    start: pd.Timestamp
    end: pd.Timestamp
    rows: slice  # time rows of the matrix inside [start, end]
    columns: np.ndarray  # matrix columns of the window's symbols that the matrix has

    @classmethod
    def select(
        cls, matrix: FeatureMatrix, symbols: Iterable[str] | None, start: TimeLike | None, end: TimeLike | None
    ) -> _MatrixWindow:
        timestamps = matrix.timestamps
        if len(timestamps) > 1 and not (timestamps[1:] > timestamps[:-1]).all():
            raise FeatureStoreError("matrix timestamps must be strictly increasing")
        if start is None and end is None and len(timestamps) == 0:
            raise FeatureStoreError("an empty matrix needs an explicit [start, end] window to replace")
        lo = (to_utc(start, "start") if start is not None else timestamps[0]).as_unit("ns")
        hi = (to_utc(end, "end") if end is not None else timestamps[-1]).as_unit("ns")
        if lo > hi:
            raise FeatureStoreError(f"window start {lo} is after its end {hi}")
        wanted = symbol_list(matrix.symbols if symbols is None else symbols)
        position = {_canonical(s): i for i, s in enumerate(matrix.symbols)}
        columns = np.array([position[s] for s in wanted if s in position], dtype=np.intp)
        ts_ns = timestamps.as_unit("ns").asi8
        rows = slice(int(np.searchsorted(ts_ns, lo.value, "left")), int(np.searchsorted(ts_ns, hi.value, "right")))
        return cls(matrix, wanted, lo, hi, rows, columns)

    def _take(self, array: np.ndarray) -> np.ndarray:
        part = array[self.rows]
        n = len(self.matrix.symbols)
        if len(self.columns) == n and (self.columns == np.arange(n)).all():
            return part
        return part[:, self.columns]

    def validate(self) -> None:
        m = self.matrix
        shape = (len(m.timestamps), len(m.symbols), len(m.feature_names))
        _check_names(m.feature_set_hash, m.feature_names)
        for name, array, dtype in (("values", m.values, np.float32), ("mask", m.mask, np.bool_)):
            if array.shape != shape or array.dtype != dtype:
                raise FeatureStoreError(
                    f"matrix {name}: {array.dtype}{list(array.shape)}, expected {np.dtype(dtype)}{list(shape)}"
                )
        if m.present is None or m.present.shape != shape[:2]:
            raise FeatureStoreError(f"matrix present: expected shape {list(shape[:2])}")
        ns = m.timestamps[self.rows].as_unit("ns").asi8
        if (ns % 1000).any():
            raise FeatureStoreError("timestamps finer than a microsecond cannot be stored")
        values, mask = self._take(m.values), self._take(m.mask)
        bad = mask & ~np.isfinite(values)
        if bad.any():
            t, s, f = (int(i[0]) for i in np.nonzero(bad))
            raise FeatureStoreError(
                f"feature set {m.feature_set_hash}: {int(bad.sum())} values marked valid are NaN or inf, "
                f"e.g. {m.feature_names[f]!r} of {m.symbols[self.columns[s]]} at {m.timestamps[self.rows][t]}"
            )

    def blocks(self) -> Iterator[_Block]:
        m = self.matrix
        ts_us = m.timestamps[self.rows].as_unit("ns").asi8 // 1000 - PG_EPOCH_US
        present = m.present[self.rows]
        values, mask = m.values[self.rows], m.mask[self.rows]
        for column in self.columns:
            keep = present[:, column]
            if not keep.any():
                continue
            valid = mask[:, column, :][keep]
            block_values = np.where(valid, values[:, column, :][keep], np.float32(0))
            yield _Block(_canonical(m.symbols[column]), ts_us[keep], block_values, valid)

    def summary(self, deleted: int) -> FeatureWrite:
        m = self.matrix
        present = m.present[self.rows][:, self.columns]
        per_ts = present.sum(axis=1)
        timestamps = m.timestamps[self.rows]
        stored = per_ts > 0
        rows = int(per_ts.sum())
        return FeatureWrite(
            feature_set_hash=m.feature_set_hash,
            rows=rows,
            values=rows * len(m.feature_names),
            symbols=int(present.any(axis=0).sum()),
            rows_by_month=_rows_by_month(timestamps.as_unit("ns").asi8, per_ts),
            first_ts=timestamps[stored][0] if stored.any() else None,
            last_ts=timestamps[stored][-1] if stored.any() else None,
            deleted=deleted,
        )


def _canonical(symbol: str) -> str:
    """Symbols are stored upper-case, as ``symbol_list`` spells them in queries."""
    return str(symbol).strip().upper()


def _rows_by_month(ts_ns: np.ndarray, counts: np.ndarray) -> dict[str, int]:
    """``{"YYYY-MM": rows}`` from per-timestamp row counts (months of the UTC timestamps)."""
    if len(ts_ns) == 0:
        return {}
    months = ts_ns.astype("datetime64[ns]").astype("datetime64[M]")
    keys, inverse = np.unique(months, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=counts, minlength=len(keys)).astype(np.int64)
    return {str(k): int(n) for k, n in zip(np.datetime_as_string(keys, unit="M"), totals) if n > 0}


def _delete(
    conn: Connection,
    feature_set_hash: str,
    symbols: Sequence[str] | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> int:
    conditions = ["feature_set_hash = :h"]
    params: dict[str, object] = {"h": feature_set_hash}
    if symbols is not None:
        conditions.append("instrument = ANY(CAST(:symbols AS text[]))")
        params["symbols"] = list(symbols)
    if start is not None:
        conditions.append("ts >= :start")
        params["start"] = to_utc(start, "start").to_pydatetime()
    if end is not None:
        conditions.append("ts <= :end")
        params["end"] = to_utc(end, "end").to_pydatetime()
    statement = sa.text(f"DELETE FROM tt_feature_values WHERE {' AND '.join(conditions)}")
    return conn.execute(statement, params).rowcount


# -- binary COPY of wide rows -----------------------------------------------------------------


# the key fields of a row read back: the symbol's position in the request, as int4
_READ_KEYS = (("position_len", ">i4"), ("position", ">i4"))


@lru_cache(maxsize=256)
def _row_dtype(keys: tuple[tuple[str, str], ...], n_features: int) -> np.dtype:
    """Byte layout of one wide row on the wire: field count, the key fields, ts, then the
    float4[] and bool[] arrays with their headers."""
    fields: list[tuple] = [("count", ">i2"), *keys]
    fields += [
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("value_len", ">i4"),
        ("value_head", ">i4", (5,)),
        ("value", [("len", ">i4"), ("x", ">f4")], (n_features,)),
        ("valid_len", ">i4"),
        ("valid_head", ">i4", (5,)),
        ("valid", [("len", ">i4"), ("x", "u1")], (n_features,)),
    ]
    return np.dtype(fields)


def _text_field(text: str, encoding: str) -> bytes:
    raw = text.encode(encoding)
    return struct.pack(">i", len(raw)) + raw


def _fill_framing(records: np.ndarray, n_features: int) -> None:
    records["ts_len"] = 8
    records["value_len"] = 20 + 8 * n_features
    records["value_head"] = (1, 0, FLOAT4_OID, n_features, 1)  # ndim, has NULLs, element type, length, lower bound
    records["value"]["len"] = 4
    records["valid_len"] = 20 + 5 * n_features
    records["valid_head"] = (1, 0, BOOL_OID, n_features, 1)
    records["valid"]["len"] = 1


def _encode_block(hash_field: bytes, block: _Block, encoding: str) -> bytes:
    n_features = block.values.shape[1]
    symbol_field = _text_field(block.symbol, encoding)
    dtype = _row_dtype((("hash", f"V{len(hash_field)}"), ("symbol", f"V{len(symbol_field)}")), n_features)
    template = np.zeros(1, dtype=dtype)
    template["count"] = 5
    template["hash"] = np.void(hash_field)
    template["symbol"] = np.void(symbol_field)
    _fill_framing(template, n_features)
    records = np.tile(template, len(block.ts_us))
    records["ts"] = block.ts_us
    records["value"]["x"] = block.values
    records["valid"]["x"] = block.valid
    return records.tobytes()


def _encoding(conn: Connection) -> str:
    dbapi_connection = conn.connection.dbapi_connection
    return psycopg2.extensions.encodings.get(dbapi_connection.encoding, "utf-8")


def _copy_in(conn: Connection, table: str, feature_set_hash: str, blocks: Iterable[_Block]) -> None:
    encoding = _encoding(conn)
    hash_field = _text_field(feature_set_hash, encoding)

    def stream() -> Iterator[bytes]:
        yield HEADER
        for block in blocks:
            yield _encode_block(hash_field, block, encoding)
        yield TRAILER

    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} (feature_set_hash, instrument, ts, value, valid) FROM STDIN WITH (FORMAT binary)",
            ChunkReader(stream()),
            size=_COPY_READ_SIZE,
        )


@dataclass(frozen=True)
class _StoredRows:
    """Rows read back: per row the index of its symbol in ``symbols``, ts (ns), [n, F] arrays."""

    symbols: list[str]
    symbol_index: np.ndarray
    ts_ns: np.ndarray
    values: np.ndarray  # float32 (big-endian view), 0 where not valid
    valid: np.ndarray  # bool
    feature_names: list[str]

    def __len__(self) -> int:
        return len(self.ts_ns)


def _read_rows(
    conn: Connection,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> _StoredRows | None:
    """The stored rows of a set (None when the set was never written), in no particular order."""
    names = feature_set_names(conn, feature_set_hash)
    if names is None:
        return None
    if symbols is None:
        wanted = list(
            conn.execute(
                sa.text("SELECT DISTINCT instrument FROM tt_feature_values WHERE feature_set_hash = :h ORDER BY 1"),
                {"h": feature_set_hash},
            ).scalars()
        )
    else:
        wanted = symbol_list(symbols)
    conditions = ["v.feature_set_hash = %(h)s"]
    params: dict[str, object] = {"h": feature_set_hash, "symbols": wanted}
    if start is not None:
        conditions.append("v.ts >= %(start)s")
        params["start"] = to_utc(start, "start").to_pydatetime()
    if end is not None:
        conditions.append("v.ts <= %(end)s")
        params["end"] = to_utc(end, "end").to_pydatetime()
    if start is not None and end is not None and params["start"] > params["end"]:  # type: ignore[operator]
        raise ValueError(f"start {start!r} is after end {end!r}")
    # the symbol travels as its position in the request: every row then has one fixed layout
    query = (
        "SELECT (s.position - 1)::int4, v.ts, v.value, v.valid FROM tt_feature_values AS v "
        "JOIN unnest(CAST(%(symbols)s AS text[])) WITH ORDINALITY AS s(instrument, position) "
        f"ON s.instrument = v.instrument WHERE {' AND '.join(conditions)}"
    )
    dbapi_connection = conn.connection.dbapi_connection
    buffer = io.BytesIO()
    with dbapi_connection.cursor() as cursor:
        sql = cursor.mogrify(query, params).decode(_encoding(conn))
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", buffer, size=_COPY_READ_SIZE)
    records = _decode(buffer.getbuffer(), len(names), feature_set_hash)
    return _StoredRows(
        symbols=wanted,
        symbol_index=records["position"].astype(np.intp),
        ts_ns=(records["ts"].astype(np.int64) + PG_EPOCH_US) * 1000,
        values=records["value"]["x"],
        valid=records["valid"]["x"].view(np.bool_),
        feature_names=names,
    )


def _decode(data: memoryview, n_features: int, feature_set_hash: str) -> np.ndarray:
    """Parse a binary COPY of (int4, timestamptz, float4[], bool[]) rows into a structured array."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if len(raw) < 21 or bytes(raw[:11]) != _SIGNATURE:
        raise FeatureStoreError("feature read: not a binary COPY stream")
    extension = int(raw[15:19].view(">i4")[0])
    body = raw[19 + extension : len(raw) - 2]
    if int(raw[-2:].view(">i2")[0]) != -1:
        raise FeatureStoreError("feature read: binary COPY stream without its trailer")
    dtype = _row_dtype(_READ_KEYS, n_features)
    if len(body) % dtype.itemsize:
        raise FeatureStoreError(
            f"feature set {feature_set_hash}: stored rows do not all hold {n_features} features"
        )
    records = body.view(dtype)
    if len(records):
        expected = np.zeros(1, dtype=dtype)
        expected["count"] = 4
        _fill_framing(expected, n_features)
        framing_ok = (
            (records["count"] == 4)
            & (records["position_len"] == 4)
            & (records["ts_len"] == 8)
            & (records["value_len"] == expected["value_len"][0])
            & (records["value_head"] == expected["value_head"][0]).all(axis=1)
            & (records["value"]["len"] == 4).all(axis=1)
            & (records["valid_len"] == expected["valid_len"][0])
            & (records["valid_head"] == expected["valid_head"][0]).all(axis=1)
            & (records["valid"]["len"] == 1).all(axis=1)
        )
        if not framing_ok.all():
            raise FeatureStoreError(
                f"feature set {feature_set_hash}: stored rows do not all hold {n_features} features"
            )
    return records


# -- reading --------------------------------------------------------------------------------


def read_feature_matrix(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    benchmark: str | None = None,
) -> FeatureMatrix:
    """The stored features of a set as a ``FeatureMatrix`` (values and mask exactly as written).

    Rows are the timestamps any requested symbol has a row at, columns the requested symbols
    that have rows (sorted), features in ``feature_names`` order (default: the recorded order;
    a subset may be asked for). ``raw`` is an all-NaN read-only view: the store keeps normalized
    values only.
    An unknown set or an empty range gives a matrix with no rows.
    """
    from tt_platform.features.matrix import FeatureMatrix

    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return read_feature_matrix(
                conn, feature_set_hash, symbols, start, end, feature_names=feature_names, benchmark=benchmark
            )
    stored = _read_rows(conn_or_engine, feature_set_hash, symbols, start, end)
    if stored is None:
        names = list(feature_names) if feature_names is not None else []
        return _empty_matrix(feature_set_hash, names, benchmark)
    order = _feature_order(stored.feature_names, feature_names, feature_set_hash)
    names = [stored.feature_names[i] for i in order]
    if not len(stored):
        return _empty_matrix(feature_set_hash, names, benchmark)
    times, ti = np.unique(stored.ts_ns, return_inverse=True)
    found, si = np.unique(stored.symbol_index, return_inverse=True)
    shape = (len(times), len(found), len(names))
    values = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    present = np.zeros(shape[:2], dtype=bool)
    if order == list(range(len(stored.feature_names))):
        values[ti, si] = stored.values
        mask[ti, si] = stored.valid
    else:
        values[ti, si] = stored.values[:, order]
        mask[ti, si] = stored.valid[:, order]
    present[ti, si] = True
    return FeatureMatrix(
        timestamps=pd.DatetimeIndex(times.view("datetime64[ns]")).tz_localize("UTC"),
        symbols=[stored.symbols[i] for i in found],
        feature_names=names,
        values=values,
        # the store keeps normalized values only: raw is a read-only all-NaN view, no memory
        raw=np.broadcast_to(np.float64(np.nan), shape),
        mask=mask,
        feature_set_hash=feature_set_hash,
        present=present,
        benchmark=benchmark,
    )


def _feature_order(stored: list[str], wanted: Sequence[str] | None, feature_set_hash: str) -> list[int]:
    if wanted is None:
        return list(range(len(stored)))
    position = {name: i for i, name in enumerate(stored)}
    missing = [name for name in wanted if name not in position]
    if missing:
        raise FeatureStoreError(f"feature set {feature_set_hash} has no features {missing}; it has {stored}")
    return [position[name] for name in wanted]


def _empty_matrix(feature_set_hash: str, names: list[str], benchmark: str | None) -> FeatureMatrix:
    from tt_platform.features.matrix import FeatureMatrix

    shape = (0, 0, len(names))
    return FeatureMatrix(
        timestamps=pd.DatetimeIndex([], tz="UTC"),
        symbols=[],
        feature_names=names,
        values=np.zeros(shape, dtype=np.float32),
        raw=np.zeros(shape),
        mask=np.zeros(shape, dtype=bool),
        feature_set_hash=feature_set_hash,
        present=np.zeros(shape[:2], dtype=bool),
        benchmark=benchmark,
    )


def read_features_long(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long-form features of one set, ``start <= ts <= end``, sorted by instrument, ts, feature.

    The rows the ``tt_features`` view shows (``LONG_COLUMNS``); value is NaN where not valid.
    """
    rows = _read_sorted(conn_or_engine, feature_set_hash, symbols, start, end)
    if rows is None or not len(rows):
        return _empty_long()
    wanted = sorted(rows.feature_names if names is None else set(names) & set(rows.feature_names))
    order = [rows.feature_names.index(n) for n in wanted]
    n_rows, n_features = len(rows), len(order)
    values = rows.values[:, order].astype(np.float64)
    valid = rows.valid[:, order]
    values[~valid] = np.nan
    symbol_codes = np.repeat(rows.symbol_index, n_features)
    return pd.DataFrame(
        {
            "instrument": np.asarray(rows.symbols, dtype=object)[symbol_codes],
            "ts": pd.DatetimeIndex(np.repeat(rows.ts_ns, n_features).view("datetime64[ns]")).tz_localize("UTC"),
            "feature_set_hash": feature_set_hash,
            "feature": np.tile(np.asarray(wanted, dtype=object), n_rows),
            "value": values.ravel(),
            "valid": valid.ravel(),
        }
    )[LONG_COLUMNS]


def read_features_wide(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Features as (symbol, ts, one column per feature in the set's order), NaN where not valid."""
    rows = _read_sorted(conn_or_engine, feature_set_hash, symbols, start, end)
    if rows is None:
        return pd.DataFrame(columns=["symbol", "ts"])
    wanted = [n for n in rows.feature_names if names is None or n in set(names)]
    order = [rows.feature_names.index(n) for n in wanted]
    values = rows.values[:, order].astype(np.float64)
    values[~rows.valid[:, order]] = np.nan
    frame = pd.DataFrame(values, columns=wanted)
    frame.insert(0, "ts", pd.DatetimeIndex(rows.ts_ns.view("datetime64[ns]")).tz_localize("UTC"))
    frame.insert(0, "symbol", np.asarray(rows.symbols, dtype=object)[rows.symbol_index])
    return frame


def _read_sorted(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> _StoredRows | None:
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            rows = _read_rows(conn, feature_set_hash, symbols, start, end)
    else:
        rows = _read_rows(conn_or_engine, feature_set_hash, symbols, start, end)
    if rows is None:
        return None
    order = np.lexsort((rows.ts_ns, rows.symbol_index))  # symbols are sorted: by instrument, then ts
    return _StoredRows(
        symbols=rows.symbols,
        symbol_index=rows.symbol_index[order],
        ts_ns=rows.ts_ns[order],
        values=rows.values[order],
        valid=rows.valid[order],
        feature_names=rows.feature_names,
    )


def _empty_long() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[ns, UTC]"),
            "feature_set_hash": pd.Series(dtype=object),
            "feature": pd.Series(dtype=object),
            "value": pd.Series(dtype=np.float64),
            "valid": pd.Series(dtype=bool),
        }
    )


# -- frame writers (upserts) ----------------------------------------------------------------


def write_features_wide(conn_or_engine: Connection | Engine, wide: pd.DataFrame, feature_set_hash: str) -> int:
    """Upsert a wide frame (symbol, ts, one column per feature) under ``feature_set_hash``.

    A value is valid when it is finite. The frame must hold every feature of the set (a new set
    is recorded with the frame's column order). Each (symbol, ts) row replaces the stored one.
    Returns the number of (symbol, ts) rows inserted or changed; re-running the batch returns 0.
    """
    return _upsert(conn_or_engine, wide_to_arrays(wide), feature_set_hash)


def write_features_long(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert long-form features (``LONG_COLUMNS``; ``valid`` defaults to "value is finite").

    Rows are grouped into (feature_set_hash, instrument, ts) rows; a feature missing from such a
    row is stored as not valid. Returns the number of (instrument, ts) rows inserted or changed.
    """
    missing = [c for c in LONG_COLUMNS if c not in frame.columns and c != "valid"]
    if missing:
        raise ValueError(f"write_features_long: missing columns {missing}; expected {LONG_COLUMNS}")
    written = 0
    with transaction(conn_or_engine) as conn:
        for feature_set_hash, rows in frame.groupby("feature_set_hash", sort=True):
            written += _upsert(conn, long_to_arrays(rows), str(feature_set_hash))
    return written


def _upsert(conn_or_engine: Connection | Engine, arrays: FeatureArrays, feature_set_hash: str) -> int:
    names = _check_names(feature_set_hash, arrays.feature_names)
    if not len(arrays.ts_ns):
        return 0
    with transaction(conn_or_engine) as conn:
        _lock_set(conn, feature_set_hash)
        recorded = feature_set_names(conn, feature_set_hash) or register_feature_set(conn, feature_set_hash, names)
        if set(recorded) != set(names):
            raise FeatureStoreError(
                f"feature set {feature_set_hash} has features {recorded}; the frame has {names}"
            )
        arrays = arrays.reordered(recorded)
        stage = "tt_stage_feature_values"
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {stage} (LIKE tt_feature_values INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        _copy_in(conn, stage, feature_set_hash, _frame_blocks(arrays))
        written = conn.exec_driver_sql(
            f"INSERT INTO tt_feature_values AS t SELECT * FROM {stage} "
            "ON CONFLICT (feature_set_hash, instrument, ts) DO UPDATE "
            "SET value = EXCLUDED.value, valid = EXCLUDED.valid "
            "WHERE (t.value, t.valid) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.valid)"
        ).rowcount
        conn.exec_driver_sql(f"DROP TABLE {stage}")
    return written


def _frame_blocks(arrays: FeatureArrays) -> Iterator[_Block]:
    ts_ns = arrays.ts_ns
    if (ts_ns % 1000).any():
        raise FeatureStoreError("timestamps finer than a microsecond cannot be stored")
    order = np.lexsort((ts_ns, arrays.symbol_codes))
    codes = arrays.symbol_codes[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    for rows in np.split(order, bounds):
        yield _Block(
            symbol=arrays.symbols[int(arrays.symbol_codes[rows[0]])],
            ts_us=ts_ns[rows] // 1000 - PG_EPOCH_US,
            values=arrays.values[rows],
            valid=arrays.valid[rows],
        )


def delete_features(
    conn_or_engine: Connection | Engine,
    feature_set_hash: str,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> int:
    """Delete one set's rows (optionally for some symbols / a time range); returns how many
    (instrument, ts) rows were removed. The set's recorded feature names stay."""
    if start is not None and end is not None and to_utc(start) > to_utc(end):
        raise ValueError(f"start {start!r} is after end {end!r}")
    with transaction(conn_or_engine) as conn:
        return _delete(conn, feature_set_hash, None if symbols is None else symbol_list(symbols), start, end)
