"""Data-quality checks on freshly ingested bars, as Dagster asset checks and tt_quality_results rows.

Coverage, timestamp order and OHLC sanity block downstream assets when they fail: features must
never be computed from holes or impossible bars. Gaps and staleness warn.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig
from tt_platform.data.quality import CheckResult, results_frame, run_checks_by_symbol
from tt_platform.data.calendars import expected_timestamps, resolve_calendar
from tt_platform.defs.market_data.partitions import group_by_window
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.store.prices import read_bars
from tt_platform.store.quality import record_quality_results

CHECKS = {
    "coverage": "Share of expected sessions with a bar (KPI: >= 99%).",
    "monotonic_unique": "Timestamps strictly increasing, no duplicates.",
    "ohlc_sanity": "low <= open, close <= high; volume >= 0.",
    "gaps": "Runs of missing sessions.",
    "stale": "Last bar recent enough; no long runs of identical closes.",
}
BLOCKING = {"coverage", "monotonic_unique", "ohlc_sanity"}

BAR_CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset="bars", description=description, blocking=name in BLOCKING)
    for name, description in CHECKS.items()
]


def _aggregate(name: str, by_symbol: dict[str, list[CheckResult]]) -> dg.AssetCheckResult:
    results = {symbol: next(r for r in checks if r.name == name) for symbol, checks in by_symbol.items()}
    failed = sorted(s for s, r in results.items() if not r.passed)
    severity = "error" if any(r.severity == "error" for s, r in results.items() if s in failed) else "warn"
    values = [float(r.value) for r in results.values() if r.value is not None]
    metadata: dict[str, object] = {"symbols": len(results), "failed_symbols": ", ".join(failed)}
    if values:
        metadata["worst_value"] = min(values) if name == "coverage" else max(values)
    return dg.AssetCheckResult(
        check_name=name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _nothing_stored(symbol: str, start: date, end: date, interval: str) -> list[CheckResult]:
    """Checks for a symbol without bars in the window: fine on days the exchange was shut (a
    holiday partition), a coverage failure when sessions were expected."""
    expected = expected_timestamps(resolve_calendar(symbol), day_start(start), day_end(end), interval)
    covered = len(expected) == 0
    return [
        CheckResult(name, covered or name != "coverage", "error", 1.0 if covered else 0.0, {"empty": True, "expected": len(expected)})
        for name in CHECKS
    ]


def bar_check_results(engine: Engine, config: RunConfig, windows: dict[str, tuple[date, date]]) -> Iterator[dg.AssetCheckResult]:
    by_symbol: dict[str, list[CheckResult]] = {}
    for (start, end), symbols in group_by_window(windows).items():
        bars = read_bars(engine, symbols, day_start(start), day_end(end), interval=config.data.interval, adjusted=config.data.adjusted)
        # staleness is judged at the end of the window's last day: a window asks for every
        # session up to it, so even one missing last session shows (max_age=0)
        checked = run_checks_by_symbol(bars, calendar=None, interval=config.data.interval, as_of=day_end(end), max_age=0)
        for symbol in symbols:
            if symbol not in checked:
                checked[symbol] = _nothing_stored(symbol, start, end, config.data.interval)
        record_quality_results(engine, results_frame(checked, partition_key=f"{start}..{end}"))
        by_symbol.update(checked)
    for name in CHECKS:
        yield _aggregate(name, by_symbol)
