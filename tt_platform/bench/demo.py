"""End-to-end demo time: ``tt demo`` on a fresh TT_HOME (embedded PostgreSQL, MLflow, report)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tt_platform.bench.harness import BenchResult

TARGET_SECONDS = 60.0


def run(quick: bool = False) -> list[BenchResult]:
    with tempfile.TemporaryDirectory(prefix="tt-bench-demo-") as home:
        env = dict(os.environ, TT_HOME=home)
        env.pop("TT_DB_URL", None)
        command = [str(Path(sys.executable).with_name("tt")), "demo"]
        if quick:
            config = Path(home) / "quick.yaml"
            config.write_text(
                "universe:\n  symbols: [AAA, BBB]\ndata:\n  start: 2021-01-04\n  end: 2021-12-31\n"
                "env:\n  episode_length: 60\n  window_size: 10\n"
                "training:\n  total_timesteps: 256\n  n_envs: 1\n"
            )
            command += ["--config", str(config)]
        started = time.perf_counter()
        completed = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"tt demo failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return [
        BenchResult(
            name="demo end-to-end (fresh TT_HOME)" + (" [quick]" if quick else ""),
            value=elapsed,
            unit="s",
            target=f"<= {TARGET_SECONDS:.0f} s",
            passed=elapsed <= TARGET_SECONDS,
        )
    ]
