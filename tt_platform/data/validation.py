"""Validate a source's answer before one row of it is stored.

The blocking bar checks (coverage against the exchange calendar, timestamp order, OHLC sanity,
alignment for the interval, unrecorded splits) run on each answer of a source, for exactly the
days it stands for. An answer that fails is not written: the store keeps what it had, and the
caller reports the problem as the reason its months are still missing.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from tt_platform.data.calendars import expected_timestamps, resolve_calendar
from tt_platform.data.gaps import fill_missing
from tt_platform.data.quality import CheckResult, check_alignment, check_ohlc, check_timestamps, coverage_over_range
from tt_platform.data.split_check import check_unrecorded_splits


def describe(result: CheckResult, symbol: str) -> str:
    """One line for a failed check: its own message, or the first offending bars."""
    details = result.details or {}
    if details.get("message"):
        return str(details["message"])
    examples = details.get("violations") or details.get("examples") or []
    if examples:
        first = examples[0]
        what = ", ".join(first.get("rules", [])) or first.get("problem", "")
        return f"{symbol}: {result.name} failed for {result.value} bars, first at {first.get('ts')} ({what})"
    return f"{symbol}: {result.name} failed ({result.value})"


def fill_sessions(bars: pd.DataFrame, symbol: str, interval: str) -> pd.DataFrame:
    """Missing sessions between the first and last bar as flat bars with volume 0 (``ffill``)."""
    if bars.empty:
        return bars
    sessions = expected_timestamps(resolve_calendar(symbol), bars["ts"].min(), bars["ts"].max(), interval)
    filled, _ = fill_missing(bars, sessions, policy="ffill")
    return filled.drop(columns="filled")


def answer_problem(
    bars: pd.DataFrame,
    *,
    symbol: str,
    start: date,
    end: date,
    interval: str,
    listed_from: date | None = None,
    listed_until: date | None = None,
    actions: pd.DataFrame | None = None,
) -> str | None:
    """None when ``bars`` (one symbol's answer for the days [start, end]) may be stored; else why not."""
    checks = [
        coverage_over_range(bars, symbol=symbol, start=start, end=end, interval=interval, listed_from=listed_from, listed_until=listed_until),
    ]
    if len(bars):
        checks += [
            check_timestamps(bars),
            check_ohlc(bars),
            check_alignment(bars, interval=interval),
            check_unrecorded_splits(bars, actions if actions is not None else pd.DataFrame(), symbol=symbol),
        ]
    failed = [c for c in checks if not c.passed]
    return None if not failed else "; ".join(describe(c, symbol) for c in failed[:2]) + "; nothing of it was stored"
