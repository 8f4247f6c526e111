"""The emulator's exchange hours (XNYS): which bars have closed, trading days, IB's hours strings.

Every symbol the emulator serves is a US stock on the NYSE calendar. Bars are stamped at their
start (daily bars at 00:00 UTC of the session date), so a bar is history only once it has
closed: an intraday bar at ``ts + step`` (or at its session's close, for the short last bar of a
session), a daily bar at its session's close.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from tt_platform.data.calendars import get_exchange_calendar

CALENDAR = "XNYS"
NEW_YORK = ZoneInfo("America/New_York")
DAY = pd.Timedelta(days=1)
_TICK = pd.Timedelta(nanoseconds=1)
# IB's hours for US stocks, New York time: extended trading hours and the regular (liquid) session
_TRADING = ("0400", "2000")
_TRADING_EARLY_CLOSE = ("0400", "1700")


def _calendar():
    return get_exchange_calendar(CALENDAR)


def last_close(now: pd.Timestamp) -> pd.Timestamp | None:
    """The close of the latest session that has closed at ``now``."""
    closes = _calendar().closes
    i = closes.searchsorted(now, side="right")
    return None if i == 0 else closes.iloc[i - 1]


def closed_bar_bound(now: pd.Timestamp, bar_seconds: int) -> pd.Timestamp:
    """Exclusive upper bound of the stamps of bars of ``bar_seconds`` that have closed at ``now``."""
    if bar_seconds >= 86400:  # daily and longer: the session must have closed
        closes = _calendar().closes
        i = closes.searchsorted(now, side="right")
        if i == 0:
            return now - pd.Timedelta(days=36500)
        return pd.Timestamp(closes.index[i - 1]).tz_localize("UTC") + _TICK
    bound = now - pd.Timedelta(seconds=bar_seconds) + _TICK
    closed = last_close(now)
    return bound if closed is None else max(bound, closed)


def trading_days_start(end: pd.Timestamp, days: int, bar_seconds: int) -> pd.Timestamp | None:
    """Start of a window of ``days`` trading days of intraday bars ending at ``end``, as IB reads
    "N D": only sessions with a closed bar by ``end`` count, so before Monday's open "1 D" is
    Friday's session. None when the calendar has no such session."""
    started = _calendar().opens + pd.Timedelta(seconds=bar_seconds)
    n = started.searchsorted(end, side="right")
    if n == 0:
        return None
    return pd.Timestamp(started.index[max(0, n - days)]).tz_localize("UTC")


def _hours(day: pd.Timestamp, start: str, end: str) -> str:
    text = day.strftime("%Y%m%d")
    return f"{text}:{start}-{text}:{end}"


def hours_strings(now: pd.Timestamp, days: int = 7) -> tuple[str, str]:
    """IB's ``tradingHours`` and ``liquidHours`` for ``days`` days from ``now``'s New York date.

    Format: ``20240315:0400-20240315:2000;20240316:CLOSED;...``, in the contract's time zone.
    """
    calendar = _calendar()
    first = pd.Timestamp(now.tz_convert(NEW_YORK).date())
    trading, liquid = [], []
    for offset in range(days):
        day = first + offset * DAY
        if day > calendar.last_session or not calendar.is_session(day):
            trading.append(f"{day.strftime('%Y%m%d')}:CLOSED")
            liquid.append(f"{day.strftime('%Y%m%d')}:CLOSED")
            continue
        opens = calendar.session_open(day).tz_convert(NEW_YORK)
        closes = calendar.session_close(day).tz_convert(NEW_YORK)
        early = day in calendar.early_closes
        trading.append(_hours(day, *(_TRADING_EARLY_CLOSE if early else _TRADING)))
        liquid.append(_hours(day, opens.strftime("%H%M"), closes.strftime("%H%M")))
    return ";".join(trading), ";".join(liquid)
