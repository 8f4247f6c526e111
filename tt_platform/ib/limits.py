"""Facts about IB's historical-data request grammar shared by the client and the emulator.

Bar sizes, duration strings and the longest duration IB accepts per bar size (the step-size table
"Valid Duration and Bar Size Settings" of the TWS API: 30-second bars up to 28800 S, 1 min bars up
to 1 D, 30 min to 1 hour bars up to 1 M, and 1 day bars with any number of years "N Y"), plus
the limits that hold for every bar size: at most 50 simultaneous open historical requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class IntervalSpec:
    interval: str  # the platform's name: "1d", "1h", "1min", "30s"
    bar_size: str  # IB's barSizeSetting
    step: pd.Timedelta
    max_duration: pd.Timedelta  # longest single request IB accepts for this bar size


INTERVALS: dict[str, IntervalSpec] = {
    "1d": IntervalSpec("1d", "1 day", pd.Timedelta(days=1), pd.Timedelta(days=366)),
    "1h": IntervalSpec("1h", "1 hour", pd.Timedelta(hours=1), pd.Timedelta(days=31)),
    "1min": IntervalSpec("1min", "1 min", pd.Timedelta(minutes=1), pd.Timedelta(days=1)),
    "30s": IntervalSpec("30s", "30 secs", pd.Timedelta(seconds=30), pd.Timedelta(seconds=28800)),
}
BAR_SIZE_TO_INTERVAL = {spec.bar_size: name for name, spec in INTERVALS.items()}

# Every barSizeSetting IB accepts, in seconds (a month counted as 31 days).
BAR_SIZE_SECONDS: dict[str, int] = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10800,
    "4 hours": 14400,
    "8 hours": 28800,
    "1 day": 86400,
    "1 week": 604800,
    "1 month": 2678400,
}

# IB's hard pacing rules (60 per 10 min, identical within 15 s, 6 per contract within 2 s,
# BID_ASK counting twice) are those of "Pacing Violations for Small Bars (30 secs or less)".
SMALL_BAR_SECONDS = 30
# For every bar size: at most this many historical requests open at once (error 322 beyond).
MAX_OPEN_HISTORICAL_REQUESTS = 50
# Sanity cap on "N Y" durations for daily bars (IB documents no maximum).
MAX_DAILY_YEARS = 50
# IB wants durations beyond 365 days in years ("... must be made in years").
MAX_DAYS_DURATION = 365

WHAT_TO_SHOW = {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"}

_DURATION = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")
# (largest bar size in seconds, longest duration): rows of IB's step-size table
_MAX_DURATION_BY_BAR: tuple[tuple[int, pd.Timedelta], ...] = (
    (1, pd.Timedelta(seconds=1800)),
    (5, pd.Timedelta(seconds=3600)),
    (15, pd.Timedelta(seconds=14400)),
    (30, pd.Timedelta(seconds=28800)),
    (60, pd.Timedelta(days=1)),
    (120, pd.Timedelta(days=2)),
    (1200, pd.Timedelta(weeks=1)),
    (28800, pd.Timedelta(days=31)),
)


class InvalidRequest(ValueError):
    """A request IB would reject while validating it (error 321 or a 162 'time length' error)."""


def interval_spec(interval: str) -> IntervalSpec:
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"unsupported interval {interval!r}; use one of {sorted(INTERVALS)}") from None


def bar_size_seconds(bar_size: str) -> int | None:
    """Length of one bar of IB's ``bar_size`` in seconds; None for a size IB does not know."""
    return BAR_SIZE_SECONDS.get((bar_size or "").strip())


def is_small_bar(bar_size: str) -> bool:
    """Whether IB's small-bar pacing rules apply (30 s bars or less; unknown sizes count as small)."""
    seconds = bar_size_seconds(bar_size)
    return seconds is None or seconds <= SMALL_BAR_SECONDS


def bar_size_interval(bar_size: str) -> str:
    """The interval name for an IB bar size ("1 day" -> "1d", "5 mins" -> "5min", "30 secs" -> "30s")."""
    if bar_size in BAR_SIZE_TO_INTERVAL:
        return BAR_SIZE_TO_INTERVAL[bar_size]
    count, unit = bar_size.split()
    suffix = {
        "secs": "s", "min": "min", "mins": "min", "hour": "h", "hours": "h", "day": "d", "week": "w", "month": "mo"
    }
    return f"{count}{suffix.get(unit, unit)}"


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str  # S, D, W, M, Y

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"

    def start_before(self, end: pd.Timestamp) -> pd.Timestamp:
        """The window start for a request ending at ``end`` (calendar arithmetic for M and Y)."""
        if self.unit == "S":
            return end - pd.Timedelta(seconds=self.count)
        if self.unit == "D":
            return end - pd.Timedelta(days=self.count)
        if self.unit == "W":
            return end - pd.Timedelta(weeks=self.count)
        if self.unit == "M":
            return end - pd.DateOffset(months=self.count)
        return end - pd.DateOffset(years=self.count)


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text or "")
    if not match:
        raise InvalidRequest(f"invalid duration {text!r}: expected '<integer> <S|D|W|M|Y>'")
    count = int(match.group(1))
    if count <= 0:
        raise InvalidRequest(f"invalid duration {text!r}: the count must be positive")
    return Duration(count, match.group(2))


def max_duration(bar_size: str) -> pd.Timedelta | None:
    """The longest duration IB accepts for ``bar_size``; None when years are fine (daily and up)."""
    seconds = bar_size_seconds(bar_size)
    if seconds is None:
        raise InvalidRequest(f"bar size {bar_size!r} is not a valid IB bar size; legal: {list(BAR_SIZE_SECONDS)}")
    for largest, limit in _MAX_DURATION_BY_BAR:
        if seconds <= largest:
            return limit
    return None


def check_duration(duration: Duration, bar_size: str, *, ends_now: bool = False) -> None:
    """Raise InvalidRequest when IB refuses this duration for this bar size.

    Daily (and longer) bars take any number of years; ``ends_now`` no longer matters for them
    and is kept for callers that pass it.
    """
    limit = max_duration(bar_size)
    if duration.unit == "S" and duration.count > 86400:
        raise InvalidRequest(f"Time length exceed max: {duration} (durations over 86400 S must be given in days)")
    if duration.unit == "D" and duration.count > MAX_DAYS_DURATION:
        raise InvalidRequest(
            f"Historical data requests for durations longer than 365 days must be made in years: {duration}"
        )
    if limit is None:
        if duration.unit == "Y" and duration.count > MAX_DAILY_YEARS:
            raise InvalidRequest(f"Time length exceed max: {duration} of {bar_size} bars (max {MAX_DAILY_YEARS} Y)")
        return
    reference = pd.Timestamp("2001-03-01", tz="UTC")  # a fixed date makes M/Y lengths comparable
    length = reference - duration.start_before(reference)
    if length > limit:
        raise InvalidRequest(f"Time length exceed max: {duration} of {bar_size} bars")
