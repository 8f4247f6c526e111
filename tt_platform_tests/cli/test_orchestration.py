"""The pieces of ``tt``'s run orchestration that need no run: workspace, errors, cancellation."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._utils.error import SerializableErrorInfo

from tt_platform import orchestration
from tt_platform.orchestration import WorkspaceError, failure_reason, root_cause, workspace_location
from tt_platform.runtime import REPO_ROOT, workspace_file


def _error(cls_name: str, message: str, cause: SerializableErrorInfo | None = None) -> SerializableErrorInfo:
    return SerializableErrorInfo(message=message, stack=[], cls_name=cls_name, cause=cause)


def test_root_cause_is_the_steps_own_error_not_dagsters_wrapper():
    user = _error("ValueError", "ValueError: csv_dir /x: no such folder\n", cause=_error("OSError", "OSError: errno 2\n"))
    wrapped = _error(
        "DagsterExecutionStepExecutionError", 'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "bars":\n', cause=user
    )
    assert root_cause(wrapped) is user


def test_failure_reason_names_the_first_failed_step_on_one_line():
    from dagster._core.events import DagsterEventType

    error = _error("DagsterExecutionStepExecutionError", "wrapper", cause=_error("RuntimeError", "RuntimeError: first line\n  second line\n"))
    failure = SimpleNamespace(
        dagster_event=SimpleNamespace(
            event_type=DagsterEventType.STEP_FAILURE, step_key="bars", step_failure_data=SimpleNamespace(error=error)
        )
    )
    assert failure_reason([SimpleNamespace(dagster_event=None), failure]) == "bars: RuntimeError: first line; second line"


def test_workspace_location_is_the_one_the_webserver_loads():
    origin = workspace_location()
    (expected,) = location_origins_from_yaml_paths([str(REPO_ROOT / "workspace.yaml")])
    assert isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin)
    assert origin == expected
    assert origin.loadable_target_origin.module_name == "tt_platform.definitions"


def test_a_workspace_without_the_platform_location_is_refused(tmp_path):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n  - grpc_server:\n      host: localhost\n      port: 4266\n      location_name: elsewhere\n")
    with pytest.raises(WorkspaceError, match="separate code server"):
        workspace_location(workspace)


def test_workspace_file_prefers_dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert workspace_file() == REPO_ROOT / "workspace.yaml"
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    assert workspace_file() == tmp_path / "workspace.yaml"


def test_a_run_canceled_from_the_ui_is_interrupted(monkeypatch):
    monkeypatch.setattr(orchestration, "CANCEL_POLL_SECONDS", 0.05)
    statuses = iter([DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING])
    instance = SimpleNamespace(get_run_by_id=lambda run_id: SimpleNamespace(status=next(statuses, DagsterRunStatus.CANCELING)))
    with pytest.raises(KeyboardInterrupt):
        with orchestration._interrupt_when_canceled(instance, "run-id"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
    # a finished run's watcher is stopped and interrupts nothing afterwards
    with orchestration._interrupt_when_canceled(SimpleNamespace(get_run_by_id=lambda run_id: None), "run-id"):
        pass
    time.sleep(0.2)


def test_a_deliberate_failure_reads_as_its_description():
    from tt_platform.orchestration import error_message

    failure = _error("Failure", "dagster._core.definitions.events.Failure: bars incomplete for 1 of 1 months\n")
    wrapped = _error("DagsterExecutionStepExecutionError", "wrapper", cause=failure)
    assert error_message(wrapped) == "bars incomplete for 1 of 1 months"
    qualified = _error("IBError", "tt_platform.ib.errors.IBError: pacing violation\n")
    assert error_message(qualified) == "IBError: pacing violation"


def test_an_interrupted_step_reads_as_interrupted():
    from tt_platform.orchestration import error_message

    interrupted = _error("DagsterExecutionInterruptedError", "dagster._core.errors.DagsterExecutionInterruptedError\n")
    assert error_message(interrupted).startswith("interrupted")
