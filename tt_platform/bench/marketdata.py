"""Market-data layer speed, measured side by side with the usual way of doing the same job.

* Lean tick import (zip, 2M trade ticks): ``read_lean_trade_ticks`` (typed parse, row
  validation, New York ms -> UTC) against a per-row ``csv`` loop as simple readers do it.
* Plain CSV import (100 ten-year files): ``read_plain_csv`` per file against a bare
  ``pandas.read_csv`` with no validation, to show what the checks, line-numbered errors and the
  canonical ``normalize_bars`` cost.
* Backward adjustment (500 symbols x 10 years, quarterly dividends + a split each):
  ``adjust_bars`` against a numpy loop that rescales earlier bars one event at a time; both must
  give the same prices.
* Quality checks and gap filling on the same 500 x 10 years: time against a budget.

Everything runs on synthetic data written to a temporary folder, so no shared data is needed.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.bench.harness import BenchResult
from tt_platform.data.bars import normalize_bars
from tt_platform.data.calendars import expected_sessions
from tt_platform.data.corporate_actions import adjust_bars
from tt_platform.data.gaps import fill_missing
from tt_platform.data.importers import read_lean_trade_ticks, read_plain_csv
from tt_platform.data.quality import run_all_checks

TARGET_TICKS_PER_SECOND = 1_000_000
TARGET_CHECK_SECONDS = 5.0
TARGET_MS_PER_FILE = 15.0  # 500 ten-year files ingest in under 8 s


def _timed(function, *args, repeat: int = 1, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):  # best of n: the machine is shared, the minimum is least disturbed
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def _bars(n_symbols: int, years: int) -> pd.DataFrame:
    from tt_platform.data.synthetic import generate_bars

    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    end = pd.Timestamp("2021-12-31")
    return generate_bars(symbols, end - pd.DateOffset(years=years) + pd.Timedelta(days=1), end, seed=3)


def _write_lean_ticks(folder: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ms = np.sort(rng.integers(4 * 3_600_000, 20 * 3_600_000, n))
    price = np.round(1_674_100 * np.exp(np.cumsum(rng.normal(0, 2e-5, n))), -2).astype(np.int64)
    size = rng.integers(1, 5_000, n)
    exchange = rng.choice(np.array(["P", "Q", "Z", "D", "K"]), n)
    condition = rng.choice(np.array(["1", "20000020", "20", "2000"]), n)
    text = io.StringIO()
    pd.DataFrame({"ms": ms, "p": price, "s": size, "e": exchange, "c": condition, "x": 0}).to_csv(text, header=False, index=False)
    path = folder / "20131007_spy_trade_tick.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("20131007_spy_Trade_Tick.csv", text.getvalue())
    return path


def naive_tick_reader(path: Path) -> pd.DataFrame:
    """Row by row with the csv module, then one vectorised timestamp conversion."""
    with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as raw:
        rows = list(csv.reader(io.TextIOWrapper(raw, encoding="utf-8")))
    ms = [int(r[0]) for r in rows]
    price = [int(r[1]) / 10_000 for r in rows]
    size = [float(r[2]) for r in rows]
    local = pd.Timestamp("2013-10-07") + pd.to_timedelta(ms, unit="ms")
    ts = pd.DatetimeIndex(local).tz_localize("America/New_York").tz_convert("UTC")
    return pd.DataFrame({"ts": ts, "price": price, "size": size, "exchange": [r[3] for r in rows]})


def naive_adjust(bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """One event at a time (newest first): rescale every earlier bar of the symbol with numpy
    masks, O(events x bars per symbol). ``bars`` must be sorted by symbol and ts."""
    prices = bars[["open", "high", "low", "close"]].to_numpy().copy()
    volume = bars["volume"].to_numpy().copy()
    raw_close = bars["close"].to_numpy()
    stamps = pd.DatetimeIndex(bars["ts"]).as_unit("ns").asi8
    by_symbol = actions.groupby("symbol")
    for symbol, rows in bars.groupby("symbol").indices.items():
        if symbol not in by_symbol.groups:
            continue
        events = by_symbol.get_group(symbol).sort_values("ex_date", ascending=False)
        ts = stamps[rows]
        for ex_date, kind, value in zip(pd.DatetimeIndex(events["ex_date"]).as_unit("ns").asi8, events["action_type"], events["value"]):
            before = rows[ts < ex_date]
            if len(before) == 0:
                continue
            if kind == "split":
                prices[before] /= value
                volume[before] *= value
            else:
                prices[before] *= 1 - value / raw_close[before[-1]]
    out = bars.copy()
    out[["open", "high", "low", "close"]] = prices
    out["volume"] = volume
    return out


def _actions(bars: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for symbol, group in bars.groupby("symbol"):
        stamps = group["ts"].to_numpy()
        closes = group["close"].to_numpy()
        for i in range(40, len(group), 63):  # quarterly dividends of ~0.5%
            rows.append((symbol, stamps[i], "cash_dividend", 0.005 * closes[i - 1]))
        split_at = int(rng.integers(1, len(group)))
        if split_at >= 40 and (split_at - 40) % 63 == 0:
            split_at += 1  # not on a dividend day: the loop baseline has no rule for that case
        if split_at < len(group):
            rows.append((symbol, stamps[split_at], "split", float(rng.choice([2.0, 3.0, 0.5]))))
    return pd.DataFrame(rows, columns=["symbol", "ex_date", "action_type", "value"])


def run(quick: bool = False) -> list[BenchResult]:
    tag = " [quick]" if quick else ""
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)

        n_ticks = 200_000 if quick else 2_000_000
        tick_file = _write_lean_ticks(folder, n_ticks)
        read_lean_trade_ticks(tick_file)  # warm up
        ours_ticks, ours = _timed(read_lean_trade_ticks, tick_file, repeat=1 if quick else 2)
        _, naive = _timed(naive_tick_reader, tick_file)
        rate = len(ours_ticks) / ours
        results.append(
            BenchResult(
                name=f"import: Lean trade ticks, {n_ticks:,} ticks{tag}",
                value=rate,
                unit="ticks/s",
                target=f">= {TARGET_TICKS_PER_SECOND:,} ticks/s; baseline = csv-module row loop",
                baseline=len(ours_ticks) / naive,
                ratio=naive / ours,
                passed=rate >= TARGET_TICKS_PER_SECOND,
            )
        )

        n_symbols, years = (20, 2) if quick else (500, 10)
        bars = _bars(n_symbols, years)
        n_files = min(n_symbols, 100)
        paths = []
        for symbol, group in list(bars.groupby("symbol"))[:n_files]:
            path = folder / f"{symbol}.csv"
            group.assign(date=group["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
            paths.append(path)
        frames, ours = _timed(lambda: [read_plain_csv(p) for p in paths], repeat=2)
        _, bare = _timed(lambda: [pd.read_csv(p, parse_dates=["date"]) for p in paths], repeat=2)
        # the shared contract's normalize_bars (coercion, sort, validation) is part of the cost
        _, contract = _timed(lambda: [normalize_bars(f) for f in frames], repeat=2)
        per_file, bare_per_file = 1000 * ours / n_files, 1000 * bare / n_files
        results.append(
            BenchResult(
                name=f"import: plain CSV, {years}-year files (normalize_bars {1000 * contract / n_files:.1f} ms of it){tag}",
                value=per_file,
                unit="ms/file",
                target=f"<= {TARGET_MS_PER_FILE:.0f} ms per file; baseline = bare pandas.read_csv (no checks)",
                baseline=bare_per_file,
                ratio=bare_per_file / per_file,
                passed=per_file <= TARGET_MS_PER_FILE,
            )
        )

        actions = _actions(bars)
        ours_adjusted, ours = _timed(adjust_bars, bars, actions, repeat=2)
        naive_adjusted, naive = _timed(naive_adjust, bars.sort_values(["symbol", "ts"]).reset_index(drop=True), actions)
        agree = np.allclose(ours_adjusted["close"].to_numpy(), naive_adjusted["close"].to_numpy(), rtol=1e-9)
        results.append(
            BenchResult(
                name=f"adjust_bars: {n_symbols} symbols x {years} years, {len(actions):,} events{tag}",
                value=ours,
                unit="s",
                target="no slower than a numpy per-event loop (>= 1x), identical prices",
                baseline=naive,
                ratio=naive / ours,
                passed=agree and naive / ours >= 1,
            )
        )

        checks, ours = _timed(run_all_checks, bars, repeat=2)
        results.append(
            BenchResult(
                name=f"quality: run_all_checks, {n_symbols} symbols x {years} years{tag}",
                value=ours,
                unit="s",
                target=f"<= {TARGET_CHECK_SECONDS:.0f} s",
                passed=ours <= TARGET_CHECK_SECONDS and len(checks) == 5,
            )
        )
        sessions = expected_sessions("XNYS", bars["ts"].min(), bars["ts"].max())
        holed = bars.sample(frac=0.99, random_state=0)
        (_, report), ours = _timed(fill_missing, holed, sessions, "ffill", repeat=2)
        results.append(
            BenchResult(
                name=f"gaps: fill_missing ffill, {n_symbols} symbols, {report.n_filled:,} bars filled{tag}",
                value=ours,
                unit="s",
                target=f"<= {TARGET_CHECK_SECONDS:.0f} s",
                passed=ours <= TARGET_CHECK_SECONDS,
            )
        )
    return results
