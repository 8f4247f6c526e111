"""Trading calendars (exchange_calendars): which sessions and regular-hours minutes to expect.

A symbol or an exchange name resolves to one calendar: an exchange_calendars name or alias
(``XNYS``, ``NYSE``, ``XNAS``, ``CMES``, ``24/7``...) is used as is, a crypto pair (``BTCUSD``,
``BTC-USD``, ``ETH/USDT``) trades every day around the clock (``24/7``), anything else is a US
equity on ``XNYS``. Overrides map symbols explicitly when a ticker collides with a calendar name.

Stamps follow the canonical bar frame: sessions are 00:00 UTC of the session date (as daily bars
are), minutes are UTC bar *starts* within regular hours (09:30..15:59 New York on XNYS, 390 per
full session, 210 on early-close days), and longer intraday bars (5min, 30min, 1h) are complete
bars on a grid anchored at each session's open.

exchange_calendars' XNYS holds no holidays before 1970 (New Year's Day 1962 is listed as a
session), so coverage of older history reads a little low.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

DEFAULT_CALENDAR = "XNYS"
CRYPTO_CALENDAR = "24/7"

CRYPTO_BASES = frozenset(
    {"BTC", "XBT", "ETH", "LTC", "BCH", "XRP", "SOL", "ADA", "DOGE", "DOT", "AVAX", "LINK", "MATIC", "UNI", "ETC", "XLM", "TRX", "EOS", "ATOM", "XMR", "ZEC", "SHIB", "BNB"}
)
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP", "BTC", "ETH", "JPY")
_PAIR = re.compile(r"^(?P<base>[A-Z]{2,6})[-_/]?(?P<quote>[A-Z]{3,4})$")

# Calendars are built once with wide bounds: building costs ~0.15 s, lookups are then cheap.
_FIRST_SESSION = {"XNYS": "1885-01-01"}
_DEFAULT_FIRST = "1990-01-01"


def is_crypto_symbol(symbol: str) -> bool:
    text = symbol.strip().upper()
    match = _PAIR.match(text)
    if match:
        return match["base"] in CRYPTO_BASES and match["quote"] in CRYPTO_QUOTES
    return text in CRYPTO_BASES and text not in {"LINK", "UNI", "DOT", "ATOM", "EOS"}


def resolve_calendar(symbol_or_exchange: str | None = None, overrides: Mapping[str, str] | None = None) -> str:
    """Calendar name for a symbol or an exchange (see module docstring for the rules)."""
    if symbol_or_exchange is None or str(symbol_or_exchange).strip() == "":
        return DEFAULT_CALENDAR
    key = str(symbol_or_exchange).strip()
    if overrides:
        mapped = {k.strip().upper(): v for k, v in overrides.items()}.get(key.upper())
        if mapped is not None:
            name = _canonical(mapped)
            if name is None:
                raise ValueError(f"calendar override for {key!r}: unknown calendar {mapped!r}")
            return name
    canonical = _canonical(key)
    if canonical is not None:
        return canonical
    if is_crypto_symbol(key):
        return CRYPTO_CALENDAR
    return DEFAULT_CALENDAR


def _canonical(name: str) -> str | None:
    """The exchange_calendars name for a calendar name or alias, else None."""
    known = set(xcals.get_calendar_names())
    for candidate in (name, name.upper()):
        if candidate in known:
            return xcals.resolve_alias(candidate)
    return None


@lru_cache(maxsize=32)
def get_exchange_calendar(name: str) -> xcals.ExchangeCalendar:
    """A calendar with wide bounds (from its earliest supported year to two years ahead)."""
    name = _canonical(name) or name
    first = _FIRST_SESSION.get(name, _DEFAULT_FIRST)
    last = (pd.Timestamp.now().normalize() + pd.DateOffset(years=2)).strftime("%Y-%m-%d")
    try:
        return xcals.get_calendar(name, start=first, end=last)
    except ValueError:  # calendars whose history starts later than our default bound
        return xcals.get_calendar(name, end=last)


def _day(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


def _bounded(calendar: xcals.ExchangeCalendar, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    first, last = _day(start), _day(end)
    if last < first:
        raise ValueError(f"end {last.date()} is before start {first.date()}")
    lo, hi = calendar.first_session, calendar.last_session
    if first > hi or last < lo:
        raise ValueError(f"{calendar.name} covers {lo.date()}..{hi.date()}; asked for {first.date()}..{last.date()}")
    return max(first, lo), min(last, hi)


def expected_sessions(
    symbol_or_exchange: str | None = DEFAULT_CALENDAR,
    start: str | pd.Timestamp = "1990-01-01",
    end: str | pd.Timestamp | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """Sessions in [start, end] (inclusive), stamped 00:00 UTC like daily bars."""
    calendar = get_exchange_calendar(resolve_calendar(symbol_or_exchange, overrides))
    first, last = _bounded(calendar, start, end if end is not None else calendar.last_session)
    sessions = calendar.sessions_in_range(first, last)
    return pd.DatetimeIndex(sessions.tz_localize("UTC"), name="ts").astype("datetime64[ns, UTC]")


def session_schedule(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per session: open, close (UTC), regular minutes, early_close flag; indexed like daily bars."""
    calendar = get_exchange_calendar(resolve_calendar(symbol_or_exchange, overrides))
    first, last = _bounded(calendar, start, end)
    sessions = calendar.sessions_in_range(first, last)
    opens = calendar.opens.reindex(sessions)
    closes = calendar.closes.reindex(sessions)
    # Breaks (lunch on some Asian exchanges) are not trading minutes.
    break_minutes = (calendar.break_ends.reindex(sessions) - calendar.break_starts.reindex(sessions)).fillna(pd.Timedelta(0))
    minutes = ((closes - opens - break_minutes) / pd.Timedelta(minutes=1)).astype("int64")
    early = sessions.isin(calendar.early_closes)
    index = pd.DatetimeIndex(sessions.tz_localize("UTC"), name="session").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {"open": opens.to_numpy(), "close": closes.to_numpy(), "minutes": minutes.to_numpy(), "early_close": early},
        index=index,
    )


def minutes_per_session(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.Series:
    """Expected regular-hours 1-minute bars per session (390 on a full XNYS day, 1440 on 24/7)."""
    return session_schedule(symbol_or_exchange, start, end, overrides=overrides)["minutes"].rename("minutes")


def early_closes(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Sessions that close early: their close time (UTC) and number of regular minutes."""
    schedule = session_schedule(symbol_or_exchange, start, end, overrides=overrides)
    return schedule.loc[schedule["early_close"], ["close", "minutes"]]


def expected_minutes(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """Regular-hours 1-minute bar starts (UTC) of every session in [start, end]."""
    calendar = get_exchange_calendar(resolve_calendar(symbol_or_exchange, overrides))
    first, last = _bounded(calendar, start, end)
    sessions = calendar.sessions_in_range(first, last)
    if len(sessions) == 0:
        return pd.DatetimeIndex([], tz="UTC", name="ts").astype("datetime64[ns, UTC]")
    minutes = calendar.sessions_minutes(sessions[0], sessions[-1])
    if calendar.side != "left":  # bar starts: [open, close)
        raise ValueError(f"calendar {calendar.name} must use side='left'")
    return pd.DatetimeIndex(minutes, name="ts").astype("datetime64[ns, UTC]")


def expected_bar_starts(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    interval: str | pd.Timedelta,
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """Starts (UTC) of complete ``interval`` bars in regular hours, anchored at each session open.

    A bar is expected when all its minutes are trading minutes: on XNYS 1h bars start at 09:30,
    10:30, ... 14:30 (the half hour before the close makes no full bar), 30min/5min/1min bars tile
    the session exactly. The synthetic source and the aggregation layer use the same grid.
    """
    step = pd.Timedelta(interval)
    if step < pd.Timedelta(minutes=1) or step % pd.Timedelta(minutes=1):
        raise ValueError(f"interval must be a whole number of minutes, not {interval!r}")
    minutes = expected_minutes(symbol_or_exchange, start, end, overrides=overrides)
    if step == pd.Timedelta(minutes=1) or len(minutes) == 0:
        return minutes
    schedule = session_schedule(symbol_or_exchange, start, end, overrides=overrides)
    ns = minutes.asi8
    opens = np.repeat(pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8, schedule["minutes"].to_numpy())
    if len(opens) != len(ns):
        raise ValueError("calendar minutes and schedule disagree; cannot build the bar grid")
    step_ns, minute_ns = step.value, pd.Timedelta(minutes=1).value
    on_grid = (ns - opens) % step_ns == 0
    last_minute = ns + step_ns - minute_ns
    position = np.searchsorted(ns, last_minute).clip(max=len(ns) - 1)
    complete = ns[position] == last_minute
    # a complete bar has every minute in between too: the count of minutes it spans must match
    spans = position - np.arange(len(ns)) + 1 == step_ns // minute_ns
    return pd.DatetimeIndex(ns[on_grid & complete & spans], name="ts").tz_localize("UTC")


def expected_timestamps(
    symbol_or_exchange: str | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    interval: str = "1d",
    *,
    overrides: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """Expected bar stamps: sessions for "1d", regular-hours bar starts for intraday intervals
    ("1min", "5min", "30min", "1h", ...; see ``expected_bar_starts``)."""
    if interval in ("1d", "1D", "D", "day"):
        return expected_sessions(symbol_or_exchange, start, end, overrides=overrides)
    try:
        step = pd.Timedelta(interval)
    except ValueError as exc:
        raise ValueError(f"interval must be '1d' or an intraday length like '1min', '5min', '1h', not {interval!r}") from exc
    if step >= pd.Timedelta(days=1):
        raise ValueError(f"interval must be '1d' or shorter than a day, not {interval!r}")
    return expected_bar_starts(symbol_or_exchange, start, end, step, overrides=overrides)
