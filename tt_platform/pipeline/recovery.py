"""Runs left open by a process that died: mark them failed.

A run whose process is killed (``kill -9``, an OOM kill, a power cut) never reports its end: its
Dagster run stays STARTED and its MLflow run RUNNING for ever. ``mark_abandoned_runs`` finds such
runs recorded by this machine whose process no longer exists and marks them failed, with a
message saying so.

How a run's process is known:

- Dagster: the run's tags ``tt/host`` and ``tt/pid`` (``run_worker_tags()``, added when ``tt``
  creates a run); without ``tt/pid``, the pid of the process that reported the run's start (its
  RUN_START event), which is the run worker. A run without ``tt/host`` is left alone: it may be
  running on another machine.
- MLflow: the run's tags ``tt.host`` and ``tt.pid``, which ``MlflowTracker.start_run`` sets.

A pid that exists on this machine counts as alive (it may have been reused by another process:
the run is then left alone rather than failed by mistake).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from tt_platform.training.tracking import HOST_TAG as MLFLOW_HOST_TAG
from tt_platform.training.tracking import PID_TAG as MLFLOW_PID_TAG
from tt_platform.training.tracking import MlflowTracker

log = logging.getLogger(__name__)

HOST_TAG = "tt/host"
PID_TAG = "tt/pid"
DEFAULT_EXPERIMENT = "tt-platform"
OPEN_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]


def run_worker_tags() -> dict[str, str]:
    """Tags naming this process as a Dagster run's worker (for runs ``tt`` executes itself)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def tag_run_host(instance: dg.DagsterInstance, run_id: str) -> None:
    """Record the machine a run executes on, so a run left STARTED by a killed worker can be
    marked failed there; the worker's pid comes from the run's start event."""
    run = instance.get_run_by_id(run_id)
    if run is not None and HOST_TAG not in run.tags:
        instance.add_run_tags(run_id, {HOST_TAG: socket.gethostname()})


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # "pid (comm) state ...": comm may contain spaces and parentheses
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _dagster_run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    pid = _int(run.tags.get(PID_TAG))
    if pid is not None:
        return pid
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if records and records[0].event_log_entry.dagster_event is not None:
        return records[0].event_log_entry.dagster_event.pid
    return None


def mark_abandoned_dagster_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the STARTING/STARTED Dagster runs of this host whose worker process is gone;
    returns one line per run marked."""
    host = socket.gethostname()
    marked = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=OPEN_STATUSES)):
        run = record.dagster_run
        if run.tags.get(HOST_TAG) != host:
            continue
        pid = _dagster_run_pid(instance, run)
        if pid is None or pid_alive(pid):
            continue
        message = (f"run worker process {pid} on {host} is gone (killed or crashed) while the "
                   f"run was {run.status.value}; marked failed")
        instance.report_run_failed(run, message)
        line = f"Dagster run {run.run_id} ({run.job_name}): {message}"
        log.warning(line)
        marked.append(line)
    return marked


def mark_abandoned_mlflow_runs(tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT
                               ) -> list[str]:
    """Set FAILED the RUNNING MLflow runs of ``experiment`` started on this host whose process
    is gone; returns one line per run marked."""
    tracker = MlflowTracker(tracking_uri, experiment)
    client = tracker.client
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    host = socket.gethostname()
    marked = []
    page_token = None
    while True:
        runs = client.search_runs(
            [found.experiment_id], filter_string="attributes.status = 'RUNNING'",
            max_results=500, page_token=page_token)
        for run in runs:
            tags = run.data.tags
            pid = _int(tags.get(MLFLOW_PID_TAG))
            if tags.get(MLFLOW_HOST_TAG) != host or pid is None or pid_alive(pid):
                continue
            message = f"process {pid} on {host} is gone (killed or crashed); marked failed"
            client.set_tag(run.info.run_id, "tt.failure", message)
            client.set_terminated(run.info.run_id, "FAILED")
            line = f"MLflow run {run.info.run_id} ({run.info.run_name}): {message}"
            log.warning(line)
            marked.append(line)
        page_token = runs.token
        if not page_token:
            return marked


def mark_abandoned_runs(instance: dg.DagsterInstance | None, mlflow_tracking_uri: str | None,
                        experiment: str = DEFAULT_EXPERIMENT) -> list[str]:
    """Both sweeps (each skipped when its argument is None); one line per run marked failed.
    A sweep that cannot reach its store is logged and skipped, so startup goes on."""
    marked: list[str] = []
    if instance is not None:
        try:
            marked += mark_abandoned_dagster_runs(instance)
        except Exception as exc:  # noqa: BLE001 - a sweep must never stop the command
            log.warning("could not check for abandoned Dagster runs: %s", exc)
    if mlflow_tracking_uri:
        try:
            marked += mark_abandoned_mlflow_runs(mlflow_tracking_uri, experiment)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not check for abandoned MLflow runs: %s", exc)
    return marked
