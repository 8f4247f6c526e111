"""Data-quality checks on canonical bar frames (pure functions, no I/O).

Each check returns a ``CheckResult``; the caller decides what to do with failures (log, block
an asset, alert). Checks that compare against a calendar take the *expected* timestamps
(``expected``: one index for every symbol, or a mapping symbol -> index), built by
``tt_platform.data.calendars``; ``run_all_checks`` does that for you.

``check_coverage`` and ``check_gaps`` measure between each symbol's first and last bar: a
listing or a delisting is not a gap (staleness covers a feed that stopped). Bars on timestamps
the calendar does not expect (weekend bars, pre- and post-market minutes) are counted as
``unexpected`` and add no coverage.

``coverage_over_range`` counts against the exchange calendar over the *requested* range instead,
clipped only to listing dates the source reported (never to the first stored bar), so a missing
first or last session fails. ``run_checks_by_symbol`` uses it when given ``start`` and ``end``.
``check_alignment`` checks that every stamp sits where the interval puts bars: daily bars at
00:00 UTC of a session date, intraday bars on the session's bar grid inside regular hours.

``details`` hold plain JSON types so they can be stored as they are; checks that can fail for a
symbol put a one-line ``message`` in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from tt_platform.data.calendars import (
    expected_sessions,
    expected_timestamps,
    get_exchange_calendar,
    resolve_calendar,
    session_schedule,
)

Severity = Literal["warn", "error"]
Expected = pd.DatetimeIndex | Mapping[str, pd.DatetimeIndex]

MAX_LISTED = 10_000  # cap on per-symbol lists in details (minute data can miss many stamps)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    severity: Severity
    value: float | int | None
    details: dict[str, Any] = field(default_factory=dict)


# ---- helpers on UTC nanoseconds (no object arrays of Timestamps) ----------------------------------


def _ns(values) -> np.ndarray:
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8


class _ExpectedLookup:
    """Expected stamps per symbol as sorted int64 ns, converted once per distinct index."""

    def __init__(self, expected: Expected) -> None:
        self._expected = expected
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, symbol: str) -> np.ndarray:
        if isinstance(self._expected, Mapping):
            if symbol not in self._expected:
                raise KeyError(f"no expected timestamps for symbol {symbol!r}")
            index = self._expected[symbol]
        else:
            index = self._expected
        key = id(index)
        if key not in self._cache:
            self._cache[key] = np.unique(_ns(index))
        return self._cache[key]


def _per_symbol(bars: pd.DataFrame) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(symbol, row positions in time order, sorted ns stamps) for each symbol."""
    stamps = _ns(bars["ts"])
    for symbol, rows in sorted(bars.groupby("symbol", sort=False).indices.items(), key=lambda kv: str(kv[0])):
        order = rows[np.argsort(stamps[rows], kind="stable")]
        yield str(symbol), order, stamps[order]


_NS_PER_DAY = 86_400_000_000_000


def _iso(ns: np.ndarray) -> list[str]:
    """ISO strings: dates for midnight stamps (daily bars), else UTC date-times."""
    ns = np.asarray(ns, dtype=np.int64)
    stamps = ns.astype("datetime64[ns]")
    if len(ns) and not (ns % _NS_PER_DAY).any():
        return np.datetime_as_string(stamps, unit="D").tolist()
    return np.datetime_as_string(stamps, unit="s", timezone="UTC").tolist()


def _isin_sorted(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    """``np.isin`` for a sorted pool, by binary search (no hashing or re-sorting)."""
    if len(sorted_pool) == 0:
        return np.zeros(len(values), dtype=bool)
    position = np.searchsorted(sorted_pool, values).clip(max=len(sorted_pool) - 1)
    return sorted_pool[position] == values


def _window(expected: np.ndarray, present: np.ndarray) -> np.ndarray:
    if len(present) == 0:
        return expected[:0]
    return expected[np.searchsorted(expected, present[0], "left"): np.searchsorted(expected, present[-1], "right")]


# ---- checks ---------------------------------------------------------------------------------------


def check_coverage(
    bars: pd.DataFrame, expected: Expected, *, min_coverage: float = 0.99, severity: Severity = "warn"
) -> CheckResult:
    """Share of expected stamps (between first and last bar) that have a bar; KPI >= 99%."""
    lookup = _ExpectedLookup(expected)
    per_symbol: dict[str, dict[str, Any]] = {}
    for symbol, _, present in _per_symbol(bars):
        exp = lookup(symbol)
        window = _window(exp, present)
        hit = int(_isin_sorted(window, present).sum())
        unexpected = int((~_isin_sorted(present, exp)).sum())
        coverage = 100.0 * hit / len(window) if len(window) else 100.0
        per_symbol[symbol] = {"expected": len(window), "present": hit, "coverage_pct": coverage, "unexpected": unexpected}
    worst = min((d["coverage_pct"] for d in per_symbol.values()), default=100.0)
    return CheckResult(
        "coverage",
        passed=bool(per_symbol) and worst >= 100.0 * min_coverage - 1e-9,
        severity=severity,
        value=worst,
        details={"min_coverage_pct": 100.0 * min_coverage, "per_symbol": per_symbol, "empty": not per_symbol},
    )


def check_timestamps(bars: pd.DataFrame, *, severity: Severity = "error") -> CheckResult:
    """Per symbol, timestamps strictly increase in row order (so they are also unique)."""
    duplicates = bars.duplicated(["symbol", "ts"], keep="first").to_numpy()
    step = bars.groupby("symbol", sort=False)["ts"].diff()
    out_of_order = (step < pd.Timedelta(0)).to_numpy() & ~duplicates
    flagged = np.flatnonzero(duplicates | out_of_order)[:20]
    examples = [
        {
            "symbol": str(bars["symbol"].iloc[i]),
            "ts": bars["ts"].iloc[i].isoformat(),
            "problem": "duplicate" if duplicates[i] else "out of order",
        }
        for i in flagged
    ]
    count = int(duplicates.sum() + out_of_order.sum())
    return CheckResult(
        "monotonic_unique",
        passed=count == 0,
        severity=severity,
        value=count,
        details={"duplicates": int(duplicates.sum()), "out_of_order": int(out_of_order.sum()), "examples": examples},
    )


def check_ohlc(bars: pd.DataFrame, *, rel_tol: float = 1e-9, severity: Severity = "error") -> CheckResult:
    """low <= open, close <= high; low <= high; prices > 0; volume >= 0 (rel_tol absorbs float noise)."""
    o, h, lo, c, v = (bars[col].to_numpy(dtype="float64") for col in ("open", "high", "low", "close", "volume"))
    slack = rel_tol * np.abs(h)
    rules = {
        "low > open": lo > o + slack,
        "low > close": lo > c + slack,
        "open > high": o > h + slack,
        "close > high": c > h + slack,
        "low > high": lo > h + slack,
        "price <= 0": np.minimum.reduce([o, h, lo, c]) <= 0,
        "volume < 0": v < 0,
        "not finite": ~np.isfinite(np.stack([o, h, lo, c, v])).all(axis=0),
    }
    bad = np.logical_or.reduce(list(rules.values()))
    violations = [
        {
            "symbol": str(bars["symbol"].iloc[i]),
            "ts": bars["ts"].iloc[i].isoformat(),
            "rules": [name for name, mask in rules.items() if mask[i]],
            "open": float(o[i]), "high": float(h[i]), "low": float(lo[i]), "close": float(c[i]),
        }
        for i in np.flatnonzero(bad)[:MAX_LISTED]
    ]
    return CheckResult(
        "ohlc_sanity",
        passed=not bad.any(),
        severity=severity,
        value=int(bad.sum()),
        details={"violations": violations, "by_rule": {name: int(mask.sum()) for name, mask in rules.items() if mask.any()}},
    )


def gap_runs(missing: pd.DatetimeIndex | np.ndarray, expected: pd.DatetimeIndex | np.ndarray) -> list[dict[str, Any]]:
    """Consecutive runs of missing expected stamps: start, end and length (in expected stamps)."""
    missing_ns = missing if isinstance(missing, np.ndarray) else _ns(missing)
    if len(missing_ns) == 0:
        return []
    expected_ns = expected if isinstance(expected, np.ndarray) else np.unique(_ns(expected))
    positions = np.searchsorted(expected_ns, missing_ns)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(positions) - 1]])
    labels_start, labels_end = _iso(missing_ns[starts]), _iso(missing_ns[ends])
    return [
        {"start": s, "end": e, "length": int(n)}
        for s, e, n in zip(labels_start, labels_end, ends - starts + 1)
    ]


def check_gaps(bars: pd.DataFrame, expected: Expected, *, max_gap: int = 0, severity: Severity = "warn") -> CheckResult:
    """Missing expected stamps between first and last bar; passes when no run exceeds ``max_gap``."""
    lookup = _ExpectedLookup(expected)
    per_symbol: dict[str, dict[str, Any]] = {}
    longest_overall = 0
    for symbol, _, present in _per_symbol(bars):
        exp = lookup(symbol)
        window = _window(exp, present)
        missing = window[~_isin_sorted(window, present)]
        runs = gap_runs(missing, exp)
        longest = max(runs, key=lambda r: r["length"]) if runs else None
        longest_overall = max(longest_overall, longest["length"] if longest else 0)
        per_symbol[symbol] = {
            "n_missing": int(len(missing)),
            "missing": _iso(missing[:MAX_LISTED]),
            "truncated": len(missing) > MAX_LISTED,
            "gaps": runs[:MAX_LISTED],
            "longest": longest,
        }
    return CheckResult(
        "gaps",
        passed=longest_overall <= max_gap,
        severity=severity,
        value=longest_overall,
        details={"max_gap": max_gap, "per_symbol": per_symbol},
    )


def longest_repeat(values: np.ndarray) -> tuple[int, int]:
    """Length and start position of the longest run of identical consecutive values."""
    if len(values) == 0:
        return 0, 0
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(values)]]))
    best = int(np.argmax(lengths))
    return int(lengths[best]), int(starts[best])


def check_stale(
    bars: pd.DataFrame,
    expected: Expected,
    *,
    as_of: pd.Timestamp | str | None = None,
    max_age: int = 1,
    max_repeated_closes: int = 5,
    severity: Severity = "warn",
) -> CheckResult:
    """Stale data: a symbol's last bar is more than ``max_age`` expected stamps behind ``as_of``
    (default: the latest bar in ``bars``), or a close repeats ``max_repeated_closes`` or more times
    in a row. ``value`` is the worst age (in expected stamps) across symbols.
    """
    lookup = _ExpectedLookup(expected)
    cutoff = _as_of(bars, as_of)
    closes_all = bars["close"].to_numpy()
    per_symbol: dict[str, dict[str, Any]] = {}
    failed = False
    worst_age = 0
    for symbol, order, present in _per_symbol(bars):
        exp = lookup(symbol)
        last = int(present[-1])
        age = int(np.searchsorted(exp, cutoff, "right") - np.searchsorted(exp, last, "right")) if cutoff > last else 0
        run, start = longest_repeat(closes_all[order])
        too_old = age > max_age
        repeated = run >= max_repeated_closes
        failed |= too_old or repeated
        worst_age = max(worst_age, age)
        per_symbol[symbol] = {
            "last_bar": _iso(present[-1:])[0],
            "as_of": _iso(np.array([cutoff]))[0],
            "age": age,
            "too_old": too_old,
            "longest_repeated_close": run,
            "repeated_from": _iso(present[start: start + 1])[0],
            "repeated_closes": repeated,
        }
    return CheckResult(
        "stale",
        passed=not failed,
        severity=severity,
        value=worst_age,
        details={"max_age": max_age, "max_repeated_closes": max_repeated_closes, "per_symbol": per_symbol},
    )


def _as_of(bars: pd.DataFrame, as_of) -> int:
    if as_of is None:
        return int(_ns(bars["ts"]).max())
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.as_unit("ns").value


# ---- coverage over a requested range --------------------------------------------------------------

DateLike = date | datetime | pd.Timestamp | str
SAMPLE = 10  # stamps listed in samples and messages
MAX_RUNS = 100  # gap runs listed in range details
_DAILY_INTERVALS = ("1d", "1D", "D", "day")


def _is_daily(interval: str) -> bool:
    return interval in _DAILY_INTERVALS


def _utc(value: DateLike) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _date(value: DateLike) -> date:
    return _utc(value).date()


def _has_time(value: DateLike | None) -> bool:
    """True for an instant with a time of day (an IB head timestamp), False for a plain date."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return False
    stamp = _utc(value)
    return stamp != stamp.normalize()


def _iso_fact(value: DateLike | None) -> str | None:
    if value is None:
        return None
    return _utc(value).isoformat() if _has_time(value) else _date(value).isoformat()


def _day_ns(day: date) -> int:
    return pd.Timestamp(day, tz="UTC").as_unit("ns").value


@dataclass(frozen=True)
class _Window:
    symbol: str
    calendar: str
    interval: str
    start: date  # as requested
    end: date
    first: date  # the requested range clipped to the listing
    last: date
    listed_from: DateLike | None
    listed_until: DateLike | None
    expected: np.ndarray  # sorted UTC ns stamps

    @property
    def clipped(self) -> bool:
        return (self.first, self.last) != (self.start, self.end)

    @property
    def unit(self) -> str:
        return "sessions" if _is_daily(self.interval) else "bars"

    def span(self) -> str:
        return f"{self.first}..{self.last}"


def _range_window(
    symbol: str,
    *,
    start: DateLike,
    end: DateLike,
    interval: str,
    listed_from: DateLike | None,
    listed_until: DateLike | None,
    calendar: str | None,
    overrides: Mapping[str, str] | None = None,
) -> _Window:
    name = calendar if calendar is not None else resolve_calendar(symbol, overrides)
    start_day, end_day = _date(start), _date(end)
    if end_day < start_day:
        raise ValueError(f"{symbol}: end {end_day} is before start {start_day}")
    first = max(start_day, _date(listed_from)) if listed_from is not None else start_day
    last = min(end_day, _date(listed_until)) if listed_until is not None else end_day
    expected = np.empty(0, dtype=np.int64)
    if first <= last:
        expected = np.unique(_ns(expected_timestamps(name, pd.Timestamp(first), pd.Timestamp(last), interval)))
        if not _is_daily(interval):
            # a listing instant with a time of day (IB's head timestamp) also cuts within its session
            if _has_time(listed_from):
                expected = expected[expected >= _utc(listed_from).as_unit("ns").value]
            if _has_time(listed_until):
                expected = expected[expected <= _utc(listed_until).as_unit("ns").value]
    return _Window(symbol, name, interval, start_day, end_day, first, last, listed_from, listed_until, expected)


def expected_over_range(
    symbol: str,
    *,
    start: DateLike,
    end: DateLike,
    interval: str = "1d",
    listed_from: DateLike | None = None,
    listed_until: DateLike | None = None,
    calendar: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """The stamps ``coverage_over_range`` expects: the calendar's sessions (or intraday bar starts)
    dated in [start, end], clipped to [listed_from, listed_until] when given."""
    window = _range_window(
        symbol, start=start, end=end, interval=interval, listed_from=listed_from,
        listed_until=listed_until, calendar=calendar, overrides=overrides,
    )
    return pd.DatetimeIndex(window.expected.astype("datetime64[ns]"), name="ts").tz_localize("UTC")


def _symbol_stamps(bars: pd.DataFrame, symbol: str) -> np.ndarray:
    """Sorted unique UTC ns stamps of ``symbol``'s bars."""
    if bars.empty:
        return np.empty(0, dtype=np.int64)
    return np.unique(_ns(bars.loc[(bars["symbol"].astype(str) == symbol).to_numpy(), "ts"]))


def _coverage(window: _Window, present: np.ndarray, severity: Severity) -> CheckResult:
    expected = window.expected
    hit = _isin_sorted(expected, present)
    missing = expected[~hit]
    n_expected, n_present, n_missing = len(expected), int(hit.sum()), int(len(missing))
    lo = min(_day_ns(window.first), int(expected[0])) if n_expected else _day_ns(window.first)
    hi = max(_day_ns(window.last) + _NS_PER_DAY, int(expected[-1]) + 1) if n_expected else _day_ns(window.last) + _NS_PER_DAY
    inside = present[(present >= lo) & (present < hi)]
    unexpected = int((~_isin_sorted(inside, expected)).sum())
    runs = gap_runs(missing, expected)
    sample = _iso(missing[:SAMPLE])
    symbol, unit = window.symbol, window.unit
    span = window.span()
    if window.first > window.last:
        span = f"{window.start}..{window.end} (not listed then)"
    elif window.clipped:
        span += f" (requested {window.start}..{window.end}, clipped to the listing)"
    if n_missing:
        message = f"{symbol}: {n_missing} of {n_expected} {unit} missing in {span} (first: {sample[0]})"
    elif n_expected:
        message = f"{symbol}: all {n_expected} {unit} present in {span}"
    else:
        message = f"{symbol}: no {unit} expected in {span}"
    details = {
        "symbol": symbol,
        "calendar": window.calendar,
        "interval": window.interval,
        "unit": unit,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "window_start": window.first.isoformat(),
        "window_end": window.last.isoformat(),
        "listed_from": _iso_fact(window.listed_from),
        "listed_until": _iso_fact(window.listed_until),
        "expected": n_expected,
        "present": n_present,
        "missing": n_missing,
        "coverage_pct": 100.0 * n_present / n_expected if n_expected else 100.0,
        "first_missing": sample[0] if sample else None,
        "last_missing": _iso(missing[-1:])[0] if n_missing else None,
        "missing_sample": sample,
        "gaps": runs[:MAX_RUNS],
        "gaps_truncated": len(runs) > MAX_RUNS,
        "longest_gap": max(runs, key=lambda r: r["length"]) if runs else None,
        "unexpected": unexpected,
        "message": message,
    }
    return CheckResult(
        "coverage",
        passed=n_missing == 0,
        severity=severity,
        value=n_present / n_expected if n_expected else 1.0,
        details=details,
    )


def coverage_over_range(
    bars: pd.DataFrame,
    *,
    symbol: str,
    start: DateLike,
    end: DateLike,
    interval: str,
    listed_from: DateLike | None = None,
    listed_until: DateLike | None = None,
    calendar: str | None = None,
    overrides: Mapping[str, str] | None = None,
    severity: Severity = "error",
) -> CheckResult:
    """Coverage of one symbol's bars against the exchange calendar over the requested range.

    Expected stamps are the sessions (daily) or regular-hours bar starts (intraday) of
    ``calendar`` (default: the symbol's own, see ``resolve_calendar``) dated in [start, end],
    clipped to [listed_from, listed_until]: listing facts the source reported (IB's head
    timestamp, a delisting date), never the first or last stored bar. So a missing first or last
    session fails. Passes only when every expected stamp has a bar.

    ``value`` is the share of expected stamps present (0..1; 1.0 when none is expected).
    ``details``: expected, present, missing (counts), coverage_pct, first_missing, last_missing,
    missing_sample (the first few ISO stamps), gaps (runs), longest_gap, unexpected (bars inside
    the window on stamps the calendar does not expect), the requested and clipped window, the
    listing facts and a one-line ``message`` ("SPY: 1 of 756 sessions missing in
    2019-01-02..2021-12-31 (first: 2019-01-02)").
    """
    window = _range_window(
        symbol, start=start, end=end, interval=interval, listed_from=listed_from,
        listed_until=listed_until, calendar=calendar, overrides=overrides,
    )
    return _coverage(window, _symbol_stamps(bars, symbol), severity)


def _range_gaps(window: _Window, present: np.ndarray, *, max_gap: int, severity: Severity = "warn") -> CheckResult:
    """``check_gaps`` over the whole window, so missing first and last sessions count as runs."""
    missing = window.expected[~_isin_sorted(window.expected, present)]
    runs = gap_runs(missing, window.expected)
    longest = max(runs, key=lambda r: r["length"]) if runs else None
    info = {
        "n_missing": int(len(missing)),
        "missing": _iso(missing[:MAX_LISTED]),
        "truncated": len(missing) > MAX_LISTED,
        "gaps": runs[:MAX_LISTED],
        "longest": longest,
    }
    value = longest["length"] if longest else 0
    return CheckResult(
        "gaps",
        passed=value <= max_gap,
        severity=severity,
        value=value,
        details={"max_gap": max_gap, "window_start": window.first.isoformat(), "window_end": window.last.isoformat(), "per_symbol": {window.symbol: info}},
    )


# ---- timestamp alignment --------------------------------------------------------------------------

_OK, _NOT_MIDNIGHT, _NOT_SESSION, _OUTSIDE_HOURS, _OFF_GRID, _INCOMPLETE, _OUT_OF_CALENDAR = range(7)
ALIGNMENT_PROBLEMS = {
    _NOT_MIDNIGHT: "not at 00:00 UTC",
    _NOT_SESSION: "not a session",
    _OUTSIDE_HOURS: "outside regular hours",
    _OFF_GRID: "off the bar grid",
    _INCOMPLETE: "bar runs past the session close or into a break",
    _OUT_OF_CALENDAR: "outside the calendar's range",
}


def _calendar_bounds_ns(name: str) -> tuple[int, int]:
    calendar = get_exchange_calendar(name)
    return _day_ns(calendar.first_session.date()), _day_ns(calendar.last_session.date())


def _daily_alignment(stamps: np.ndarray, name: str) -> np.ndarray:
    codes = np.zeros(len(stamps), dtype=np.int8)
    midnight = stamps % _NS_PER_DAY == 0
    codes[~midnight] = _NOT_MIDNIGHT
    lo, hi = _calendar_bounds_ns(name)
    judged = midnight & (stamps >= lo) & (stamps <= hi)
    codes[midnight & ~judged] = _OUT_OF_CALENDAR
    if judged.any():
        days = stamps[judged]
        sessions = np.unique(_ns(expected_sessions(name, pd.Timestamp(int(days.min()), tz="UTC"), pd.Timestamp(int(days.max()), tz="UTC"))))
        codes[judged & ~_isin_sorted(stamps, sessions)] = _NOT_SESSION
    return codes


def _intraday_alignment(stamps: np.ndarray, name: str, interval: str, extended_hours: bool) -> np.ndarray:
    step = pd.Timedelta(interval)
    if step < pd.Timedelta(minutes=1) or step >= pd.Timedelta(days=1) or step % pd.Timedelta(minutes=1):
        raise ValueError(f"interval must be '1d' or a whole number of minutes shorter than a day, not {interval!r}")
    calendar = get_exchange_calendar(name)
    codes = np.zeros(len(stamps), dtype=np.int8)
    if len(stamps) == 0:
        return codes
    utc = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
    local_days = _ns(utc.tz_convert(calendar.tz).tz_localize(None).normalize().tz_localize("UTC"))
    lo, hi = _calendar_bounds_ns(name)
    judged = (local_days >= lo) & (local_days <= hi)
    codes[~judged] = _OUT_OF_CALENDAR
    if not judged.any():
        return codes
    # one session either side: a session's hours may fall on the neighbouring UTC or local date
    first = max(int(local_days[judged].min()) - _NS_PER_DAY, lo)
    last = min(int(local_days[judged].max()) + _NS_PER_DAY, hi)
    first_day, last_day = pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC")
    schedule = session_schedule(name, first_day, last_day)
    if schedule.empty:
        codes[judged] = _NOT_SESSION
        return codes
    session_days = _ns(schedule.index)
    opens = _ns(schedule["open"])
    closes = _ns(schedule["close"])
    position = np.searchsorted(session_days, local_days).clip(max=len(session_days) - 1)
    is_session_day = session_days[position] == local_days
    if extended_hours:
        # any stamp of a session's date on the grid anchored at that session's open
        off_grid = (stamps - opens[position]) % step.value != 0
        codes[judged & ~is_session_day] = _NOT_SESSION
        codes[judged & is_session_day & off_grid] = _OFF_GRID
        return codes
    expected = np.unique(_ns(expected_timestamps(name, first_day, last_day, interval)))
    bad = judged & ~_isin_sorted(stamps, expected)
    if not bad.any():
        return codes
    # the session whose open is the latest at or before the stamp
    latest = np.searchsorted(opens, stamps, "right") - 1
    has_open = latest >= 0
    latest = latest.clip(min=0)
    in_hours = has_open & (stamps < closes[latest])
    breaks_start = _ns(calendar.break_starts.reindex(schedule.index.tz_localize(None)).fillna(pd.Timestamp(0, tz="UTC")))
    breaks_end = _ns(calendar.break_ends.reindex(schedule.index.tz_localize(None)).fillna(pd.Timestamp(0, tz="UTC")))
    in_break = in_hours & (stamps >= breaks_start[latest]) & (stamps < breaks_end[latest])
    on_grid = (stamps - opens[latest]) % step.value == 0
    codes[bad & ~in_hours & ~is_session_day] = _NOT_SESSION
    codes[bad & ~in_hours & is_session_day] = _OUTSIDE_HOURS
    codes[bad & in_break] = _OUTSIDE_HOURS
    codes[bad & in_hours & ~in_break & ~on_grid] = _OFF_GRID
    codes[bad & in_hours & ~in_break & on_grid] = _INCOMPLETE
    return codes


def check_alignment(
    bars: pd.DataFrame,
    *,
    interval: str = "1d",
    calendar: str | None = None,
    extended_hours: bool = False,
    overrides: Mapping[str, str] | None = None,
    severity: Severity = "error",
) -> CheckResult:
    """Every stamp sits where ``interval`` puts bars on the symbol's calendar.

    Daily: 00:00 UTC of a session date. Intraday: a complete bar of the session's grid (anchored
    at the open, see ``expected_bar_starts``) inside regular hours; with ``extended_hours`` any
    stamp of a session's date on that grid (pre- and post-market included). ``calendar`` applies
    to every symbol; ``None`` resolves each symbol's own.

    ``value`` is the number of misaligned bars. ``details``: misaligned, by_problem (counts),
    examples (the first offending stamps: symbol, ts, problem), per_symbol (calendar, bars,
    misaligned, first offenders) and a ``message``.
    """
    daily = _is_daily(interval)
    per_symbol: dict[str, dict[str, Any]] = {}
    examples: list[dict[str, str]] = []
    by_problem: dict[str, int] = {}
    messages: list[str] = []
    total = 0
    for symbol, _, stamps in _per_symbol(bars):
        name = calendar if calendar is not None else resolve_calendar(symbol, overrides)
        codes = _daily_alignment(stamps, name) if daily else _intraday_alignment(stamps, name, interval, extended_hours)
        bad = np.flatnonzero(codes != _OK)
        total += len(bad)
        first = [
            {"ts": ts, "problem": ALIGNMENT_PROBLEMS[int(code)]}
            for ts, code in zip(_iso(stamps[bad[:SAMPLE]]), codes[bad[:SAMPLE]])
        ]
        for code, count in zip(*np.unique(codes[bad], return_counts=True)):
            label = ALIGNMENT_PROBLEMS[int(code)]
            by_problem[label] = by_problem.get(label, 0) + int(count)
        per_symbol[symbol] = {"calendar": name, "bars": int(len(stamps)), "misaligned": int(len(bad)), "first": first}
        examples.extend({"symbol": symbol, **item} for item in first)
        if len(bad):
            listed = ", ".join(f"{item['ts']} {item['problem']}" for item in first[:3])
            messages.append(f"{symbol}: {len(bad)} of {len(stamps)} bars off the {interval} grid of {name} (first: {listed})")
    return CheckResult(
        "alignment",
        passed=total == 0,
        severity=severity,
        value=total,
        details={
            "interval": interval,
            "extended_hours": extended_hours,
            "misaligned": total,
            "by_problem": by_problem,
            "examples": examples[:20],
            "per_symbol": per_symbol,
            "message": "; ".join(messages[:5]) if messages else f"all bars on the {interval} grid",
        },
    )


# ---- running them ---------------------------------------------------------------------------------


def expected_for_bars(
    bars: pd.DataFrame,
    calendar: str | None = "XNYS",
    *,
    interval: str = "1d",
    as_of: pd.Timestamp | str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, pd.DatetimeIndex]:
    """Expected stamps per symbol, from the earliest bar to ``as_of`` (default: the latest bar).

    ``calendar`` applies to every symbol; ``None`` resolves each symbol's own (crypto -> 24/7).
    Symbols on the same calendar share one index.
    """
    first = bars["ts"].min()
    last = pd.Timestamp(_as_of(bars, as_of), tz="UTC")
    by_calendar: dict[str, pd.DatetimeIndex] = {}
    out: dict[str, pd.DatetimeIndex] = {}
    for symbol in sorted(bars["symbol"].astype(str).unique()):
        name = calendar if calendar is not None else resolve_calendar(symbol, overrides)
        if name not in by_calendar:
            by_calendar[name] = expected_timestamps(name, first, last, interval)
        out[symbol] = by_calendar[name]
    return out


def run_all_checks(
    bars: pd.DataFrame,
    calendar: str | None = "XNYS",
    *,
    interval: str = "1d",
    as_of: pd.Timestamp | str | None = None,
    min_coverage: float = 0.99,
    max_gap: int = 0,
    max_age: int = 1,
    max_repeated_closes: int = 5,
    overrides: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """All checks: monotonic_unique, ohlc_sanity, coverage, gaps, stale.

    ``calendar=None`` picks each symbol's calendar (crypto -> 24/7); ``interval`` is "1d" or
    "1min" (regular-hours minutes). Staleness is measured against ``as_of`` (default: the latest
    bar in the frame, so a symbol whose feed stopped earlier than the others is flagged).
    """
    results = [check_timestamps(bars), check_ohlc(bars)]
    if bars.empty:
        empty = {"empty": True}
        return results + [
            CheckResult("coverage", False, "warn", None, empty),
            CheckResult("gaps", True, "warn", 0, empty),
            CheckResult("stale", False, "warn", None, empty),
        ]
    expected = expected_for_bars(bars, calendar, interval=interval, as_of=as_of, overrides=overrides)
    results.append(check_coverage(bars, expected, min_coverage=min_coverage))
    results.append(check_gaps(bars, expected, max_gap=max_gap))
    results.append(check_stale(bars, expected, as_of=as_of, max_age=max_age, max_repeated_closes=max_repeated_closes))
    return results


_RUN_OPTIONS = {"interval", "as_of", "min_coverage", "max_gap", "max_age", "max_repeated_closes", "overrides"}


def _range_checks(
    bars: pd.DataFrame,
    symbol: str,
    calendar: str | None,
    start: DateLike,
    end: DateLike,
    listing: tuple[DateLike | None, DateLike | None],
    options: Mapping[str, Any],
) -> list[CheckResult]:
    interval = options.get("interval", "1d")
    window = _range_window(
        symbol, start=start, end=end, interval=interval, listed_from=listing[0], listed_until=listing[1],
        calendar=calendar, overrides=options.get("overrides"),
    )
    present = _symbol_stamps(bars, symbol)
    results = [
        check_timestamps(bars),
        check_ohlc(bars),
        _coverage(window, present, "error"),
        _range_gaps(window, present, max_gap=options.get("max_gap", 0)),
    ]
    if len(present) == 0:
        nothing_due = len(window.expected) == 0
        details = {"empty": True, "expected": int(len(window.expected)), "message": f"{symbol}: no bars in {window.span()}"}
        results.append(CheckResult("stale", nothing_due, "warn", None, details))
        return results
    as_of = options.get("as_of")
    # by default judged at the end of the window: the requested end, or the delisting
    cutoff = _utc(as_of) if as_of is not None else pd.Timestamp(window.last, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    expected = pd.DatetimeIndex(window.expected.astype("datetime64[ns]")).tz_localize("UTC")
    results.append(
        check_stale(
            bars.loc[(bars["symbol"].astype(str) == symbol).to_numpy()],
            {symbol: expected},
            as_of=cutoff,
            max_age=options.get("max_age", 1),
            max_repeated_closes=options.get("max_repeated_closes", 5),
        )
    )
    return results


def run_checks_by_symbol(
    bars: pd.DataFrame,
    calendar: str | None = "XNYS",
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    symbols: Iterable[str] | None = None,
    listed: Mapping[str, tuple[DateLike | None, DateLike | None]] | None = None,
    alignment: bool | None = None,
    actions: pd.DataFrame | None = None,
    **options: Any,
) -> dict[str, list[CheckResult]]:
    """``run_all_checks`` on each symbol's bars, for per-instrument pass/fail.

    Without ``start``/``end``: coverage and gaps between each symbol's first and last bar, and,
    without an explicit ``as_of``, each symbol judged stale against the latest bar of the frame.

    With the requested range ``start``..``end`` (dates): coverage is ``coverage_over_range`` (every
    expected session of the range must have a bar; ``min_coverage`` does not apply), gaps are
    counted over the whole range, and staleness is judged at the end of the range (or ``as_of``).
    ``listed`` maps symbols to the (listed_from, listed_until) facts their source reported;
    ``symbols`` names the requested symbols, so one without any bar still gets results (a
    coverage failure when sessions were expected). ``alignment`` adds ``check_alignment``
    (default: on with a range, off without). ``actions`` (a corporate-actions frame) adds
    ``check_unrecorded_splits``.
    """
    if (start is None) != (end is None):
        raise ValueError("run_checks_by_symbol: give both start and end (the requested range), or neither")
    unknown = sorted(set(options) - _RUN_OPTIONS)
    if unknown:
        raise TypeError(f"run_checks_by_symbol: unknown options {unknown}; known: {sorted(_RUN_OPTIONS)}")
    ranged = start is not None
    groups = {str(symbol): group for symbol, group in bars.groupby("symbol", sort=True)} if len(bars) else {}
    names = sorted(set(groups) | {str(s) for s in (symbols or ())})
    empty = bars.iloc[0:0]
    if not ranged:
        options.setdefault("as_of", bars["ts"].max() if len(bars) else None)
    out: dict[str, list[CheckResult]] = {}
    for symbol in names:
        group = groups.get(symbol, empty)
        if ranged:
            listing = (listed or {}).get(symbol, (None, None))
            out[symbol] = _range_checks(group, symbol, calendar, start, end, listing, options)
        else:
            out[symbol] = run_all_checks(group, calendar, **options)
        if alignment if alignment is not None else ranged:
            out[symbol].append(
                check_alignment(group, interval=options.get("interval", "1d"), calendar=calendar, overrides=options.get("overrides"))
            )
        if actions is not None:
            from tt_platform.data.split_check import check_unrecorded_splits

            out[symbol].append(check_unrecorded_splits(group, actions, symbol=symbol, calendar=calendar))
    return out


def results_frame(
    results: Mapping[str, list[CheckResult]] | list[CheckResult], partition_key: str = "", *, adjusted: bool = False
) -> pd.DataFrame:
    """Rows ``check_name, instrument, partition_key, adjusted, passed, severity, value, details``.

    A plain list is one row per check over the whole frame (instrument ``"*"``); a mapping from
    ``run_checks_by_symbol`` gives one row per check and instrument. ``adjusted`` names the series
    the checks ran on (raw bars: false), part of the stored key.
    """
    by_instrument = {"*": results} if isinstance(results, list) else results
    rows = [
        {
            "check_name": r.name,
            "instrument": instrument,
            "partition_key": partition_key,
            "adjusted": bool(adjusted),
            "passed": bool(r.passed),
            "severity": r.severity,
            "value": None if r.value is None else float(r.value),
            "details": r.details,
        }
        for instrument, checks in by_instrument.items()
        for r in checks
    ]
    columns = ["check_name", "instrument", "partition_key", "adjusted", "passed", "severity", "value", "details"]
    return pd.DataFrame(rows, columns=columns)
