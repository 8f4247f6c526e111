"""Which exchange sessions are complete: the platform never asks for, or stores, an unfinished one."""

from __future__ import annotations

from datetime import date

import pandas as pd

from tt_platform.data.calendars import DEFAULT_CALENDAR, get_exchange_calendar


def last_completed_session(now: pd.Timestamp | None = None, calendar: str = DEFAULT_CALENDAR) -> date:
    """The latest session of ``calendar`` whose close is at or before ``now`` (default: the clock)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    cal = get_exchange_calendar(calendar)
    # a session closes on its own date (UTC) or, for 24/7 calendars, at the next midnight
    candidate = cal.date_to_session(now.normalize().tz_localize(None), direction="previous")
    while cal.session_close(candidate) > now:
        candidate = cal.previous_session(candidate)
    return candidate.date()


def sessions_between(start: date, end: date, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """Session dates in [start, end] (naive midnight stamps), empty when there are none."""
    if end < start:
        return pd.DatetimeIndex([])
    cal = get_exchange_calendar(calendar)
    first, last = pd.Timestamp(cal.first_session), pd.Timestamp(cal.last_session)
    lo, hi = max(pd.Timestamp(start), first), min(pd.Timestamp(end), last)
    if hi < lo:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(cal.sessions_in_range(lo, hi))
