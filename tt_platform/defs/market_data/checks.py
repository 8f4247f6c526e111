"""Data-quality checks on the bars of a run's months, as Dagster asset checks and
tt_quality_results rows (keyed by the series checked, raw or adjusted).

Every check runs per symbol over the run's whole requested range, clipped to the last completed
session. Blocking checks stop features and training when they fail: coverage (counted against the
exchange calendar, so a missing first or last session fails), timestamp order, timestamp
alignment for the interval, OHLC sanity and unrecorded splits. Gaps and staleness only warn.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import DataConfig
from tt_platform.data.calendars import expected_timestamps, resolve_calendar
from tt_platform.data.quality import (
    CheckResult,
    check_alignment,
    check_gaps,
    check_ohlc,
    check_stale,
    check_timestamps,
    coverage_over_range,
    results_frame,
)
from tt_platform.data.split_check import check_unrecorded_splits
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.store.corporate_actions import read_corporate_actions
from tt_platform.store.prices import read_bars
from tt_platform.store.quality import record_quality_results

CHECKS = {
    "coverage": "Every expected session (exchange calendar, requested range, since listing) has a bar.",
    "monotonic_unique": "Timestamps strictly increasing, no duplicates.",
    "ohlc_sanity": "low <= open, close <= high; volume >= 0.",
    "alignment": "Daily bars on session dates; intraday bars on the bar grid inside the session.",
    "unrecorded_splits": "No one-day move that looks like a split without a recorded corporate action.",
    "gaps": "Runs of missing sessions.",
    "stale": "Last bar recent enough; no long runs of identical closes.",
}
BLOCKING = {"coverage", "monotonic_unique", "ohlc_sanity", "alignment", "unrecorded_splits"}
# what each check's worst_value counts, and the bound a passing symbol keeps (the UI shows both)
UNITS = {
    "coverage": ("fraction of expected sessions present", ">= 1.0 (every session)"),
    "monotonic_unique": ("duplicate or out-of-order timestamps", "0"),
    "ohlc_sanity": ("bars breaking low <= open, close <= high or volume >= 0", "0"),
    "alignment": ("bars off the session grid of the interval", "0"),
    "unrecorded_splits": ("one-bar moves of |log return| > 0.3 with a volume jump and no recorded split", "0"),
    "gaps": ("longest run of missing sessions", "0"),
    "stale": ("sessions between the last bar and the end of the range", "0, with at most 5 identical closes "
              "in a row"),
}

BAR_CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset="bars",
                      # the UI shows the description, not the spec's metadata: say the measure there too
                      description=("" if name in BLOCKING else "Warning only. ") + description
                      + f" Measures {UNITS[name][0]}; passes at {UNITS[name][1]}.",
                      blocking=name in BLOCKING,
                      metadata={"unit": UNITS[name][0], "threshold": UNITS[name][1]})
    for name, description in CHECKS.items()
]

_MAX_LISTED = 20


def _symbol_checks(
    symbol: str,
    bars: pd.DataFrame,
    actions: pd.DataFrame,
    data: DataConfig,
    start: date,
    end: date,
    life: tuple[date | None, date | None],
) -> list[CheckResult]:
    listed_from, listed_until = life
    coverage = coverage_over_range(
        bars, symbol=symbol, start=start, end=end, interval=data.interval, listed_from=listed_from, listed_until=listed_until
    )
    if bars.empty:
        # nothing stored: coverage says whether anything was expected; the rest has nothing to judge
        empty = {"empty": True}
        return [coverage] + [
            CheckResult(name, True, "error" if name in BLOCKING else "warn", 0, empty) for name in CHECKS if name != "coverage"
        ]
    results = [
        coverage,
        check_timestamps(bars),
        check_ohlc(bars),
        check_alignment(bars, interval=data.interval),
        check_unrecorded_splits(bars, actions, symbol=symbol),
    ]
    lo = max(start, listed_from) if listed_from else start
    hi = min(end, listed_until) if listed_until else end
    if hi < lo:
        results += [CheckResult("gaps", True, "warn", 0, {"empty": True}), CheckResult("stale", True, "warn", None, {"empty": True})]
        return results
    expected = expected_timestamps(resolve_calendar(symbol), day_start(lo), day_end(hi), data.interval)
    results.append(check_gaps(bars, {symbol: expected}))
    # judged at the end of the range: even one missing last session shows
    results.append(check_stale(bars, {symbol: expected}, as_of=day_end(hi), max_age=0))
    return results


def _describe(name: str, symbol: str, result: CheckResult) -> str:
    details = result.details or {}
    message = details.get("message")
    if message:
        return str(message)
    if name == "coverage" and "missing" in details:
        sample = details.get("missing_sample") or details.get("first_missing") or ""
        return f"{symbol}: {details['missing']} of {details.get('expected', '?')} sessions missing (e.g. {sample})"
    return f"{symbol}: value {result.value}"


def _aggregate(name: str, by_symbol: dict[str, list[CheckResult]]) -> dg.AssetCheckResult:
    results = {symbol: next(r for r in checks if r.name == name) for symbol, checks in by_symbol.items()}
    failed = sorted(s for s, r in results.items() if not r.passed)
    values = [float(r.value) for r in results.values() if r.value is not None]
    unit, threshold = UNITS[name]
    metadata: dict[str, object] = {"symbols": len(results), "failed_symbols": ", ".join(failed),
                                   "unit": unit, "threshold": threshold}
    if failed:
        metadata["problems"] = dg.MetadataValue.md("\n".join(f"- {_describe(name, s, results[s])}" for s in failed[:_MAX_LISTED]))
    if values:
        metadata["worst_value"] = min(values) if name == "coverage" else max(values)
    return dg.AssetCheckResult(
        check_name=name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if name in BLOCKING else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=_describe(name, failed[0], results[failed[0]]) if failed else None,
    )


def bar_check_results(
    engine: Engine,
    data: DataConfig,
    symbols: list[str],
    start: date,
    end: date,
    life: dict[str, tuple[date | None, date | None]],
    partition_label: str,
) -> Iterator[dg.AssetCheckResult]:
    bars = read_bars(engine, symbols, day_start(start), day_end(end), interval=data.interval, adjusted=data.adjusted)
    actions = read_corporate_actions(engine, symbols)
    by_symbol: dict[str, list[CheckResult]] = {}
    grouped = dict(tuple(bars.groupby("symbol", sort=True))) if len(bars) else {}
    for symbol in symbols:
        mine = grouped.get(symbol, bars.iloc[0:0]).reset_index(drop=True)
        own_actions = actions[actions["symbol"] == symbol] if len(actions) else actions
        by_symbol[symbol] = _symbol_checks(symbol, mine, own_actions, data, start, end, life.get(symbol, (None, None)))
    record_quality_results(engine, results_frame(by_symbol, partition_key=partition_label, adjusted=data.adjusted))
    for name in CHECKS:
        yield _aggregate(name, by_symbol)
