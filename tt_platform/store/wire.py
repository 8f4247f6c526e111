"""Coercion of DataFrame columns to the wire values of their target table columns.

Each target type has one wire kind (see ``copy_binary``): floating point -> float8, integers ->
int8, booleans -> bool, ``timestamptz`` -> microseconds since the Unix epoch, text and JSON ->
text (JSON is cast to jsonb by the INSERT). NaN, NaT, None and pandas NA become NULL.
Anything that cannot be converted raises ``WireError`` naming the table column and the first
offending row, before a byte is sent to the database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api import types as ptypes

from tt_platform.store.copy_binary import PG_EPOCH_US, TEXT_KIND, WireColumn, text_column


class WireError(ValueError):
    """A frame column whose values do not fit the table column; names both and the row."""


def wire_kind(column: sa.Column) -> str:
    """The wire kind for a table column, or WireError for types the store does not carry."""
    col_type = column.type
    if isinstance(col_type, sa.JSON):  # JSONB derives from JSON
        return "json"
    if isinstance(col_type, sa.Boolean):
        return "bool"
    if isinstance(col_type, sa.Integer):  # BigInteger, SmallInteger derive from Integer
        return "int8"
    if isinstance(col_type, (sa.Float, sa.Numeric)):  # Double derives from Float
        return "float8"
    if isinstance(col_type, sa.DateTime):
        if not col_type.timezone:
            raise WireError(f"{_where(column)}: only timestamptz columns are supported, not naive timestamps")
        return "timestamptz"
    if isinstance(col_type, sa.String):  # Text derives from String
        return TEXT_KIND
    raise WireError(f"{_where(column)}: column type {col_type!r} is not supported by upsert_frame")


def to_wire(column: sa.Column, series: pd.Series) -> WireColumn:
    """Convert ``series`` to the wire representation of ``column``."""
    kind = wire_kind(column)
    if kind == "float8":
        values = _numeric(column, series).to_numpy(dtype="float64", na_value=np.nan)
        return WireColumn(column.name, kind, values, np.isnan(values))
    if kind == "int8":
        return _integers(column, series)
    if kind == "bool":
        return _booleans(column, series)
    if kind == "timestamptz":
        return _timestamps(column, series)
    if kind == "json":
        return text_column(column.name, _json_texts(column, series))
    return _texts(column, series)


def first_null_row(wire: WireColumn, index: pd.Index) -> Any | None:
    """Label of the first NULL row, None when there is none."""
    positions = np.flatnonzero(wire.null)
    return index[positions[0]] if len(positions) else None


def _where(column: sa.Column) -> str:
    table = column.table.name if column.table is not None else "?"
    return f"{table}.{column.name}"


def _fail(column: sa.Column, series: pd.Series, bad: np.ndarray | pd.Series, expected: str) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        value = series.iloc[position]
        value = value.item() if isinstance(value, np.generic) else value
        raise WireError(
            f"{_where(column)}: expected {expected}, got {value!r} "
            f"at row {series.index[position]!r}"
        )


def _numeric(column: sa.Column, series: pd.Series) -> pd.Series:
    if ptypes.is_bool_dtype(series.dtype) or ptypes.is_datetime64_any_dtype(series.dtype):
        raise WireError(f"{_where(column)}: expected numbers, got a column of dtype {series.dtype}")
    if ptypes.is_numeric_dtype(series.dtype):
        return series
    coerced = pd.to_numeric(series, errors="coerce")
    _fail(column, series, coerced.isna() & series.notna(), "a number")
    return coerced


def _integers(column: sa.Column, series: pd.Series) -> WireColumn:
    if ptypes.is_integer_dtype(series.dtype):
        null = series.isna().to_numpy()
        values = series.to_numpy(dtype="int64", na_value=0)
        return WireColumn(column.name, "int8", values, null)
    numbers = _numeric(column, series).to_numpy(dtype="float64", na_value=np.nan)
    null = np.isnan(numbers)
    filled = np.where(null, 0.0, numbers)
    _fail(column, series, (filled != np.round(filled)) | (np.abs(filled) >= 2.0**63), "an integer")
    return WireColumn(column.name, "int8", filled.astype(np.int64), null)


def _booleans(column: sa.Column, series: pd.Series) -> WireColumn:
    null = series.isna().to_numpy()
    if ptypes.is_bool_dtype(series.dtype):
        return WireColumn(column.name, "bool", series.to_numpy(dtype=bool, na_value=False), null)
    ok = np.array([v is None or isinstance(v, (bool, np.bool_)) for v in series.where(~null, None)])
    _fail(column, series, ~ok & ~null, "a boolean")
    values = np.array([bool(v) if v is not None else False for v in series.where(~null, None)], dtype=bool)
    return WireColumn(column.name, "bool", values, null)


def _timestamps(column: sa.Column, series: pd.Series) -> WireColumn:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        stamps = series
    elif ptypes.is_datetime64_dtype(series.dtype):
        raise WireError(
            f"{_where(column)}: timestamps are tz-naive; localize them first (e.g. .dt.tz_localize('UTC'))"
        )
    else:
        stamps = _parse_timestamps(column, series)
    null = stamps.isna().to_numpy()
    utc = stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us")
    micros = utc.to_numpy(dtype="datetime64[us]").view(np.int64)
    values = np.where(null, 0, micros - PG_EPOCH_US)
    return WireColumn(column.name, "timestamptz", values, null)


def _parse_timestamps(column: sa.Column, series: pd.Series) -> pd.Series:
    if ptypes.is_numeric_dtype(series.dtype):
        raise WireError(f"{_where(column)}: expected timestamps, got a column of dtype {series.dtype}")
    try:
        parsed = pd.to_datetime(series, format="ISO8601")
    except (ValueError, TypeError):
        try:
            # mixed UTC offsets are fine as long as every value has one
            parsed = pd.to_datetime(series, format="ISO8601", utc=True)
        except (ValueError, TypeError) as err:
            raise WireError(f"{_where(column)}: cannot read timestamps: {err}") from None
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        if parsed.notna().any():
            raise WireError(f"{_where(column)}: timestamps without a UTC offset; give tz-aware values")
        parsed = parsed.dt.tz_localize("UTC")
    return parsed


def _texts(column: sa.Column, series: pd.Series) -> WireColumn:
    if isinstance(series.dtype, pd.StringDtype):
        return text_column(column.name, series)
    if ptypes.is_object_dtype(series.dtype):
        # infer_dtype runs in C; the per-value scan only runs to name the offending row
        if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
            bad = series.map(lambda v: not (isinstance(v, str) or _is_null(v)))
            _fail(column, series, bad.to_numpy(dtype=bool), "text")
        return text_column(column.name, series)
    if ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype):
        # integer codes as text (e.g. an id column read as numbers) keep their digits
        return text_column(column.name, series.astype("string").astype(object))
    raise WireError(f"{_where(column)}: expected text, got a column of dtype {series.dtype}")


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _json_texts(column: sa.Column, series: pd.Series) -> list[str | None]:
    out: list[str | None] = []
    for label, value in series.items():
        if _is_null(value):
            out.append(None)
            continue
        try:
            out.append(json.dumps(json_safe(value), allow_nan=False, sort_keys=True))
        except (TypeError, ValueError) as err:
            raise WireError(f"{_where(column)}: value at row {label!r} is not JSON-serialisable: {err}") from None
    return out


def json_safe(value: Any) -> Any:
    """numpy scalars and arrays to Python, timestamps to ISO strings, NaN/inf to null (JSON has none)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    return value
