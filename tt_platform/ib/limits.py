"""Facts about IB's historical-data request grammar shared by the client and the emulator.

Bar sizes, duration strings and the longest duration IB accepts per bar size ("Historical Data
Limitations" table of the TWS API: 1 min bars up to 1 D, 1 hour bars up to 1 M, 1 day bars up to
1 Y per request; daily bars ending now may span several years, which is how ADJUSTED_LAST works).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class IntervalSpec:
    interval: str  # the platform's name: "1d", "1h", "1min"
    bar_size: str  # IB's barSizeSetting
    step: pd.Timedelta
    max_duration: pd.Timedelta  # longest single request IB accepts for this bar size


INTERVALS: dict[str, IntervalSpec] = {
    "1d": IntervalSpec("1d", "1 day", pd.Timedelta(days=1), pd.Timedelta(days=366)),
    "1h": IntervalSpec("1h", "1 hour", pd.Timedelta(hours=1), pd.Timedelta(days=31)),
    "1min": IntervalSpec("1min", "1 min", pd.Timedelta(minutes=1), pd.Timedelta(days=1)),
}
BAR_SIZE_TO_INTERVAL = {spec.bar_size: name for name, spec in INTERVALS.items()}

# Daily requests that end "now" may cover several years (IB serves long daily histories).
MAX_DAILY_YEARS = 50

WHAT_TO_SHOW = {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"}

_DURATION = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")


class InvalidRequest(ValueError):
    """A request IB would reject while validating it (error 321 or a 162 'time length' error)."""


def interval_spec(interval: str) -> IntervalSpec:
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"unsupported interval {interval!r}; use one of {sorted(INTERVALS)}") from None


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


def check_duration(duration: Duration, bar_size: str, *, ends_now: bool) -> None:
    """Raise InvalidRequest when IB refuses this duration for this bar size."""
    interval = BAR_SIZE_TO_INTERVAL.get(bar_size)
    if interval is None:
        raise InvalidRequest(f"bar size {bar_size!r} is not served; legal here: {sorted(BAR_SIZE_TO_INTERVAL)}")
    spec = INTERVALS[interval]
    if interval == "1d" and duration.unit == "Y":
        limit = MAX_DAILY_YEARS if ends_now else 1
        if duration.count > limit:
            raise InvalidRequest(f"Time length exceed max: {duration} of {bar_size} bars (max {limit} Y)")
        return
    reference = pd.Timestamp("2001-03-01", tz="UTC")  # a fixed date makes M/Y lengths comparable
    length = reference - duration.start_before(reference)
    if length > spec.max_duration:
        raise InvalidRequest(f"Time length exceed max: {duration} of {bar_size} bars")
