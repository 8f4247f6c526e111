"""Benchmark results and the table ``make bench`` prints.

Each benchmark module in ``tt_platform.bench`` exposes ``run(quick: bool) -> list[BenchResult]``
and measures every comparison side by side in the same run (ours vs the baseline), so the ratio
is meaningful on whatever machine runs it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchResult:
    name: str
    value: float
    unit: str
    target: str = ""          # human-readable target, e.g. ">= 10x to_sql" or "<= 5 s"
    baseline: float | None = None
    ratio: float | None = None  # value / baseline (or baseline / value for times), > 1 is better
    passed: bool | None = None  # whether the target is met, when it is checkable

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("name")
        return data


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


@contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the named loggers while a benchmark runs: what they log is not what is measured."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def format_table(results: list[BenchResult]) -> str:
    headers = ["benchmark", "value", "unit", "baseline", "ratio", "target", "ok"]
    rows = [
        [
            r.name,
            f"{r.value:,.3f}" if r.value < 1000 else f"{r.value:,.0f}",
            r.unit,
            "" if r.baseline is None else (f"{r.baseline:,.3f}" if r.baseline < 1000 else f"{r.baseline:,.0f}"),
            "" if r.ratio is None else f"{r.ratio:,.2f}x",
            r.target,
            {None: "", True: "yes", False: "NO"}[r.passed],
        ]
        for r in results
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def write_json(results: list[BenchResult], path: Path) -> None:
    path.write_text(json.dumps({r.name: r.as_json() for r in results}, indent=2, sort_keys=True))
