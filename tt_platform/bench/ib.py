"""Benchmark: a 50-symbol x 1-year daily backfill through the IB Gateway emulator, pacing on.

Both runs use real ib_insync over loopback against the emulator, whose clock runs ``SCALE`` times
faster than real time so that IB's 10-minute pacing window passes in 3 seconds:

* default chunks (one request per symbol-year, IB's limit): wall time, requests, completeness;
* monthly chunks (600 requests, so the 60-requests-per-10-minutes rule binds): ours (paced
  client) side by side with the baseline (the same requests without pacer or retries), reporting
  requests per simulated 10 minutes, simulated duration against the rule's lower bound, and the
  share of bars each one got.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from tt_platform.bench.harness import BenchResult, stopwatch
from tt_platform.ib.backfill import CompletedChunk, backfill
from tt_platform.ib.chunking import ChunkUnit
from tt_platform.ib.client import IBMarketData
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FrameBarSource, GatewayEmulator, serve_in_thread
from tt_platform.ib.pacing import (
    BackoffPolicy,
    HistoricalPacer,
    PacingEscalation,
    PacingRules,
)

# 200x: 10 simulated minutes pass in 3 real seconds, while one request (about 10 ms of real
# work on loopback) costs about 2 simulated seconds, so the 60-per-10-minutes rule really binds.
# The client's margin (25 simulated s = 125 ms real) absorbs most scheduling jitter of a busy
# machine; a rare late packet still costs one error 162, which the pacer then backs off from.
SCALE = 200.0
START, END = "2021-01-01", "2022-01-01"
WINDOW = 600.0


@dataclass
class RunStats:
    wall_seconds: float
    requests: int
    bars: int
    expected_bars: int
    chunks_ok: int
    chunks_total: int
    violations: int
    max_per_window: int
    sim_seconds: float

    @property
    def completeness(self) -> float:
        return 100.0 * self.bars / self.expected_bars if self.expected_bars else 0.0

    @property
    def mean_per_window(self) -> float:
        return self.requests * WINDOW / self.sim_seconds if self.sim_seconds > 0 else float(self.requests)


@contextlib.contextmanager
def _quiet_ib_logs() -> Iterator[None]:
    # every refused request is logged at ERROR by ib_insync; the numbers are the point here
    loggers = [logging.getLogger(n) for n in ("ib_insync", "tt_platform.ib")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _max_in_window(times: list[float]) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - WINDOW:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _run(frame: pd.DataFrame, symbols: list[str], unit: ChunkUnit | None, paced: bool) -> RunStats:
    emulator = GatewayEmulator(FrameBarSource(frame), clock=ScaledClock(SCALE))
    if paced:
        pacer = HistoricalPacer(ScaledClock(SCALE), PacingRules(margin_seconds=25.0), BackoffPolicy(30.0, 2.0, 600.0))
    else:  # the baseline: no pacing, and a refusal is final
        pacer = HistoricalPacer(ScaledClock(SCALE), PacingRules.unlimited(), max_consecutive_violations=0)
    got: list[CompletedChunk] = []
    chunks_total = 0
    with serve_in_thread(emulator) as gateway, _quiet_ib_logs():
        client = IBMarketData("127.0.0.1", gateway.port, 1, pacer=pacer, request_timeout=30.0)
        with stopwatch() as elapsed:
            if paced:
                report = backfill(client, symbols, START, END, "1d", on_chunk=got.append, chunk_unit=unit)
                chunks_total = report.chunks_done + len(report.refused)
            else:
                client.connect()
                for symbol in symbols:
                    for chunk in client.plan(symbol, START, END, "1d", chunk_unit=unit):
                        chunks_total += 1
                        with contextlib.suppress(PacingEscalation):
                            result = client.historical_chunk(symbol, chunk, "1d")
                            if not result.refused:
                                got.append(CompletedChunk(symbol, "1d", False, chunk, result.bars))
        client.disconnect()
        log = list(emulator.history_log)
    accepted = [r.at for r in log if r.outcome == "ok"]
    return RunStats(
        wall_seconds=elapsed(),
        requests=len(log),
        bars=sum(len(c.bars) for c in got),
        expected_bars=int(frame["symbol"].isin(symbols).sum()),
        chunks_ok=len(got),
        chunks_total=chunks_total,
        violations=sum(r.outcome == "pacing" for r in log),
        max_per_window=_max_in_window(accepted),
        sim_seconds=(max(r.at for r in log) - min(r.at for r in log)) if log else 0.0,
    )


def run(quick: bool = False) -> list[BenchResult]:
    from tt_platform.data.synthetic import generate_bars

    n = 5 if quick else 50
    symbols = [f"SYM{i:02d}" for i in range(n)]
    frame = generate_bars(symbols, START, "2021-12-31", seed=2021)
    tag = f"{n}x1y"

    yearly = _run(frame, symbols, None, paced=True)
    monthly = _run(frame, symbols, "month", paced=True)
    naive = _run(frame, symbols, "month", paced=False)
    # lower bound of the simulated span under "60 per 10 minutes": request 60k+1 at k windows
    bound = math.floor((monthly.chunks_total - 1) / 60) * WINDOW
    return [
        BenchResult(
            f"ib.backfill_{tag}_daily.wall_s",
            yearly.wall_seconds,
            "s",
            target="< 60 s",
            passed=yearly.wall_seconds < 60,
        ),
        BenchResult(
            f"ib.backfill_{tag}_daily.requests",
            yearly.requests,
            "requests",
            target=f"= {n} (1 per symbol-year)",
            passed=yearly.requests == n,
        ),
        BenchResult(
            f"ib.backfill_{tag}_daily.completeness",
            yearly.completeness,
            "% bars",
            target="= 100 %",
            passed=yearly.completeness == 100.0,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.wall_s",
            monthly.wall_seconds,
            "s",
            target="< 60 s",
            baseline=naive.wall_seconds,
            ratio=naive.wall_seconds / monthly.wall_seconds,
            passed=monthly.wall_seconds < 60,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.requests",
            monthly.requests,
            "requests",
            target=f">= {12 * n}",
            baseline=naive.requests,
            passed=monthly.requests >= 12 * n,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.max_requests_per_sim_10min",
            monthly.max_per_window,
            "requests",
            target="<= 60 (IB rule)",
            baseline=naive.max_per_window,
            passed=monthly.max_per_window <= 60,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.mean_requests_per_sim_10min",
            monthly.mean_per_window,
            "requests",
            target="close to 60",
            baseline=naive.mean_per_window,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.sim_minutes",
            monthly.sim_seconds / 60,
            "sim min",
            target="near the pacing lower bound",
            baseline=bound / 60,
            ratio=(bound / monthly.sim_seconds) if monthly.sim_seconds and bound else None,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.pacing_violations",
            monthly.violations,
            "errors 162",
            target="< 1 % of requests",
            baseline=naive.violations,
            passed=monthly.violations < 0.01 * monthly.requests,
        ),
        BenchResult(
            f"ib.backfill_{tag}_monthly.completeness",
            monthly.completeness,
            "% bars",
            target="= 100 %",
            baseline=naive.completeness,
            ratio=monthly.completeness / naive.completeness if naive.completeness else None,
            passed=monthly.completeness == 100.0,
        ),
    ]


if __name__ == "__main__":
    import sys

    from tt_platform.bench.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
