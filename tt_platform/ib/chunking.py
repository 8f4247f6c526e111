"""Split a historical range into requests IB accepts (pure).

Chunks sit on a calendar grid (years for daily bars, months for hourly, UTC days for minute bars,
each within IB's duration limit for that bar size), so that the same range always gives the same
requests: a resumed backfill asks again exactly for what is missing, and the store can key
progress on chunk boundaries. Chunks are half-open ``[start, end)`` and ordered oldest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Literal

import pandas as pd

from tt_platform.ib.limits import interval_spec

ChunkUnit = Literal["year", "month", "day"]
DEFAULT_UNIT: dict[str, ChunkUnit] = {"1d": "year", "1h": "month", "1min": "day"}
_UNIT_FREQ = {"year": "YS", "month": "MS", "day": "D"}
_UNIT_ORDER = {"day": 0, "month": 1, "year": 2}


@dataclass(frozen=True)
class Chunk:
    start: pd.Timestamp  # inclusive, UTC
    end: pd.Timestamp  # exclusive, UTC
    request_end: str  # IB endDateTime ("" = now)
    duration: str  # IB durationStr

    def __str__(self) -> str:
        ending = self.request_end or "now"
        return f"[{self.start.isoformat()}, {self.end.isoformat()}) as {self.duration!r} ending {ending!r}"


def to_utc(value: str | date | datetime | pd.Timestamp) -> pd.Timestamp:
    """A tz-aware UTC Timestamp; naive input is taken as UTC."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"not a timestamp: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def format_ib_datetime(stamp: pd.Timestamp) -> str:
    """IB's endDateTime syntax with an explicit UTC zone, e.g. '20220101 00:00:00 UTC'."""
    return to_utc(stamp).strftime("%Y%m%d %H:%M:%S UTC")


def align_range(start, end, interval: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start floored and end ceiled to the bar grid, so no partial bar is asked for."""
    step = interval_spec(interval).step
    start_ts, end_ts = to_utc(start), to_utc(end)
    if end_ts <= start_ts:
        raise ValueError(f"empty range: end {end_ts} is not after start {start_ts}")
    return start_ts.floor(step), end_ts.ceil(step)


def _duration_for(start: pd.Timestamp, end: pd.Timestamp) -> str:
    if start == end - pd.DateOffset(years=1):
        return "1 Y"
    if start == end - pd.DateOffset(months=1):
        return "1 M"
    span = end - start
    day = pd.Timedelta(days=1)
    if span <= day:
        return "1 D" if span == day else f"{int(span.total_seconds())} S"
    # IB wants days beyond 86400 S: ask for whole days; the extra bars are cut off afterwards
    return f"{-(-span // day)} D"


def plan_chunks(start, end, interval: str, unit: ChunkUnit | None = None) -> list[Chunk]:
    """Requests covering ``[start, end)`` for ``interval`` bars, oldest first."""
    spec = interval_spec(interval)
    unit = unit or DEFAULT_UNIT[interval]
    if unit not in _UNIT_FREQ:
        raise ValueError(f"unknown chunk unit {unit!r}; use year, month or day")
    if _UNIT_ORDER[unit] > _UNIT_ORDER[DEFAULT_UNIT[interval]]:
        raise ValueError(f"{unit} chunks exceed IB's duration limit for {spec.bar_size} bars")
    start_ts, end_ts = align_range(start, end, interval)
    grid = pd.date_range(start_ts.floor("D"), end_ts, freq=_UNIT_FREQ[unit], tz="UTC")
    edges = sorted({start_ts, end_ts, *(t for t in grid if start_ts < t < end_ts)})
    return [Chunk(lo, hi, format_ib_datetime(hi), _duration_for(lo, hi)) for lo, hi in pairwise(edges)]


def plan_adjusted_chunk(start, end, interval: str, now=None) -> Chunk:
    """IB serves ADJUSTED_LAST only ending now: one request from ``start`` up to now."""
    if interval != "1d":
        raise ValueError(
            f"adjusted {interval} bars are not available from IB (ADJUSTED_LAST must end now and "
            f"intraday durations are capped); request unadjusted bars and apply corporate actions"
        )
    start_ts, end_ts = align_range(start, end, interval)
    now_ts = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    years = max(1, math.ceil((now_ts - start_ts) / pd.Timedelta(days=365)))
    return Chunk(start_ts, end_ts, "", f"{years} Y")
