"""Normalisation of the symbol and time arguments that every read and delete accepts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Union

import pandas as pd
import sqlalchemy as sa

TimeLike = Union[str, dt.datetime, dt.date, pd.Timestamp]


def to_utc(value: TimeLike, name: str = "time") -> pd.Timestamp:
    """A UTC timestamp from a string, date or datetime; naive values are taken as UTC
    (daily data is stamped 00:00 UTC, so ``"2024-01-31"`` means that session)."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: cannot read {value!r} as a timestamp ({err})") from None
    if stamp is pd.NaT:
        raise ValueError(f"{name}: NaT is not a timestamp")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def symbol_list(symbols: str | Iterable[str]) -> list[str]:
    """Upper-cased, de-duplicated, sorted symbols; a single string is one symbol."""
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    return sorted({str(s).strip().upper() for s in items})


def time_range(column: sa.ColumnElement, start: TimeLike | None, end: TimeLike | None) -> list[sa.ColumnElement]:
    """``start <= column <= end`` (both inclusive, either may be None)."""
    conditions = []
    if start is not None:
        conditions.append(column >= to_utc(start, "start").to_pydatetime())
    if end is not None:
        conditions.append(column <= to_utc(end, "end").to_pydatetime())
    if start is not None and end is not None and to_utc(start) > to_utc(end):
        raise ValueError(f"start {start!r} is after end {end!r}")
    return conditions
