"""Runs started by ``tt`` are runs of the workspace's code location, as the webserver sees them.

Each test gets its own Dagster instance (a temporary DAGSTER_HOME on SQLite) and TT_HOME; the
platform store is the session's PostgreSQL schema. The workspace is the repository's
workspace.yaml, loaded with Dagster's own workspace loading (which starts its code server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import GRPC_INFO_TAG, REPOSITORY_LABEL_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.config.run_config import load_run_config
from tt_platform.definitions import defs
from tt_platform.defs.platform.resources import dagster_run_config, dagster_run_config_yaml
from tt_platform.runtime import REPO_ROOT
from tt_platform.settings import get_settings

WORKSPACE = REPO_ROOT / "workspace.yaml"

PLATFORM_YAML = """
name: equivalence
universe:
  symbols: [AAA, BBB]
data:
  source: synthetic
  start: 2021-01-04
  end: 2021-02-26
  seed: 11
"""

DAGSTER_YAML = """
storage:
  sqlite:
    base_dir: {home}/storage
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}/artifacts
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
telemetry:
  enabled: false
"""


@pytest.fixture
def dagster_home(tmp_path, monkeypatch, store_url) -> Path:
    """A temporary instance and TT_HOME. Every variable ``tt`` derives is set here first, so
    nothing ``tt`` puts in the environment outlives the test. Deployment settings the
    definitions read (TT_PARTITION_START) stay as they are: the code server started below
    inherits them, as the webserver's does."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home))
    env = {
        "DAGSTER_HOME": str(home),
        "TT_HOME": str(tmp_path / "tt_home"),
        "TT_DB_URL": store_url,
        "TT_DAGSTER_PG_URL": "unused-the-test-instance-is-sqlite",
        "TT_DAGSTER_STORAGE": str(home / "artifacts"),
        "TT_DAGSTER_COMPUTE_LOGS": str(home / "compute_logs"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _platform_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(PLATFORM_YAML)
    return path


def _tt(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _only_run(instance: dg.DagsterInstance, **filters) -> dg.DagsterRun:
    runs = instance.get_runs(filters=RunsFilter(**filters))
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0]


def _watchlist_config_hash(instance: dg.DagsterInstance, run_id: str) -> str:
    materializations = [
        e.dagster_event.step_materialization_data.materialization
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    ]
    watchlist = [m for m in materializations if m.asset_key == dg.AssetKey("watchlist")]
    assert len(watchlist) == 1, materializations
    return watchlist[0].metadata["config_hash"].value


def test_tt_run_is_a_run_of_the_workspace_code_location(tmp_path, dagster_home):
    config = _platform_yaml(tmp_path)
    result = _tt("ingest", "--config", str(config))
    assert result.exit_code == 0, result.output
    # progress while it ran, then the outcome
    assert "bars: started" in result.output and "bars: done in" in result.output
    assert "watchlist: done in" in result.output

    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance, job_name="main_job")
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["tt/config_hash"] == load_run_config(config).config_hash
        assert run.tags["tt/mode"] == "backtest"
        # the process that executed it, so a later tt can tell a killed run from a live one
        assert run.tags["tt/pid"] == str(os.getpid()) and run.tags["tt/host"]
        assert run.tags["dagster/asset_partition_range_start"] == "2021-01"
        assert run.tags["dagster/asset_partition_range_end"] == "2021-02"
        assert run.asset_selection == {dg.AssetKey("watchlist"), dg.AssetKey("bars")}

        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)])) as workspace:
            context = workspace.create_request_context()
            assert context.get_code_location_error(run.remote_job_origin.location_name) is None
            location = context.get_code_location(run.remote_job_origin.location_name)
            repository = location.get_repository(run.remote_job_origin.repository_origin.repository_name)
            job = repository.get_full_job("main_job")
            # what the webserver would record materializing the same assets from the UI
            subset = location.get_job(
                JobSubsetSelector(
                    location_name=location.name,
                    repository_name=repository.name,
                    job_name="main_job",
                    op_selection=None,
                    asset_selection=run.asset_selection,
                )
            )
            assert run.remote_job_origin.location_name == location.name
            assert run.remote_job_origin == job.get_remote_origin()
            assert run.job_snapshot_id == subset.computed_job_snapshot_id
            # the UI matches re-execution on the parent snapshot of a subset run
            parent = instance.get_job_snapshot(run.job_snapshot_id).lineage_snapshot.parent_snapshot_id
            assert parent == job.computed_job_snapshot_id
            # and lists the run under the job of that repository (Jobs, Overview)
            label = repository.get_remote_origin().get_label()
            listed = instance.get_runs(filters=RunsFilter(job_name="main_job", tags={REPOSITORY_LABEL_TAG: label}))
            assert [r.run_id for r in listed] == [run.run_id]


def test_failed_run_exits_nonzero_with_root_cause_last(tmp_path, dagster_home):
    missing = tmp_path / "no-such-folder"
    result = _tt(
        "ingest", "--source", "csv", "--csv-dir", str(missing), "--symbols", "AAA",
        "--start", "2021-01-04", "--end", "2021-01-29",
    )
    assert result.exit_code not in (0, 2), result.output
    last = result.output.strip().splitlines()[-1]
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance, job_name="main_job")
    assert run.status == DagsterRunStatus.FAILURE
    assert last.startswith(f"run {run.run_id} failed: bars: "), last
    assert str(missing) in last
    assert "DagsterExecutionStepExecutionError" not in last and "Error occurred while executing" not in last


def _wait_for_run(instance: dg.DagsterInstance, job_name: str, timeout: float) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(job_name=job_name))
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"no finished {job_name} run after {timeout} s")


def _stop_code_server(run: dg.DagsterRun) -> None:
    """The code server ``dagster job launch`` spawned outlives it: stop it now."""
    from dagster._grpc.client import DagsterGrpcClient

    info = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
    if info:
        try:
            DagsterGrpcClient(port=info.get("port"), socket=info.get("socket"), host=info.get("host", "localhost")).shutdown_server()
        except Exception:  # noqa: BLE001 - it may be gone already
            pass


def test_launchpad_launch_and_tt_record_the_same_config_hash(tmp_path, dagster_home):
    platform_yaml = _platform_yaml(tmp_path)
    config = load_run_config(platform_yaml)
    hashes = {}

    # (a) the Launchpad's way: the job with the run config as Dagster config
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("universe_job").execute_in_process(
            run_config=dagster_run_config(config), instance=instance
        )
        assert result.success
        hashes["launchpad"] = _watchlist_config_hash(instance, result.run_id)

    # (b) `dagster job launch` in its own process, on the instance of DAGSTER_HOME
    launch_config = tmp_path / "launch.yaml"
    launch_config.write_text(dagster_run_config_yaml(config))
    log = tmp_path / "dagster-job-launch.log"
    dagster_cli = Path(sys.executable).with_name("dagster")
    with log.open("w") as out:
        launched = subprocess.run(
            [str(dagster_cli), "job", "launch", "-w", str(WORKSPACE), "-j", "universe_job", "-c", str(launch_config)],
            cwd=REPO_ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300,
        )
    assert launched.returncode == 0, log.read_text()[-3000:]
    with dg.DagsterInstance.get() as instance:
        run = _wait_for_run(instance, "universe_job", timeout=300)
        _stop_code_server(run)
        assert run.status == DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
        hashes["dagster job launch"] = _watchlist_config_hash(instance, run.run_id)

    # (c) tt
    result = _tt("ingest", "--config", str(platform_yaml))
    assert result.exit_code == 0, result.output
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance, job_name="main_job")
        hashes["tt"] = _watchlist_config_hash(instance, run.run_id)

    assert set(hashes.values()) == {config.config_hash}, hashes


def test_a_run_left_started_by_a_killed_tt_is_marked_failed_by_the_next_tt(tmp_path, dagster_home):
    from dagster._core.test_utils import create_run_for_test

    from tt_platform.pipeline.recovery import PID_TAG, run_worker_tags

    config = _platform_yaml(tmp_path)
    with dg.DagsterInstance.get() as instance:
        dead = subprocess.Popen(["true"])
        dead.wait()
        tags = run_worker_tags() | {PID_TAG: str(dead.pid)}

        left = create_run_for_test(instance, job_name="main_job", tags=tags, status=DagsterRunStatus.STARTED)
    result = _tt("ingest", "--config", str(config))
    assert result.exit_code == 0, result.output
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(left.run_id).status == DagsterRunStatus.FAILURE
    assert left.run_id[:8] in result.output


WALK_FORWARD_YAML = """
name: folds-side-by-side
universe:
  symbols: [AAA, BBB]
data:
  source: synthetic
  start: 2020-01-02
  end: 2020-12-31
  seed: 11
env:
  window_size: 5
  episode_length: 40
training:
  total_timesteps: 128
  n_steps: 64
  batch_size: 32
  n_envs: 1
  eval_episode: false
evaluation:
  walk_forward:
    scheme: rolling
    train_bars: 100
    min_train_bars: 80
    test_bars: 40
    purge_bars: 2
    max_folds: 3
"""


def test_walk_forward_workers_run_folds_side_by_side_as_their_own_dagster_runs(tmp_path, dagster_home):
    config = tmp_path / "wf.yaml"
    config.write_text(WALK_FORWARD_YAML)
    assert _tt("ingest", "--config", str(config)).exit_code == 0
    result = _tt("walk-forward", "--config", str(config), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "3 folds, 2 at a time" in result.output
    for number in (1, 2, 3):
        assert f"fold {number}/3 done:" in result.output

    with dg.DagsterInstance.get() as instance:
        keys = instance.get_dynamic_partitions("walk_forward_folds")
        assert len(keys) == 3
        fold_runs = [r for r in instance.get_runs(filters=RunsFilter(job_name="walk_forward_job"))
                     if r.tags.get("dagster/partition")]
        # one recorded run per fold, each executed by a worker process, not by this one
        assert sorted(r.tags["dagster/partition"] for r in fold_runs) == sorted(keys)
        assert all(r.status == DagsterRunStatus.SUCCESS for r in fold_runs)
        # the instance's run queue counts them: a queued training waits while they run
        assert {r.tags.get("tt/kind") for r in fold_runs} == {"training"}
        worker_pids = {r.tags["tt/pid"] for r in fold_runs}
        assert str(os.getpid()) not in worker_pids and 1 <= len(worker_pids) <= 2
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("fold_evaluation"))) == sorted(keys)
        report = instance.fetch_materializations(dg.AssetKey("walk_forward_report"), limit=1).records
        assert len(report) == 1
