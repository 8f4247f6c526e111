"""Historical-data requests as the emulator understands them (pure): window, limits, rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from tt_platform.ib.emulator.market_hours import closed_bar_bound, trading_days_start
from tt_platform.ib.emulator.messages import BarRow
from tt_platform.ib.limits import (
    BAR_SIZE_SECONDS,
    WHAT_TO_SHOW,
    InvalidRequest,
    bar_size_interval,
    check_duration,
    parse_duration,
)

# How the emulator reads a request's window: IB does not document whether the window is
# [end - duration, end) or (end - duration, end]. "exclusive_start" serves the latter, i.e. it
# drops a bar stamped exactly at the window start (the first session of a daily window that
# starts at midnight of a session day), which is how some gateways have been seen to answer.
WINDOW_READINGS = ("inclusive_start", "exclusive_start")

_END = re.compile(r"^(\d{8})(?:[ -]+(\d{2}:\d{2}:\d{2}))?(?:\s+(\S+))?$")


def parse_end_datetime(text: str, now: pd.Timestamp) -> pd.Timestamp:
    """IB endDateTime: '' (now), 'yyyymmdd hh:mm:ss <zone>', 'yyyymmdd-hh:mm:ss' (UTC),
    'yyyymmdd hh:mm:ss' (login zone; the emulator logs in as UTC) or 'yyyymmdd'."""
    text = (text or "").strip()
    if not text:
        return now
    match = _END.match(text)
    if not match:
        raise InvalidRequest(f"invalid end date/time {text!r}: expected 'yyyymmdd hh:mm:ss [zone]'")
    day, clock, zone = match.groups()
    try:
        naive = pd.Timestamp(f"{day[:4]}-{day[4:6]}-{day[6:]} {clock or '00:00:00'}")
    except ValueError as exc:
        raise InvalidRequest(f"invalid end date/time {text!r}: {exc}") from None
    try:
        tz = ZoneInfo(zone) if zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"invalid end date/time {text!r}: unknown time zone {zone!r}") from None
    return naive.tz_localize(tz).tz_convert("UTC")


@dataclass(frozen=True)
class HistoricalQuery:
    interval: str
    start: pd.Timestamp
    end: pd.Timestamp
    ends_now: bool
    bar_size: str = "1 day"


def resolve_query(
    end_text: str, duration_text: str, bar_size: str, what_to_show: str, keep_up_to_date: bool, now: pd.Timestamp
) -> HistoricalQuery:
    """Validate a request like IB does and return the window ``[start, end)`` it asks for.

    "N D" of intraday bars counts trading days, as IB reads it: the last N sessions with a
    closed bar by the end, so "1 D" of minutes asked before Monday's open is Friday's session.
    For daily bars it stays N calendar days before the end.
    """
    if bar_size not in BAR_SIZE_SECONDS:
        raise InvalidRequest(f"Error validating request: bar size {bar_size!r} is not a valid IB bar size")
    if what_to_show not in WHAT_TO_SHOW:
        raise InvalidRequest(f"Error validating request: whatToShow {what_to_show!r} is invalid")
    ends_now = not (end_text or "").strip()
    if what_to_show == "ADJUSTED_LAST" and not ends_now:
        raise InvalidRequest("Error validating request: end date/time must be empty for ADJUSTED_LAST")
    if keep_up_to_date and not ends_now:
        raise InvalidRequest("Error validating request: end date/time must be empty with keepUpToDate")
    duration = parse_duration(duration_text)
    check_duration(duration, bar_size, ends_now=ends_now)
    end = parse_end_datetime(end_text, now)
    start = duration.start_before(end)
    if duration.unit == "D" and BAR_SIZE_SECONDS[bar_size] < 86400:
        start = trading_days_start(end, duration.count, BAR_SIZE_SECONDS[bar_size]) or start
    return HistoricalQuery(bar_size_interval(bar_size), start, end, ends_now, bar_size)


def visible_bound(query: HistoricalQuery, now: pd.Timestamp) -> pd.Timestamp:
    """Exclusive bound of the bar stamps a request may see at ``now``: closed bars only."""
    return closed_bar_bound(now, BAR_SIZE_SECONDS[query.bar_size])


def window_bounds(query: HistoricalQuery, reading: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The half-open ``[lo, hi)`` of bar stamps served for ``query`` under ``reading``."""
    if reading == "exclusive_start":  # (start, end]
        tick = pd.Timedelta(nanoseconds=1)
        return query.start + tick, query.end + tick
    if reading != "inclusive_start":
        raise ValueError(f"unknown window reading {reading!r}; use one of {WINDOW_READINGS}")
    return query.start, query.end


def format_bar_time(ts: pd.Timestamp, interval: str, format_date: int) -> str:
    if _is_daily(interval):
        return ts.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts.timestamp()))
    return ts.strftime("%Y%m%d %H:%M:%S UTC")


def format_span_time(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y%m%d  %H:%M:%S")


def bar_rows(bars: pd.DataFrame, interval: str, format_date: int, decimals: int = 6) -> list[BarRow]:
    """Canonical bars as wire rows: prices rounded (no float noise), WAP and a trade count."""
    if bars.empty:
        return []
    prices = bars[["open", "high", "low", "close"]].to_numpy(dtype="float64").round(decimals)
    wap = prices[:, 1:].mean(axis=1).round(decimals)
    volume = bars["volume"].to_numpy(dtype="float64").round(2)
    count = np.maximum(1, (volume // 100)).astype(np.int64)
    dates = _bar_times(bars["ts"], interval, format_date)
    return [
        BarRow(d, o, h, lo, c, v, w, n)
        for d, (o, h, lo, c), v, w, n in zip(
            dates, prices.tolist(), volume.tolist(), wap.tolist(), count.tolist()
        )
    ]


def _bar_times(ts: pd.Series, interval: str, format_date: int) -> list[str]:
    """``format_bar_time`` for a whole column at once."""
    if _is_daily(interval):
        return ts.dt.strftime("%Y%m%d").tolist()
    if format_date == 2:
        return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(str).tolist()
    return ts.dt.strftime("%Y%m%d %H:%M:%S UTC").tolist()


def _is_daily(interval: str) -> bool:
    return interval == "1d" or interval.endswith(("w", "mo"))
