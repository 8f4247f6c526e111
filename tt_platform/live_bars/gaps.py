"""Data gaps in the live bar stream: alert once per symbol that has gone quiet during the session.

A thin stateful wrapper over ``tt_platform.alerts.gaps``, which already judges stored bar series:
a symbol is in a gap when more than two intervals of session time have passed since its last
bar ended (nights, weekends, holidays and early closes do not count; nothing is judged while the
exchange is closed). The watch keeps the alerted symbols between checks, so each gap alerts once
and a symbol alerts again only after a new bar closed its gap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import exchange_calendars as xcals
import pandas as pd

from tt_platform.alerts.gaps import StaleSeries, alerts_for, find_stale_series, interval_length, series_key
from tt_platform.data.calendars import DEFAULT_CALENDAR


class DataGapWatch:
    """Tracks the gaps of one bar interval on one exchange calendar across repeated checks."""

    def __init__(self, interval: str, calendar: str = DEFAULT_CALENDAR) -> None:
        interval_length(interval)
        if calendar not in xcals.get_calendar_names():
            raise ValueError(f"unknown exchange calendar {calendar!r} (an exchange_calendars name such as 'XNYS' or '24/7')")
        self.interval = interval
        self.calendar = calendar
        self._alerted: dict[str, str] = {}

    def check(
        self,
        last_bars: Mapping[str, pd.Timestamp | dt.datetime | str],
        now: pd.Timestamp | dt.datetime | str,
    ) -> list[StaleSeries]:
        """The symbols whose gap is new at ``now``, given each symbol's last bar stamp (bar start,
        as on the bars); symbols already alerted and still in a gap are not repeated."""
        missing = [symbol for symbol, last in last_bars.items() if last is None]
        if missing:
            raise ValueError(f"no last bar for {missing!r}; pass the warm-start bar so a gap can be measured")
        now_stamp = pd.Timestamp(now)
        if now_stamp.tzinfo is None:
            raise ValueError(f"now {now!r} has no time zone")
        scan = find_stale_series(last_bars, self.interval, now_stamp, calendar=self.calendar)
        new, self._alerted = alerts_for(scan, self._alerted)
        return new

    @property
    def open_gaps(self) -> frozenset[str]:
        """Symbols alerted and not yet caught up (kept while the exchange is closed)."""
        suffix = series_key("", self.interval)
        return frozenset(key[: -len(suffix)] for key in self._alerted)
