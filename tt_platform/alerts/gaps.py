"""Stale bar series: which symbols have had no new bar for more than two intervals of a session.

A series is judged only while its exchange is in session (``now`` is a trading minute of its
calendar); outside sessions nothing is expected, so nothing is stale. Time is counted on the
calendar's bar grid (see ``tt_platform.data.calendars.expected_timestamps``): a series is stale
when at least ``STALE_AFTER_BARS`` (2) complete bars that the grid expects after its last bar have
ended before ``now``, i.e. when ``now`` is more than two intervals of session time past the end
of its last bar. Nights, weekends and holidays do not count. Daily bars end at their session's
close, so during Wednesday's session a daily series ending on Monday is on time (only Tuesday is
missing) and one ending on the Friday before is stale.

``alerts_for`` turns one scan into the alerts to send and the state to keep (a sensor cursor):
a stale series alerts once and again only after it caught up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from tt_platform.data.calendars import expected_timestamps, get_exchange_calendar, resolve_calendar, session_schedule

STALE_AFTER_BARS = 2
# how far back the bar grid is built: a series whose last bar is older is reported as "more than"
LOOKBACK = pd.Timedelta(days=31)
DAILY = "1d"


@dataclass(frozen=True)
class StaleSeries:
    symbol: str
    interval: str
    calendar: str
    last_bar: pd.Timestamp
    # complete bars expected after the last one (counted within ``LOOKBACK``)
    missing_bars: int
    beyond_lookback: bool = False

    @property
    def key(self) -> str:
        return series_key(self.symbol, self.interval)

    def describe(self) -> str:
        missing = f"more than {self.missing_bars}" if self.beyond_lookback else str(self.missing_bars)
        return (
            f"{self.symbol} ({self.interval}, {self.calendar}): last bar {self.last_bar:%Y-%m-%d %H:%M} UTC, "
            f"{missing} complete bar(s) missing since"
        )


@dataclass(frozen=True)
class GapScan:
    """One look at a set of series: the stale ones, and the keys of those whose exchange was not
    in session (their state is unknown until it reopens)."""

    stale: tuple[StaleSeries, ...] = ()
    not_in_session: frozenset[str] = frozenset()

    def __add__(self, other: GapScan) -> GapScan:
        return GapScan(self.stale + other.stale, self.not_in_session | other.not_in_session)


def series_key(symbol: str, interval: str) -> str:
    return f"{symbol}|{interval}"


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def interval_length(interval: str) -> pd.Timedelta | None:
    """None for daily bars, else the intraday length; a one-line error for anything else."""
    if interval == DAILY:
        return None
    try:
        step = pd.Timedelta(interval)
    except ValueError:
        step = pd.Timedelta(0)
    if step < pd.Timedelta(minutes=1) or step >= pd.Timedelta(days=1) or step % pd.Timedelta(minutes=1):
        raise ValueError(f"bar interval must be '1d' or a whole number of minutes under a day (e.g. '5min', '1h'), not {interval!r}")
    return step


def _completed_bars(calendar: str, interval: str, start: pd.Timestamp, now: pd.Timestamp) -> pd.DatetimeIndex:
    """Starts of the grid's bars in [start's day, now] that ended before ``now``, ascending."""
    step = interval_length(interval)
    first, last = start.normalize(), now.normalize() + pd.Timedelta(days=1)
    if step is None:
        schedule = session_schedule(calendar, first, last)
        ends = pd.DatetimeIndex(schedule["close"]).tz_convert("UTC") if len(schedule) else pd.DatetimeIndex([], tz="UTC")
        return schedule.index[np.asarray(ends < now, dtype=bool)]
    starts = expected_timestamps(calendar, first, last, interval)
    return starts[starts + step < now]


def find_stale_series(
    last_bars: Mapping[str, pd.Timestamp | str],
    interval: str,
    now: pd.Timestamp | str,
    *,
    calendar: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> GapScan:
    """The series of ``last_bars`` (symbol -> its last bar's start) that are stale at ``now``.

    ``calendar`` applies one exchange calendar to every symbol; by default each symbol's is
    resolved (``resolve_calendar``: crypto pairs trade 24/7, other symbols on XNYS).
    """
    interval_length(interval)
    if calendar is not None and calendar not in xcals.get_calendar_names():
        raise ValueError(f"unknown exchange calendar {calendar!r} (an exchange_calendars name such as 'XNYS' or '24/7')")
    now = _utc(now)
    by_calendar: dict[str, dict[str, pd.Timestamp]] = {}
    for symbol, last in last_bars.items():
        name = resolve_calendar(calendar or symbol, None if calendar else overrides)
        by_calendar.setdefault(name, {})[symbol] = _utc(last)

    stale: list[StaleSeries] = []
    closed: set[str] = set()
    for name, series in by_calendar.items():
        exchange = get_exchange_calendar(name)
        if not exchange.is_open_on_minute(now.floor("min")):
            closed |= {series_key(symbol, interval) for symbol in series}
            continue
        window_start = now - LOOKBACK
        grid = _completed_bars(name, interval, max(min(series.values()), window_start), now)
        stamps = grid.asi8
        for symbol, last in sorted(series.items()):
            missing = len(stamps) - int(np.searchsorted(stamps, last.value, side="right"))
            if missing >= STALE_AFTER_BARS:
                stale.append(StaleSeries(symbol, interval, name, last, missing, beyond_lookback=last < window_start))
    return GapScan(tuple(stale), frozenset(closed))


def alerts_for(scan: GapScan, alerted: Mapping[str, str]) -> tuple[list[StaleSeries], dict[str, str]]:
    """The stale series not alerted yet, and the series to remember as alerted: those still stale
    and those whose exchange is closed now. A series that caught up is forgotten, so its next
    gap alerts again."""
    new = [s for s in scan.stale if s.key not in alerted]
    remembered = {key: value for key, value in alerted.items() if key in scan.not_in_session}
    remembered |= {s.key: s.last_bar.isoformat() for s in scan.stale}
    return new, remembered


def read_gap_cursor(cursor: str | None) -> dict[str, str]:
    """The alerted series kept in a sensor cursor; an unreadable cursor counts as empty."""
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    alerted = value.get("alerted") if isinstance(value, dict) else None
    return {str(k): str(v) for k, v in alerted.items()} if isinstance(alerted, dict) else {}


def write_gap_cursor(alerted: Mapping[str, str]) -> str:
    return json.dumps({"alerted": dict(sorted(alerted.items()))}, separators=(",", ":"))
