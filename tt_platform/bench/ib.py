"""Benchmark: IB ingestion through the bundled gateway emulator, with IB's pacing rules enforced.

Every run is real ib_insync over loopback against the emulator (``EmulatedIBBarSource``), the
emulator enforcing IB's rules (small-bar pacing, 50 simultaneous open historical requests):

* daily backfill, 50 symbols x 20 years: requests, wall time, bars and completeness;
* nightly update, one new session for 500 symbols: wall time (target 60 s), requests, the most
  requests open at once at the gateway;
* 30-second bars, where IB's small-bar rules do bind: requests per simulated 10 minutes and
  pacing violations, on an emulator clock running ``SCALE`` times faster than real time.

The old behaviour is measured side by side where it means something: it applied the 60-requests-
per-10-minutes rule (and the other small-bar rules) to daily bars, one request at a time, with
one request per symbol-year. Its duration is the simulated time its pacer waits for the same
requests (a lower bound: answers are taken as instant), computed on a manual clock.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import date

import pandas as pd

from tt_platform.bench.harness import BenchResult, quiet_loggers, stopwatch
from tt_platform.data.sources.base import BarRequest, SymbolBars
from tt_platform.data.sources.emulator import EmulatedIBBarSource, EmulatorSourceConfig
from tt_platform.data.sources.ib import IBSourceConfig
from tt_platform.ib.chunking import plan_chunks
from tt_platform.ib.clock import ManualClock, ScaledClock
from tt_platform.ib.pacing import HistoricalPacer, PacingRules, RequestKey

BACKFILL_START, BACKFILL_END = date(2005, 1, 1), date(2024, 12, 31)
NIGHTLY_DAY = date(2024, 12, 31)
# 30 s bars: 200x makes IB's 10-minute window 3 real seconds
SCALE = 200.0
WINDOW = 600.0


@dataclass
class FetchStats:
    wall_seconds: float
    requests: int
    bars: int
    failed: int
    pacing_violations: int
    client_max_open: int
    gateway_max_open: int
    gateway_refusals: int


# every refused request is logged at ERROR by ib_insync; the numbers are the point here
IB_LOGGERS = ("ib_insync", "tt_platform.ib", "tt_platform.data.sources")


def _fetch(requests: list[BarRequest], config: EmulatorSourceConfig, client: IBSourceConfig) -> FetchStats:
    got: list[SymbolBars] = []
    with EmulatedIBBarSource(config, client=client) as source, quiet_loggers(*IB_LOGGERS):
        with stopwatch() as elapsed:
            report = source.fetch(requests, interval="1d", adjusted=False, on_bars=got.append)
        wall = elapsed()
        stats = source.emulator.stats
        refusals = sum(1 for r in source.emulator.history_log if r.outcome in ("pacing", "too_many_open"))
    return FetchStats(
        wall_seconds=wall,
        requests=report.requests,
        bars=sum(len(g.bars) for g in got),
        failed=len(report.failed),
        pacing_violations=report.pacing_violations,
        client_max_open=report.max_open_requests,
        gateway_max_open=stats.max_open_historical,
        gateway_refusals=refusals,
    )


def old_pacing_seconds(symbols: list[str], start: date, end: date) -> tuple[int, float]:
    """Requests and simulated seconds of the old behaviour: yearly daily requests, one at a time,
    the small-bar rules (with the client's 1 s margin) applied to daily bars."""
    pacer = HistoricalPacer(ManualClock(), PacingRules.every_bar_size(margin_seconds=1.0))
    chunks = plan_chunks(start, pd.Timestamp(end) + pd.Timedelta(days=1), "1d", years_per_request=1, pad=False)
    keys = [
        RequestKey(str(i), "SMART", "TRADES", "1 day", chunk.duration, chunk.request_end)
        for i, _ in enumerate(symbols)
        for chunk in chunks
    ]

    async def one_at_a_time() -> None:
        for key in keys:
            await pacer.acquire(key)  # the manual clock jumps over every wait

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(one_at_a_time())
    finally:
        loop.close()
    return len(keys), pacer.clock.now()


def _max_in_window(times: list[float]) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - WINDOW:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _small_bars(n_symbols: int) -> tuple[int, int, int, float, float]:
    """30 s bars over two days for ``n_symbols``: the small-bar rules bind (6 requests per day each)."""
    from tt_platform.ib.backfill import backfill
    from tt_platform.ib.client import IBMarketData
    from tt_platform.ib.emulator import FrameBarSource, GatewayEmulator, serve_in_thread

    frames = []
    for day in pd.bdate_range("2021-03-01", "2021-03-03", inclusive="left", tz="UTC"):
        open_, close = day + pd.Timedelta(hours=13.5), day + pd.Timedelta(hours=20)
        stamps = pd.date_range(open_, close, freq="30s", inclusive="left")
        for i in range(n_symbols):
            frames.append(pd.DataFrame({"symbol": f"T{i:02d}", "ts": stamps, "open": 10.0 + i, "high": 10.1 + i,
                                        "low": 9.9 + i, "close": 10.0 + i, "volume": 100.0}))
    frame = pd.concat(frames, ignore_index=True)
    emulator = GatewayEmulator(FrameBarSource({"30s": frame}), clock=ScaledClock(SCALE))
    # the client keeps 25 simulated seconds (125 ms real) on top of each rule against scheduling jitter
    pacer = HistoricalPacer(ScaledClock(SCALE), PacingRules(margin_seconds=25.0))
    got = []
    with serve_in_thread(emulator) as gateway, quiet_loggers(*IB_LOGGERS):
        client = IBMarketData("127.0.0.1", gateway.port, 1, pacer=pacer, request_timeout=30.0)
        symbols = [f"T{i:02d}" for i in range(n_symbols)]
        report = backfill(client, symbols, "2021-03-01", "2021-03-03", "30s", on_chunk=got.append)
        client.disconnect()
        log = list(emulator.history_log)
    accepted = [r.at for r in log if r.outcome not in ("pacing", "too_many_open")]
    sim = max(r.at for r in log) - min(r.at for r in log)
    bars = sum(len(c.bars) for c in got)
    return len(log), report.pacing_violations, _max_in_window(accepted), sim, bars / len(frame) * 100


def _ratio(baseline: float, value: float) -> float | None:
    return baseline / value if baseline > 0 and value > 0 else None


def run(quick: bool = False) -> list[BenchResult]:
    from tt_platform.data.synthetic import generate_bars

    n_backfill, n_nightly, n_small = (5, 50, 3) if quick else (50, 500, 10)
    config = EmulatorSourceConfig(seed=2024, last_session=NIGHTLY_DAY)
    client = IBSourceConfig(client_id=1)
    sessions = len(generate_bars(["X"], BACKFILL_START, BACKFILL_END, seed=2024))

    backfill_symbols = [f"B{i:03d}" for i in range(n_backfill)]
    backfill = _fetch([BarRequest(s, BACKFILL_START, BACKFILL_END) for s in backfill_symbols], config, client)
    old_backfill_requests, old_backfill_sim = old_pacing_seconds(backfill_symbols, BACKFILL_START, BACKFILL_END)

    nightly_symbols = [f"N{i:03d}" for i in range(n_nightly)]
    nightly = _fetch([BarRequest(s, NIGHTLY_DAY, NIGHTLY_DAY) for s in nightly_symbols], config, client)
    old_nightly_requests, old_nightly_sim = old_pacing_seconds(nightly_symbols, NIGHTLY_DAY, NIGHTLY_DAY)

    small_requests, small_violations, small_max_window, small_sim, small_pct = _small_bars(n_small)
    small_bound = math.floor((small_requests - 1) / 60) * WINDOW

    b, n = f"ib.backfill_{n_backfill}x20y_daily", f"ib.nightly_{n_nightly}x1d"
    expected_backfill = sessions * n_backfill
    return [
        BenchResult(f"{b}.wall_s", backfill.wall_seconds, "s", target="< 60 s", baseline=old_backfill_sim,
                    ratio=_ratio(old_backfill_sim, backfill.wall_seconds), passed=backfill.wall_seconds < 60),
        BenchResult(f"{b}.requests", backfill.requests, "requests", target=f"<= {2 * n_backfill} (years per request)",
                    baseline=old_backfill_requests, ratio=old_backfill_requests / max(1, backfill.requests),
                    passed=backfill.requests <= 2 * n_backfill),
        BenchResult(f"{b}.bars", backfill.bars, "bars", target=f"= {expected_backfill:,}",
                    passed=backfill.bars == expected_backfill and backfill.failed == 0),
        BenchResult(f"{b}.max_open_requests", backfill.client_max_open, "requests", target="<= 50 (IB's cap)",
                    passed=backfill.gateway_max_open <= 50 and backfill.client_max_open <= 50),
        BenchResult(f"{b}.pacing_violations", backfill.pacing_violations + backfill.gateway_refusals, "errors 162/322",
                    target="= 0", passed=backfill.pacing_violations + backfill.gateway_refusals == 0),
        BenchResult(f"{n}.wall_s", nightly.wall_seconds, "s", target="<= 60 s", baseline=old_nightly_sim,
                    ratio=_ratio(old_nightly_sim, nightly.wall_seconds), passed=nightly.wall_seconds <= 60),
        BenchResult(f"{n}.requests", nightly.requests, "requests", target=f"= {n_nightly}",
                    baseline=old_nightly_requests, passed=nightly.requests == n_nightly),
        BenchResult(f"{n}.bars", nightly.bars, "bars", target=f"= {n_nightly}",
                    passed=nightly.bars == n_nightly and nightly.failed == 0),
        BenchResult(f"{n}.max_open_requests", nightly.client_max_open, "requests", target="1 < x <= 50",
                    passed=1 < nightly.client_max_open <= 50 and nightly.gateway_max_open <= 50),
        BenchResult(f"{n}.pacing_violations", nightly.pacing_violations + nightly.gateway_refusals, "errors 162/322",
                    target="= 0", passed=nightly.pacing_violations + nightly.gateway_refusals == 0),
        BenchResult(f"ib.small_bars_{n_small}x2d_30s.max_requests_per_sim_10min", small_max_window, "requests",
                    target="<= 60 (IB rule)", passed=small_max_window <= 60),
        BenchResult(f"ib.small_bars_{n_small}x2d_30s.sim_minutes", small_sim / 60, "sim min",
                    target="near the pacing lower bound", baseline=small_bound / 60,
                    ratio=(small_bound / small_sim) if small_sim and small_bound else None),
        BenchResult(f"ib.small_bars_{n_small}x2d_30s.pacing_violations", small_violations, "errors 162",
                    target="< 1 % of requests", passed=small_violations < 0.01 * small_requests),
        BenchResult(f"ib.small_bars_{n_small}x2d_30s.completeness", small_pct, "% bars", target="= 100 %",
                    passed=small_pct == 100.0),
    ]


if __name__ == "__main__":
    import sys

    from tt_platform.bench.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
