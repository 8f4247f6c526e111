"""Split a historical range into requests IB accepts (pure).

Chunks sit on a grid (blocks of ``years_per_request`` calendar years for daily bars, half months
for hourly bars, half UTC days for minute bars, four hours for 30-second bars), so that the same
range always gives the same requests: a resumed backfill asks again exactly for what is missing.
Chunks are half-open ``[start, end)`` and ordered oldest first.

Window edges: IB does not document whether a request's window is ``[end - duration, end)`` or
``(end - duration, end]``, and gateways have been seen to drop the first session of a window.
Each request is therefore padded by one bar on both sides (the grid leaves room for that inside
IB's step-size limits), so that no reading drops a bar of the chunk; the client trims the answer
back to ``[start, end)``, so neighbouring chunks never share or lose a bar. A padded request whose
end lies in the future ends "now" instead (an empty endDateTime).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Literal

import pandas as pd

from tt_platform.ib.limits import (
    MAX_DAYS_DURATION,
    InvalidRequest,
    IntervalSpec,
    check_duration,
    interval_spec,
    parse_duration,
)

ChunkUnit = Literal["year", "month", "half-month", "day", "half-day", "4-hour", "hour"]
DEFAULT_UNIT: dict[str, ChunkUnit] = {"1d": "year", "1h": "half-month", "1min": "half-day", "30s": "4-hour"}
# pandas frequencies of the fixed grids ("year" blocks are built separately)
_UNIT_FREQ = {"month": "MS", "half-month": "SMS", "day": "D", "half-day": "12h", "4-hour": "4h", "hour": "h"}
# Daily bars: years per request. IB serves daily bars in "N Y" windows; a 20-year block is
# about 5,000 bars (a few hundred kB), far from any volume limit.
DAILY_YEARS_PER_REQUEST = 20
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Chunk:
    start: pd.Timestamp  # inclusive, UTC
    end: pd.Timestamp  # exclusive, UTC
    request_end: str  # IB endDateTime ("" = now)
    duration: str  # IB durationStr

    def __str__(self) -> str:
        ending = self.request_end or "now"
        return f"[{self.start.isoformat()}, {self.end.isoformat()}) as {self.duration!r} ending {ending!r}"

    @property
    def days(self) -> tuple[date, date]:
        """First and last UTC day the chunk covers (both inclusive)."""
        return self.start.date(), (self.end - pd.Timedelta(microseconds=1)).date()


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


def _exact_duration(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """The duration covering exactly [start, end) (unpadded requests)."""
    if start == end - pd.DateOffset(years=1):
        return "1 Y"
    if start == end - pd.DateOffset(months=1):
        return "1 M"
    span = end - start
    if span <= _DAY:
        return "1 D" if span == _DAY else f"{int(span.total_seconds())} S"
    return f"{-(-span // _DAY)} D"


def covering_duration(first: pd.Timestamp, end: pd.Timestamp, spec: IntervalSpec) -> str:
    """The shortest duration whose window ending at ``end`` starts at or before ``first``."""
    span = end - first
    if spec.step >= _DAY:
        days = math.ceil(span / _DAY)
        if days <= MAX_DAYS_DURATION:
            return f"{max(1, days)} D"
        years = max(1, int(span / pd.Timedelta(days=366)))
        while end - pd.DateOffset(years=years) > first:
            years += 1
        return f"{years} Y"
    seconds = math.ceil(span.total_seconds())
    if seconds <= 86400:
        return f"{max(1, seconds)} S"
    return f"{math.ceil(span / _DAY)} D"


def _edges(start: pd.Timestamp, end: pd.Timestamp, unit: ChunkUnit, years_per_request: int) -> list[pd.Timestamp]:
    if unit == "year":
        if years_per_request < 1:
            raise ValueError(f"years_per_request must be >= 1, got {years_per_request}")
        years = range(start.year + years_per_request, end.year + 1, years_per_request)
        grid = [pd.Timestamp(year=y, month=1, day=1, tz="UTC") for y in years]
    else:
        grid = list(pd.date_range(start.floor("D"), end, freq=_UNIT_FREQ[unit], tz="UTC"))
    return sorted({start, end, *(t for t in grid if start < t < end)})


def _request(lo, hi, spec: IntervalSpec, pad: bool, now: pd.Timestamp | None) -> tuple[str, str]:
    if not pad:
        return format_ib_datetime(hi), _exact_duration(lo, hi)
    first = lo - spec.step  # the window must start before the chunk's first bar ...
    last = hi + spec.step  # ... and end after its last one
    if now is not None and last > now:
        return "", covering_duration(first, max(now, first + spec.step), spec)
    return format_ib_datetime(last), covering_duration(first, last, spec)


def plan_chunks(
    start,
    end,
    interval: str,
    unit: ChunkUnit | None = None,
    *,
    years_per_request: int = DAILY_YEARS_PER_REQUEST,
    pad: bool = True,
    now=None,
) -> list[Chunk]:
    """Requests covering ``[start, end)`` for ``interval`` bars, oldest first.

    ``unit`` picks a finer grid than the default (e.g. "month" for daily bars); ``pad=False``
    asks for exactly the chunk's window (what IB may read with a session lost at the edge);
    ``now`` (default: the clock) decides which padded requests must end "now".
    """
    spec = interval_spec(interval)
    unit = unit or DEFAULT_UNIT[interval]
    if unit != "year" and unit not in _UNIT_FREQ:
        raise ValueError(f"unknown chunk unit {unit!r}; use one of year, {', '.join(_UNIT_FREQ)}")
    if unit == "year" and spec.step < _DAY:
        raise ValueError(f"year chunks exceed IB's duration limit for {spec.bar_size} bars")
    start_ts, end_ts = align_range(start, end, interval)
    now_ts = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    chunks = []
    for lo, hi in pairwise(_edges(start_ts, end_ts, unit, years_per_request)):
        request_end, duration = _request(lo, hi, spec, pad, now_ts)
        try:
            check_duration(parse_duration(duration), spec.bar_size)
        except InvalidRequest as exc:
            raise ValueError(f"{unit} chunks exceed IB's duration limit for {spec.bar_size} bars: {exc}") from None
        chunks.append(Chunk(lo, hi, request_end, duration))
    return chunks


def plan_adjusted_chunk(start, end, interval: str, now=None, *, pad: bool = True) -> Chunk:
    """IB serves ADJUSTED_LAST only ending now: one request from ``start`` up to now."""
    if interval != "1d":
        raise ValueError(
            f"adjusted {interval} bars are not available from IB (ADJUSTED_LAST must end now and "
            f"intraday durations are capped); request unadjusted bars and apply corporate actions"
        )
    spec = interval_spec(interval)
    start_ts, end_ts = align_range(start, end, interval)
    now_ts = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    first = start_ts - spec.step if pad else start_ts
    return Chunk(start_ts, end_ts, "", covering_duration(first, max(now_ts, first + spec.step), spec))
