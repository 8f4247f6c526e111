"""Running ``tt`` for the fault suite, and what the Dagster instance says about its runs.

``tt`` runs either in this process (``tt_here``: the definitions are imported once, so a run
costs seconds) or as a process of its own (``start_tt``: the one to kill with SIGKILL). Both use
the instance and TT_HOME that ``tt_platform_tests.cli.test_tt_runs.dagster_home`` sets up, and
the store its TT_DB_URL names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.settings import get_settings
from tt_platform.store.engine import create_store_engine
from tt_platform.store.prices import read_bars

TT = Path(sys.executable).with_name("tt")
# a run in one of these is still going, or left for dead if its process is gone
OPEN_STATUSES = {
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
}


def run_yaml(folder: Path, name: str, symbols: list[str], start: str, end: str, *, source: str,
             interval: str = "1d", seed: int = 5, extra: str = "") -> Path:
    """A run config for ``tt`` (``extra``: more YAML sections, e.g. ``training:``)."""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nuniverse:\n  symbols: [{', '.join(symbols)}]\n"
        f"data:\n  source: {source}\n  interval: {interval}\n  start: {start}\n  end: {end}\n  seed: {seed}\n"
        + extra
    )
    return path


def tt_here(*args: str) -> tuple[int, str]:
    """``tt ARGS`` in this process: its exit code and everything it printed."""
    get_settings.cache_clear()  # the environment may have changed since the last command
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def start_tt(folder: Path, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """``tt ARGS`` as a process of its own, output to ``folder/name.log``."""
    log = folder / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(TT), *args], cwd=folder, env=dict(os.environ), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    return process, log


def kill_9(process: subprocess.Popen) -> None:
    process.kill()
    assert process.wait(timeout=30) == -9


def instance_runs() -> list[dg.DagsterRun]:
    """Every run the test's Dagster instance holds, oldest first."""
    with dg.DagsterInstance.get() as instance:
        return list(reversed(instance.get_runs()))


def wait_for_started_run(process: subprocess.Popen, log: Path, timeout: float = 120.0) -> dg.DagsterRun:
    """The run ``process`` executes, once the instance records it STARTED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"tt ended before its run started:\n{log.read_text()[-3000:]}"
        started = [r for r in instance_runs() if r.status == dg.DagsterRunStatus.STARTED]
        if started:
            return started[-1]
        time.sleep(0.2)
    raise AssertionError(f"no run STARTED within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def run_status(run_id: str) -> dg.DagsterRunStatus:
    with dg.DagsterInstance.get() as instance:
        return instance.get_run_by_id(run_id).status


def failure_message(run_id: str) -> str:
    """The message of the run's RUN_FAILURE event (who marked it failed, and why)."""
    with dg.DagsterInstance.get() as instance:
        records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert records, f"run {run_id} has no RUN_FAILURE event"
    entry = records[0].event_log_entry
    return f"{entry.message} {entry.dagster_event.event_specific_data if entry.dagster_event else ''}"


def assert_no_run_left_open() -> dict[str, dg.DagsterRunStatus]:
    """No run of the instance is left QUEUED, STARTING, STARTED or CANCELING; returns every
    run's status by id."""
    statuses = {run.run_id: run.status for run in instance_runs()}
    open_runs = {run_id: status.value for run_id, status in statuses.items() if status in OPEN_STATUSES}
    assert not open_runs, f"runs left open in the Dagster instance: {open_runs}"
    return statuses


def stored_bars(url: str, symbols: list[str], interval: str = "1d") -> pd.DataFrame:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        return read_bars(engine, symbols, interval=interval).sort_values(["symbol", "ts"]).reset_index(drop=True)
    finally:
        engine.dispose()

