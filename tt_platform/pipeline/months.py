"""Month partition keys (YYYY-MM) and the days they stand for; no Dagster here."""

from __future__ import annotations

from calendar import monthrange
from datetime import date

PARTITION_FORMAT = "%Y-%m"


def month_key(day: date) -> str:
    return day.strftime(PARTITION_FORMAT)


def month_days(key: str) -> tuple[date, date]:
    """First and last calendar day of a partition key (YYYY-MM)."""
    try:
        year, month = (int(part) for part in key.split("-"))
        return date(year, month, 1), date(year, month, monthrange(year, month)[1])
    except ValueError:
        raise ValueError(f"{key!r} is not a month partition key (YYYY-MM)") from None


def keys_between(start: date, end: date) -> list[str]:
    """Partition keys of every month touching [start, end], oldest first."""
    if end < start:
        return []
    keys, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def requested_days(partition_keys: list[str]) -> tuple[date, date]:
    """The first and last calendar day covered by ``partition_keys``."""
    if not partition_keys:
        raise ValueError("no partition keys")
    ordered = sorted(partition_keys)
    return month_days(ordered[0])[0], month_days(ordered[-1])[1]
