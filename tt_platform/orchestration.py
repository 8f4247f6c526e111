"""Run the platform's Dagster jobs for ``tt``, as runs of the workspace's code location.

What the UI needs
-----------------
The Dagster UI lists a run under Jobs and Overview, and re-executes it without warning about a
different version, when the run names the code location the webserver loads from
``workspace.yaml`` (the run's remote job origin) and carries the job snapshot that code location
serves. A run made by ``job.execute_in_process`` has neither. ``tt`` therefore creates its runs the
way ``dagster job launch`` does: with the workspace's remote job origin and the job's snapshot.

How a ``tt`` run is started, and why
------------------------------------
``tt`` executes the run in its own process, as the run worker of that recorded run:

1. ``workspace.yaml`` is read with Dagster's own workspace loading, which starts no server: the
   code location origin is exactly the one the webserver uses (same location name, same
   loadable target).
2. The definitions are loaded in this process from that origin's loadable target (the module and
   attribute the code server loads) into a ``ReconstructableRepository``. Definitions do not
   depend on the run (what a run computes travels as Dagster run config), so the job snapshot
   computed here is the one the code server computes.
3. The run is created with ``DagsterInstance.create_run_for_job`` carrying the remote job origin
   and the job's Python origin, and executed by ``execute_run`` with the ``ReconstructableJob``
   on the in-process executor.

Submitting to the instance instead (``dagster job launch``) would first spawn a code server for
the ``python_module`` workspace, which imports the definitions (torch included: about five
seconds here), and then a run worker that imports them again: seconds before the first step of
every ``tt`` command, and the trainer's progress bar would end up in compute logs instead of the
terminal. Executing in-process costs nothing beyond what ``tt`` already imports, needs no code
server to stay alive, and the recorded run is indistinguishable in the UI from a launched one.

Progress and outcome: every event the run stores is handed to ``on_event`` as it is stored (an
instance event listener), so a caller can print step starts and ends, materialization counts and
warnings while the run goes on. The outcome (success, materialization metadata, the root cause
of a failure) is read back from the run's event log.

Termination: the UI's "Terminate" marks the run CANCELING (there is no code server to deliver
the request to, so the UI reports it as not delivered); ``tt`` notices within a second and
interrupts its run, which ends CANCELED. Ctrl-C in the terminal interrupts the run too (it ends
FAILURE, as an interruption nobody requested through Dagster).
"""

from __future__ import annotations

import _thread
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.code_pointer import CodePointer
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    CodeLocationOrigin,
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._utils.error import SerializableErrorInfo

from tt_platform.config.run_config import load_run_config
from tt_platform.defs.market_data.partitions import range_tags
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.pipeline.automation import KIND_TAG  # dagster.yaml limits runs by it
from tt_platform.pipeline.recovery import mark_abandoned_runs, run_worker_tags
from tt_platform.runtime import prepare_dagster, workspace_file
from tt_platform.settings import get_settings

MAIN_JOB = "main_job"
WALK_FORWARD_JOB = "walk_forward_job"
FOLD_PARTITIONS = "walk_forward_folds"  # the dynamic partitions of the walk-forward's folds
TRAINING_ASSETS = {"trained_policy", "fold_policies"}
DEFINITIONS_MODULE = "tt_platform.definitions"
# how often a running ``tt`` looks for a termination requested from the UI
CANCEL_POLL_SECONDS = 1.0

EventCallback = Callable[[EventLogEntry], None]


class WorkspaceError(RuntimeError):
    """workspace.yaml does not name a code location ``tt`` can run."""


@dataclass(frozen=True)
class CodeLocationTarget:
    """The workspace's code location holding the platform's definitions, loaded in this process."""

    origin: ManagedGrpcPythonEnvCodeLocationOrigin
    repository: ReconstructableRepository

    @property
    def location_name(self) -> str:
        return self.origin.location_name

    def repository_def(self) -> dg.RepositoryDefinition:
        return self.repository.get_definition()

    def remote_job_origin(self, job_name: str) -> RemoteJobOrigin:
        """The origin the webserver gives ``job_name``: this code location, its repository."""
        repository_origin = RemoteRepositoryOrigin(self.origin, self.repository_def().name)
        return RemoteJobOrigin(repository_origin, job_name)


def _targets_platform(origin: CodeLocationOrigin) -> bool:
    if not isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin):
        return False  # a separate code server: its target is not known here
    target = origin.loadable_target_origin
    return DEFINITIONS_MODULE in (target.module_name, target.package_name)


def workspace_location(workspace: Path | None = None) -> ManagedGrpcPythonEnvCodeLocationOrigin:
    """The code location of ``workspace`` (default: the platform's workspace.yaml) that ``tt``
    runs: the one loading ``tt_platform.definitions``, or the only one."""
    path = Path(workspace) if workspace else workspace_file()
    origins = list(location_origins_from_yaml_paths([str(path)]))
    chosen = [o for o in origins if _targets_platform(o)] or (origins if len(origins) == 1 else [])
    if len(chosen) != 1:
        names = ", ".join(o.location_name for o in origins) or "none"
        raise WorkspaceError(f"{path}: no single code location loading {DEFINITIONS_MODULE} (locations: {names})")
    origin = chosen[0]
    if not isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin):
        raise WorkspaceError(
            f"{path}: code location {origin.location_name} is served by a separate code server; "
            "tt runs a python_module / python_package / python_file location. Launch the job from "
            "the UI or with `dagster job launch` instead"
        )
    return origin


def _code_pointer(target: LoadableTargetOrigin) -> CodePointer:
    """The pointer a code server builds for ``target`` (see dagster._grpc.server)."""
    from dagster._grpc.utils import get_loadable_targets

    attribute = target.attribute
    if not attribute:
        found = get_loadable_targets(
            python_file=target.python_file,
            module_name=target.module_name,
            package_name=target.package_name,
            autoload_defs_module_name=target.autoload_defs_module_name,
            working_directory=target.working_directory,
            attribute=None,
            resolve_lazy_defs=True,
        )
        if len(found) != 1:
            raise WorkspaceError(f"{target}: expected one Definitions object, found {len(found)}")
        attribute = found[0].attribute
    if target.python_file:
        return CodePointer.from_python_file(target.python_file, attribute, target.working_directory)
    if target.package_name:
        return CodePointer.from_python_package(target.package_name, attribute, target.working_directory)
    if target.module_name:
        return CodePointer.from_module(target.module_name, attribute, target.working_directory)
    raise WorkspaceError(f"{target}: unsupported code location target")


def load_code_location(workspace: Path | None = None) -> CodeLocationTarget:
    origin = workspace_location(workspace)
    target = origin.loadable_target_origin
    repository = ReconstructableRepository(
        pointer=_code_pointer(target), executable_path=target.executable_path or sys.executable
    )
    return CodeLocationTarget(origin=origin, repository=repository)


def _quiet_in_process_run_config(job_def: dg.JobDefinition) -> dict[str, Any]:
    """Run config that keeps the run in this process and leaves the terminal to ``tt``'s own
    progress lines (the UI's event log keeps every event)."""
    extra: dict[str, Any] = {}
    if job_def.executor_def.name == dg.multi_or_in_process_executor.name:
        extra["execution"] = {"config": {"in_process": {}}}
    console = job_def.loggers.get("console")
    if console is not None and console.logger_fn is dg.colored_console_logger.logger_fn:
        extra["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    return extra


def _first_partition_day(partition_start: str) -> date:
    first = date.fromisoformat(partition_start if len(partition_start) > 7 else f"{partition_start}-01")
    return first.replace(day=1)


def root_cause(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The error a step's code raised, not Dagster's wrapper around it ("Error occurred while
    executing op ...")."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error


def one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())


# errors whose message already names the file and line (or host) concerned: shown without class
SELF_EXPLAINING_ERRORS = {
    "ImportFormatError", "StoreConnectionError", "StoreConnectionLost", "StoreConfigError", "CheckpointError",
    "IBConnectionLost",
}


def error_message(error: SerializableErrorInfo) -> str:
    """The root cause's message on one line. A ``dagster.Failure`` is a step reporting failure on
    purpose: its description is the message; errors whose message names the file or host
    concerned (``SELF_EXPLAINING_ERRORS``) are shown as their message; other errors keep their
    class name."""
    cause = root_cause(error)
    if cause.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
        return "interrupted (terminated from the UI, or Ctrl-C)"
    message = one_line(cause.message)
    prefix, _, rest = message.partition(": ")
    if cause.cls_name == "Failure" and prefix.endswith("Failure"):
        return rest or message
    if cause.cls_name in SELF_EXPLAINING_ERRORS and prefix.rsplit(".", 1)[-1] == cause.cls_name:
        return rest or message
    if "." in prefix and " " not in prefix:  # a qualified class name: keep the class only
        return f"{prefix.rsplit('.', 1)[-1]}: {rest}"
    return message


def failure_reason(records: list[EventLogEntry]) -> str:
    """Why a run failed, on one line: the first failed step's error, else the run's."""
    for entry in records:
        event = entry.dagster_event
        if event is not None and event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            if error is not None:
                return f"{event.step_key}: {error_message(error)}"
            return f"{event.step_key}: step failed"
    for entry in records:
        event = entry.dagster_event
        if event is not None and event.event_type in (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED):
            data = event.job_failure_data if event.event_type == DagsterEventType.RUN_FAILURE else None
            if data is not None and data.error is not None:
                return error_message(data.error)
            return one_line(event.message or "run failed")
    return "run did not succeed; see the Dagster UI (tt ui)"


def _materialized_metadata(records: list[EventLogEntry]) -> dict[str, dict[str, str]]:
    """Per asset, the metadata of its last materialization in the run; a range run's assets also
    say how many partitions (months) the run materialized."""
    assets: dict[str, dict[str, str]] = {}
    partitions: dict[str, list[str]] = {}
    for entry in records:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.to_user_string()
            metadata = {k: str(getattr(v, "value", v)) for k, v in materialization.metadata.items()}
            if materialization.partition:
                keys = partitions.setdefault(name, [])
                keys.append(materialization.partition)
                metadata = {
                    "partitions": f"{len(keys)} ({min(keys)}..{max(keys)})",
                    "last partition": materialization.partition,
                } | metadata
            assets[name] = metadata
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            assets[f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = {
                "passed": str(evaluation.passed)
            }
    return assets


def _safe(callback: EventCallback | None) -> EventCallback:
    """A listener that can never fail the run it watches."""

    def listener(entry: EventLogEntry) -> None:
        if callback is None:
            return
        try:
            callback(entry)
        except Exception:  # noqa: BLE001 - printing progress must not break a run
            logging.getLogger(__name__).debug("progress callback failed", exc_info=True)

    return listener


@contextmanager
def _interrupt_when_canceled(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Interrupt this process's run once the UI marks it CANCELING (Dagster's interrupt handling
    turns that into a clean cancellation)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # interrupts reach the main thread only
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(CANCEL_POLL_SECONDS):
            try:
                run = instance.get_run_by_id(run_id)
            except Exception:  # noqa: BLE001 - a storage hiccup is no reason to stop the run
                continue
            if run is not None and run.status == DagsterRunStatus.CANCELING and not finished.is_set():
                _thread.interrupt_main()
                return

    watcher = threading.Thread(target=watch, name=f"tt-cancel-watch-{run_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join(timeout=5)


def execute_recorded_run(
    location: CodeLocationTarget,
    job_name: str,
    *,
    instance: dg.DagsterInstance,
    run_config: dict[str, Any],
    tags: dict[str, str],
    asset_selection: set[dg.AssetKey] | None = None,
    on_event: EventCallback | None = None,
) -> str:
    """Create a run of ``job_name`` as the workspace's code location would and execute it here.
    Returns the run id; the outcome is in the run's record and event log."""
    job_def = location.repository_def().get_job(job_name)
    recon_job = location.repository.get_reconstructable_job(job_name)
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config={**run_config, **_quiet_in_process_run_config(job_def)},
        tags={**job_def.run_tags, **tags},
        asset_selection=asset_selection,
        remote_job_origin=location.remote_job_origin(job_name),
        job_code_origin=recon_job.get_python_origin(),
    )
    instance.add_event_listener(run.run_id, _safe(on_event))
    with _interrupt_when_canceled(instance, run.run_id):
        execute_run(recon_job, run, instance)
    return run.run_id


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Success, materialization metadata per asset (and check results), the failure's root cause."""
    run = instance.get_run_by_id(run_id)
    records = list(instance.all_logs(run_id))
    outcome = {
        "success": run is not None and run.status == DagsterRunStatus.SUCCESS,
        "run_id": run_id,
        "status": run.status.value if run is not None else "unknown",
        "assets": _materialized_metadata(records),
    }
    if not outcome["success"]:
        outcome["error"] = failure_reason(records)
        outcome["compute_logs"] = compute_log_folder(instance, run_id)
    return outcome


def compute_log_folder(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Where the run's captured step output is kept on this machine (local compute logs), if
    anywhere."""
    base_dir = getattr(instance.compute_log_manager, "_base_dir", None)
    return str(Path(base_dir) / run_id) if base_dir else None


def run_selection(
    selection: list[str],
    *,
    config_path: Path | None,
    overrides: dict,
    with_partitions: bool,
    instance: dg.DagsterInstance | None = None,
    resume_checkpoint: Path | None = None,
    progress: bool = False,
    on_event: EventCallback | None = None,
    workspace: Path | None = None,
    notice: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    job_name: str = MAIN_JOB,
    partition_key: str | None = None,
) -> dict:
    """Run ``selection`` (asset names, or ["*"]) of ``job_name`` as a run of the workspace's code
    location; return its outcome (see ``run_outcome``). ``notice`` receives one line per run a
    killed ``tt`` left behind and that is now marked failed.

    ``with_partitions``: the run covers every month of ``data.start..data.end`` in one run.
    ``partition_key``: the run materializes that one partition (a walk-forward fold).
    """
    config = load_run_config(config_path).with_overrides(**overrides)
    settings = get_settings()
    if with_partitions and config.data.start < _first_partition_day(settings.partition_start):
        raise ValueError(
            f"data.start {config.data.start} is before the first partition month {settings.partition_start}; "
            "set TT_PARTITION_START earlier"
        )
    # host and pid of this process, which executes the run: a later tt can tell a run whose
    # process was killed from one still going
    tags = {"tt/config_hash": config.config_hash, "tt/mode": config.mode.value} | run_worker_tags()
    if with_partitions:
        tags |= range_tags(config.data.start, config.data.end)
    if partition_key is not None:
        tags[PARTITION_NAME_TAG] = partition_key
    if selection == ["*"] or TRAINING_ASSETS & set(selection):
        # counted by the instance's run queue: a queued training waits while this one runs
        tags[KIND_TAG] = "training"
    run_config = dagster_run_config(config, resume_checkpoint=resume_checkpoint, progress=progress)
    asset_selection = None if selection == ["*"] else {dg.AssetKey(name) for name in selection}

    with _instance(instance, settings) as active:
        # runs (and MLflow runs) left STARTED by a killed tt on this machine are marked failed
        for line in mark_abandoned_runs(active, settings.mlflow_uri):
            notice(line)
        location = load_code_location(workspace)
        run_id = execute_recorded_run(
            location,
            job_name,
            instance=active,
            run_config=run_config,
            tags=tags,
            asset_selection=asset_selection,
            on_event=on_event,
        )
        return run_outcome(active, run_id)


def run_job(
    job_name: str,
    run_config: dict[str, Any],
    *,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
    on_event: EventCallback | None = None,
    workspace: Path | None = None,
    notice: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict:
    """Run the op job ``job_name`` with a Dagster ``run_config`` as a run of the workspace's code
    location, in this process; return its outcome (see ``run_outcome``)."""
    settings = get_settings()
    with _instance(instance, settings) as active:
        for line in mark_abandoned_runs(active, settings.mlflow_uri):
            notice(line)
        location = load_code_location(workspace)
        run_id = execute_recorded_run(
            location, job_name, instance=active, run_config=run_config,
            tags=(tags or {}) | run_worker_tags(), on_event=on_event,
        )
        return run_outcome(active, run_id)


@contextmanager
def _instance(given: dg.DagsterInstance | None, settings) -> Iterator[dg.DagsterInstance]:
    if given is not None:
        yield given
        return
    prepare_dagster(settings)
    with dg.DagsterInstance.get() as instance:
        yield instance



def fold_partition_keys(instance: dg.DagsterInstance | None = None) -> list[str]:
    """The folds of the last walk-forward plan, in fold order (``f00_...``, ``f01_...``, ``f100_...``)."""
    with _instance(instance, get_settings()) as active:
        keys = active.get_dynamic_partitions(FOLD_PARTITIONS)
    return sorted(keys, key=lambda key: (int(key[1:].split("_", 1)[0]), key))


def _run_one_partition(selection: list[str], partition_key: str, execution: dict[str, Any]) -> dict:
    """One partition's run, in a worker process of ``run_partitions``."""
    return run_selection(selection, partition_key=partition_key, with_partitions=False, **execution)


def run_partitions(
    selection: list[str],
    partition_keys: list[str],
    *,
    workers: int,
    config_path: Path | None,
    overrides: dict,
    job_name: str,
    on_event_for: Callable[[str], EventCallback | None] = lambda key: None,
    on_outcome: Callable[[str, dict], None] = lambda key, outcome: None,
) -> list[dict]:
    """Run ``selection`` once per partition key, ``workers`` runs at a time, each run in its own
    process (spawned: torch and open connections do not fork) and recorded as its own Dagster run,
    exactly as ``run_selection`` with ``partition_key`` records it. ``on_outcome`` hears each run's
    outcome as it ends (in completion order).

    After a failed run no further partition starts; the runs already going finish. Returns the
    outcomes of the runs that ran, in partition order. Ctrl-C interrupts every worker's run.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    execution = {"config_path": config_path, "overrides": overrides, "job_name": job_name, "progress": False}
    outcomes: dict[str, dict] = {}
    pending = list(partition_keys)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, max(len(pending), 1)), mp_context=context) as pool:
        running: dict[Any, str] = {}

        def submit_next() -> None:
            key = pending.pop(0)
            running[pool.submit(_run_one_partition, selection, key,
                                execution | {"on_event": on_event_for(key)})] = key

        while pending and len(running) < workers:
            submit_next()
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    outcomes[key] = future.result()
                    on_outcome(key, outcomes[key])
                    if not outcomes[key]["success"]:
                        pending.clear()
                while pending and len(running) < workers:
                    submit_next()
        except BaseException:
            pending.clear()
            for future in running:
                future.cancel()
            raise
    return [outcomes[key] for key in partition_keys if key in outcomes]
