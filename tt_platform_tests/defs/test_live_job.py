"""The live_session job: tags the instance's queue acts on, never retried, a Launchpad config that
is the session file's, and a fail-fast refusal beside a running session on the same account."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest

from tt_platform.live.config import LIVE_OP, parse_live_config
from tt_platform.settings import get_settings


@pytest.fixture
def jobs_module(monkeypatch):
    monkeypatch.setenv("IB_ACCOUNT", "DU9876543")
    get_settings.cache_clear()
    import tt_platform.defs.live.jobs as jobs

    yield importlib.reload(jobs)  # the job's tags are read from the settings when it is defined
    get_settings.cache_clear()
    importlib.reload(jobs)


def test_live_job_tags_mask_the_account_and_forbid_retries(jobs_module):
    tags = jobs_module.live_session_job.tags
    assert tags == {"tt/kind": "live", "tt/ib_account": "DU…6543", "dagster/max_retries": "0"}
    assert "9876543" not in str(jobs_module.live_session_job.run_tags)


def test_the_launchpad_config_of_the_op_is_the_session_file(jobs_module):
    defaults = jobs_module.LiveSessionOpConfig()
    from tt_platform.config.dagster import config_values
    from tt_platform.live.config import LiveSessionConfig

    values = config_values(defaults, LiveSessionConfig)
    assert parse_live_config({"ops": {LIVE_OP: {"config": values}}}) == LiveSessionConfig()
    assert set(values) == set(LiveSessionConfig.model_fields)


def test_a_second_session_on_the_same_account_fails_fast(jobs_module):
    with dg.instance_for_test() as instance:
        # a session already running on the account, as the queue would otherwise have held back
        running = instance.create_run_for_job(
            jobs_module.live_session_job, run_config={"ops": {LIVE_OP: {"config": {}}}},
            tags=jobs_module.live_session_job.tags)
        instance.handle_run_event(running.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name="live_session", message="started"))
        assert instance.get_run_by_id(running.run_id).status == dg.DagsterRunStatus.STARTED
        result = jobs_module.live_session_job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {LIVE_OP: {"config": {}}}},
            resources={"platform": _NoPlatform(), "mlflow": _NoMlflow()})
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.description == (
        f"live_session: another session is running on IB account DU…6543 (run {running.run_id}); stop it first")


class _NoPlatform(dg.ConfigurableResource):
    def engine(self):  # the check comes first: reaching the store would be a bug
        raise AssertionError("the store must not be opened beside a running session")


class _NoMlflow(dg.ConfigurableResource):
    def tracker(self):
        raise AssertionError("MLflow must not be asked beside a running session")


def test_a_session_whose_worker_was_killed_no_longer_holds_the_account(jobs_module):
    """A killed run worker never ends its run: the next session marks that run failed (its
    worker's process is gone from this machine) instead of refusing to start beside it."""
    import socket
    import subprocess
    import sys

    from tt_platform.pipeline.recovery import HOST_TAG, PID_TAG

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = gone.stdout.strip()
    with dg.instance_for_test() as instance:
        killed = instance.create_run_for_job(
            jobs_module.live_session_job, run_config={"ops": {LIVE_OP: {"config": {}}}},
            tags=jobs_module.live_session_job.tags | {HOST_TAG: socket.gethostname(), PID_TAG: dead_pid})
        instance.handle_run_event(killed.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name="live_session", message="started"))
        result = jobs_module.live_session_job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {LIVE_OP: {"config": {}}}},
            resources={"platform": _StopAtTheStore(), "mlflow": _NoMlflow()})
        marked = instance.get_run_by_id(killed.run_id)
        assert marked.status == dg.DagsterRunStatus.FAILURE
        assert HOST_TAG in instance.get_run_by_id(result.run_id).tags
    # past the account check: it stopped where the store is opened
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "reached the store" in failure.error.cause.message


class _StopAtTheStore(dg.ConfigurableResource):
    def engine(self):
        raise RuntimeError("reached the store")
