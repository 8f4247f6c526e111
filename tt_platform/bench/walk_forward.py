"""Walk-forward wall time: 10 folds on 30 symbols x 15 years of daily bars, 100k PPO steps per fold.

What runs: ``tt walk-forward --workers 2`` on a fresh TT_HOME (embedded PostgreSQL, local MLflow),
exactly as a user runs it: features, the plan, each fold's policy trained on its expanding window
and judged on its own year, then the stitched report and the gate. The bars (30 symbols of
``market_lab_adjusted``, 2007-2021, from the shared data; the synthetic source with the same
symbols and dates when the shared data is absent) are ingested first and timed apart.

Training uses the faster settings (``bench.training.FAST_SETTINGS``: batched VecEnv, shared-symbol extractor,
fused Adam, 32 envs x 32 steps, minibatch 256), one seed, the basic feature set (5 features plus
the positions row) and a window of 30 bars.

Side by side, in the same run: one fold trained with today's default training settings (flat MLP,
DummyVecEnv, 2 envs x 256 steps, minibatch 64) for a tenth of the steps, its training time
extrapolated to the same 10 folds x 100k steps on one process. Training times are read from the
run's own progress lines (``fold_policies: done in ... s``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tt_platform.bench.harness import BenchResult
from tt_platform.bench.training import FAST_SETTINGS
from tt_platform.settings import get_settings

TARGET_SECONDS = 15 * 60
SYMBOLS = ["AAPL", "AMZN", "BA", "BAC", "CAT", "CSCO", "CVX", "DIA", "DIS", "GE", "GLD", "GOOGL", "HD", "IBM",
           "IWM", "JNJ", "JPM", "KO", "MCD", "MRK", "MSFT", "NVDA", "ORCL", "PEP", "PFE", "PG", "QQQ", "SPY",
           "TLT", "WFC"]
WORKERS = 2
FOLD_DONE = re.compile(r"fold_policies: done in ([0-9.]+) s")


def _data_section(quick: bool) -> tuple[dict, str]:
    shared = get_settings().shared_data or Path(__file__).resolve().parents[2].parent / "shared" / "data"
    csv_dir = Path(shared) / "daily" / "market_lab_adjusted"
    dates = {"start": "2019-01-02" if quick else "2007-01-03", "end": "2021-12-31"}
    if all((csv_dir / f"{symbol}.csv").is_file() for symbol in SYMBOLS):
        return {"source": "csv", "csv_dir": str(csv_dir.resolve())} | dates, "market_lab_adjusted"
    return {"source": "synthetic"} | dates, "synthetic (shared data absent)"


def study_config(quick: bool, training: dict, *, max_folds: int, timesteps: int) -> tuple[dict, str]:
    data, label = _data_section(quick)
    config = {
        "name": "bench-walk-forward",
        "universe": {"symbols": SYMBOLS[:5] if quick else SYMBOLS},
        "data": data,
        "env": {"window_size": 10 if quick else 30},
        "training": {"total_timesteps": timesteps, "seed": 0, "eval_episode": False} | training,
        "evaluation": {"walk_forward": {
            "scheme": "expanding", "train_bars": 250 if quick else 1260, "test_bars": 63 if quick else 252,
            "purge_bars": 5, "max_folds": max_folds, "seeds": [0],
        }},
    }
    return config, label


def _tt(home: Path, *args: str) -> tuple[float, str]:
    env = dict(os.environ, TT_HOME=str(home), TT_PARTITION_START="2007-01")
    env.pop("TT_DB_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).with_name("tt")), *args]
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({completed.returncode}):\n{completed.stdout[-3000:]}")
    return elapsed, completed.stdout


def _write(home: Path, name: str, config: dict) -> Path:
    path = home / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _fold_training_seconds(output: str) -> list[float]:
    return [float(seconds) for seconds in FOLD_DONE.findall(output)]


def run(quick: bool = False) -> list[BenchResult]:
    folds, timesteps = (2, 4096) if quick else (10, 100_000)
    fast, label = study_config(quick, FAST_SETTINGS, max_folds=folds, timesteps=timesteps)
    today, _ = study_config(quick, {}, max_folds=1, timesteps=timesteps // 10)
    with tempfile.TemporaryDirectory(prefix="tt-bench-wf-") as folder:
        home = Path(folder)
        fast_path, today_path = _write(home, "fast.yaml", fast), _write(home, "today.yaml", today)
        ingest_seconds, _ = _tt(home, "ingest", "--config", str(fast_path))
        wall, output = _tt(home, "walk-forward", "--config", str(fast_path), "--workers", str(WORKERS))
        fast_folds = _fold_training_seconds(output)
        _, today_output = _tt(home, "walk-forward", "--config", str(today_path), "--no-features")
        today_fold = _fold_training_seconds(today_output)
    if len(fast_folds) != folds or len(today_fold) != 1:
        raise RuntimeError(f"expected {folds} + 1 fold training times, read {fast_folds} and {today_fold}")
    fast_rate = timesteps / (sum(fast_folds) / folds)
    today_rate = (timesteps // 10) / today_fold[0]
    extrapolated = folds * timesteps / today_rate
    shape = (f"{len(fast['universe']['symbols'])} symbols, {fast['data']['start'][:4]}-2021 {label}, "
             f"{folds} folds x {timesteps:,} steps")
    return [
        BenchResult(f"walk-forward wall time, {shape}, faster settings, {WORKERS} workers "
                    "(features, plan, folds, report)", wall, "s", target=f"<= {TARGET_SECONDS} s",
                    baseline=extrapolated, ratio=extrapolated / wall, passed=wall <= TARGET_SECONDS),
        BenchResult("fold training env-steps/s per process: faster settings vs today's defaults "
                    "(1 fold at a tenth of the steps)", fast_rate, "steps/s", target="context (no target)",
                    baseline=today_rate, ratio=fast_rate / today_rate),
        BenchResult(f"ingest of the same bars ({shape.split(',')[0]}, context)", ingest_seconds, "s",
                    target="context (no target)"),
    ]


if __name__ == "__main__":
    from tt_platform.bench.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
