"""Runs left open by a killed process are marked failed, in Dagster and in MLflow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from tt_platform.pipeline.recovery import (
    HOST_TAG,
    PID_TAG,
    mark_abandoned_dagster_runs,
    mark_abandoned_mlflow_runs,
    mark_abandoned_runs,
    pid_alive,
    run_worker_tags,
)
from tt_platform.training.tracking import HOST_TAG as MLFLOW_HOST_TAG
from tt_platform.training.tracking import PID_TAG as MLFLOW_PID_TAG
from tt_platform.training.tracking import MlflowTracker

ROOT = Path(__file__).resolve().parents[2]

DAGSTER_WORKER = textwrap.dedent("""
    import socket, sys, time
    import dagster as dg

    @dg.op
    def forever():
        while True:
            time.sleep(0.1)

    @dg.job
    def stuck():
        forever()

    with dg.DagsterInstance.local_temp(tempdir=sys.argv[1]) as instance:
        # a run tagged with its host only: the worker pid comes from the run's start event
        stuck.execute_in_process(instance=instance, tags={"tt/host": socket.gethostname()})
""")

MLFLOW_WORKER = textwrap.dedent("""
    import sys, time
    from tt_platform.training.tracking import MlflowTracker

    with MlflowTracker(sys.argv[1], sys.argv[2]).start_run(run_name="doomed") as run:
        print(run.run_id, flush=True)
        while True:
            time.sleep(0.1)
""")


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture()
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as active:
        yield active


@dg.op
def _noop():
    pass


@dg.job
def _job():
    _noop()


def test_killed_dagster_run_worker_leaves_a_run_that_is_marked_failed(instance, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", DAGSTER_WORKER, str(tmp_path / "dagster")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        started = []
        while not started:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run_id = started[0].run_id
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED

    marked = mark_abandoned_dagster_runs(instance)
    assert len(marked) == 1 and run_id in marked[0] and str(proc.pid) in marked[0]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0].event_log_entry
    assert "is gone" in failure.message or "is gone" in str(failure.dagster_event.event_specific_data)
    assert mark_abandoned_dagster_runs(instance) == []  # idempotent


def test_dagster_runs_with_a_dead_recorded_pid_are_failed_live_or_foreign_runs_are_not(instance):
    here = socket.gethostname()
    dead = instance.create_run_for_job(
        _job, tags={HOST_TAG: here, PID_TAG: str(_dead_pid())}, status=dg.DagsterRunStatus.STARTED)
    live = instance.create_run_for_job(
        _job, tags=run_worker_tags(), status=dg.DagsterRunStatus.STARTED)
    foreign = instance.create_run_for_job(
        _job, tags={HOST_TAG: "elsewhere", PID_TAG: str(_dead_pid())},
        status=dg.DagsterRunStatus.STARTED)
    untagged = instance.create_run_for_job(_job, status=dg.DagsterRunStatus.STARTED)
    marked = mark_abandoned_runs(instance, None)
    assert len(marked) == 1 and dead.run_id in marked[0]
    status = {r.run_id: r.status for r in instance.get_runs()}
    assert status[dead.run_id] == dg.DagsterRunStatus.FAILURE
    for run in (live, foreign, untagged):
        assert status[run.run_id] == dg.DagsterRunStatus.STARTED


def test_killed_training_process_leaves_an_mlflow_run_that_is_marked_failed(tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    tracker = MlflowTracker(uri, "recovery")
    proc = subprocess.Popen([sys.executable, "-c", MLFLOW_WORKER, uri, "recovery"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        killed_run = proc.stdout.readline().strip()
        assert killed_run, "the worker did not start its run"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    run = tracker.client.get_run(killed_run)
    assert run.info.status == "RUNNING"
    assert run.data.tags[MLFLOW_PID_TAG] == str(proc.pid)
    assert run.data.tags[MLFLOW_HOST_TAG] == socket.gethostname()

    foreign = tracker.client.create_run(
        tracker.experiment_id, tags={MLFLOW_HOST_TAG: "elsewhere", MLFLOW_PID_TAG: "1"})
    with tracker.start_run(run_name="alive") as alive:
        marked = mark_abandoned_mlflow_runs(uri, "recovery")
        assert len(marked) == 1 and killed_run in marked[0]
        assert tracker.client.get_run(alive.run_id).info.status == "RUNNING"
    stored = tracker.client.get_run(killed_run)
    assert stored.info.status == "FAILED" and stored.info.end_time is not None
    assert "is gone" in stored.data.tags["tt.failure"]
    assert tracker.client.get_run(foreign.info.run_id).info.status == "RUNNING"
    assert mark_abandoned_runs(None, uri, "recovery") == []
    assert mark_abandoned_mlflow_runs(uri, "no-such-experiment") == []


def test_a_reaped_or_zombie_process_counts_as_gone():
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not pid_alive(zombie.pid)
    zombie.wait()
