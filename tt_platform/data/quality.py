"""Data-quality checks on canonical bar frames (pure functions, no I/O).

Each check returns a ``CheckResult``; the caller decides what to do with failures (log, block
an asset, alert). Checks that compare against a calendar take the *expected* timestamps
(``expected``: one index for every symbol, or a mapping symbol -> index), built by
``tt_platform.data.calendars``; ``run_all_checks`` does that for you.

Coverage and gaps are measured between each symbol's first and last bar: a listing or a
delisting is not a gap (staleness covers a feed that stopped). Bars on timestamps the calendar
does not expect (weekend bars, pre- and post-market minutes) are counted as ``unexpected`` and
add no coverage. ``details`` hold plain JSON types so they can be stored as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tt_platform.data.calendars import expected_timestamps, resolve_calendar

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


def run_checks_by_symbol(bars: pd.DataFrame, calendar: str | None = "XNYS", **options: Any) -> dict[str, list[CheckResult]]:
    """``run_all_checks`` on each symbol's bars, for per-instrument pass/fail.

    Without an explicit ``as_of`` each symbol is judged against the latest bar of the whole frame.
    """
    options.setdefault("as_of", bars["ts"].max() if len(bars) else None)
    return {str(symbol): run_all_checks(group, calendar, **options) for symbol, group in bars.groupby("symbol", sort=True)}


def results_frame(results: Mapping[str, list[CheckResult]] | list[CheckResult], partition_key: str = "") -> pd.DataFrame:
    """Rows ``check_name, instrument, partition_key, passed, severity, value, details`` for storage.

    A plain list is one row per check over the whole frame (instrument ``"*"``); a mapping from
    ``run_checks_by_symbol`` gives one row per check and instrument.
    """
    by_instrument = {"*": results} if isinstance(results, list) else results
    rows = [
        {
            "check_name": r.name,
            "instrument": instrument,
            "partition_key": partition_key,
            "passed": bool(r.passed),
            "severity": r.severity,
            "value": None if r.value is None else float(r.value),
            "details": r.details,
        }
        for instrument, checks in by_instrument.items()
        for r in checks
    ]
    return pd.DataFrame(rows, columns=["check_name", "instrument", "partition_key", "passed", "severity", "value", "details"])
