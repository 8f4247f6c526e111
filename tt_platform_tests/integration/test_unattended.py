"""The platform running itself, end to end: `tt ui` (dagster-webserver and dagster-daemon) on the
machine's PostgreSQL, a tick of the nightly schedule, the features automation sensor and the
run-failure alert firing, and the Dagster UI checked in headless Chromium.

How the schedule ticks. The nightly schedule fires at 18:30 New York on weekdays; a test cannot
wait for that, and a tick "now" would ingest whatever month today is. The test therefore runs
the daemon's own scheduler iteration (``launch_scheduled_runs``, what ``dagster-daemon``'s
scheduler calls every minute) with its clock set to just after the evening of a past session:
the schedule is switched on (``instance.start_schedule``, what the UI's toggle does) as of a
minute before that evening, the iteration evaluates the tick in the code location, records it,
creates the run with its run key and submits it to the instance's run queue. A second iteration
at Good Friday's evening records the skipped tick and its reason. The schedule's clock is then
set to the real time, so the daemon's scheduler does not catch up on the evenings since then.
This happens before `tt ui` starts: the daemon is not running yet, so the run waits QUEUED and
only the daemon's run queue can start it, and no scheduler iteration of the daemon can race the
rewound clock. The UI's "Test schedule" path (``scheduleDryRun`` and launching its requests) was
not used: it neither records a tick nor applies the run key.

The sensors are not driven at all: ``features_follow_bars`` (the automation condition sensor,
minimum interval 60 s) and ``run_failure_alert_sensor`` run in the daemon as deployed; the
failed run the alert is about is a tuning worker given an unusable run config, launched through
the UI's GraphQL API (it changes no asset of the lineage graph). The store already holds the four months before the session's month (written by the platform's
ingest, outside Dagster): the features of a month read that much history as their warm-up.

Environment: a temporary TT_HOME; the platform store and Dagster's storage in two fresh schemas
of TT_TEST_DATABASE_URL (dropped afterwards); TT_RUN_CONFIG a tiny synthetic run config; alerts
to a webhook on loopback. Set TT_LINEAGE_SCREENSHOT to a path to keep a copy of the lineage
screenshot (docs/images/lineage-graph.png is made that way).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import dagster._daemon  # noqa: F401 - dagster._scheduler imports fail unless the daemon package loads first
import pytest
import sqlalchemy as sa
from dagster._core.events import DagsterEventType
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_representation.external import RemoteSchedule
from dagster._core.scheduler.instigation import ScheduleInstigatorData, TickStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster._utils.error import SerializableErrorInfo

from tt_platform.config.run_config import load_run_config
from tt_platform.data.sources.factory import source_for
from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.pipeline.market_data import ingest_months
from tt_platform.runtime import REPO_ROOT, UiSetup, prepare_ui
from tt_platform.settings import PlatformSettings, get_settings
from tt_platform.store.engine import create_store_engine, ensure_schema
from tt_platform_tests.alerts import HttpReceiver, free_port, http_receiver
from tt_platform_tests.fixtures.db import REQUIRE_EXTERNAL_ENV, SchemaRegistry, _truthy
from tt_platform_tests.integration.dagster_ui import HeadlessChromium, graphql, server_answers, wait_until

TT = Path(sys.executable).with_name("tt")
SCREENSHOT_COPY_ENV = "TT_LINEAGE_SCREENSHOT"
# variables of the test harness itself, kept while everything else the platform reads is cleared
HARNESS_VARIABLES = {"TT_TEST_DATABASE_URL", REQUIRE_EXTERNAL_ENV, SCREENSHOT_COPY_ENV}

LOCATION = "tt_platform.definitions:defs"
REPOSITORY = "__repository__"
NEW_YORK = ZoneInfo("America/New_York")
SESSION = date(2024, 3, 15)  # a Friday, a regular NYSE session
HOLIDAY = date(2024, 3, 29)  # Good Friday
MONTH = "2024-03"
MONTH_SESSIONS = 20  # NYSE sessions in March 2024 (21 weekdays, Good Friday closed)
HISTORY_MONTHS = ["2023-11", "2023-12", "2024-01", "2024-02"]
SYMBOLS = ["AAA", "BBB", "CCC"]
RUN_CONFIG = """\
name: unattended
universe:
  symbols: [AAA, BBB, CCC]
data:
  source: synthetic
  start: 2024-01-02
  end: 2024-03-28
env:
  episode_length: 40
  window_size: 10
training:
  total_timesteps: 256
  n_envs: 1
  n_steps: 64
  batch_size: 32
"""

UI_START_SECONDS = 120
RUN_SECONDS = 300  # queued to finished, on a machine other test suites share
SENSOR_SECONDS = 240  # the automation sensor's 60 s interval, then its run
ALERT_SECONDS = 120
STOP_BUDGET_SECONDS = 10.0
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
SENSOR_TICKS = """
query Ticks($sensor: SensorSelector!) {
  sensorOrError(sensorSelector: $sensor) { ... on Sensor { sensorState { ticks(limit: 1) { status } } } }
}
"""
INSTIGATOR_STATES = """
{
  repositoryOrError(repositorySelector: {repositoryLocationName: "%s", repositoryName: "%s"}) {
    ... on Repository {
      schedules { name scheduleState { status } }
      sensors { name sensorState { status } }
    }
  }
}
""" % (LOCATION, REPOSITORY)


@dataclass(frozen=True)
class Deployment:
    """What the test set up: the variables a deployment sets, and what `tt ui` derives from them."""

    variables: dict[str, str]
    setup: UiSetup
    run_config_file: Path
    store_url: str
    webhook: HttpReceiver
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def chromium(external_database_url: str, tmp_path: Path) -> HeadlessChromium:
    executable = shutil.which("chromium")
    if executable is None:
        reason = "chromium is not on PATH: the Dagster UI cannot be loaded (Debian: apt-get install chromium; .ci/run installs it)"
        if _truthy(REQUIRE_EXTERNAL_ENV):
            pytest.fail(f"{reason} ({REQUIRE_EXTERNAL_ENV} is set, so this is a failure)")
        pytest.skip(reason)
    return HeadlessChromium(executable, tmp_path / "chromium-profile")


@pytest.fixture
def schema_urls(external_database_url: str, schema_registry: SchemaRegistry) -> Iterator[tuple[str, str]]:
    """URLs of two fresh schemas: the platform store's and Dagster's storage."""
    store_schema, store_url = schema_registry.create(external_database_url, prefix="tt_unattended_store")
    dagster_schema, dagster_url = schema_registry.create(external_database_url, prefix="tt_unattended_dagster")
    yield store_url, dagster_url
    for schema in (store_schema, dagster_schema):
        schema_registry.drop(external_database_url, schema)


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema_urls: tuple[str, str]) -> Iterator[Deployment]:
    store_url, dagster_url = schema_urls
    run_config_file = tmp_path / "unattended.yaml"
    run_config_file.write_text(RUN_CONFIG)
    port = free_port()
    with http_receiver() as webhook:
        variables = {
            "TT_HOME": str(tmp_path / "tt_home"),
            "TT_DB_URL": store_url,
            "TT_DAGSTER_PG_URL": dagster_url,
            "TT_RUN_CONFIG": str(run_config_file),
            # the months of the run config; the session's month among them
            "TT_PARTITION_START": "2024-01",
            "TT_ALERT_WEBHOOK_URL": f"{webhook.url}/alerts",
        }
        for name in list(os.environ):
            if name.startswith(("TT_", "DAGSTER_", "MLFLOW_")) and name not in HARNESS_VARIABLES:
                monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        # what `tt ui` does first; the test's own instance and code server read the same variables
        setup = prepare_ui(PlatformSettings())
        for name, value in setup.environment.items():
            monkeypatch.setenv(name, value)
        try:
            yield Deployment(variables, setup, run_config_file, store_url, webhook, port)
        finally:
            get_settings.cache_clear()


def store_history(deployment: Deployment) -> None:
    """The months before the session's month, written by the platform's ingest (not through
    Dagster): the warm-up the session month's features read."""
    config = load_run_config(deployment.run_config_file)
    engine = create_store_engine(deployment.store_url, poolclass=sa.pool.NullPool)
    try:
        ensure_schema(engine)
        with source_for(config.data) as source:
            result = ingest_months(engine, source, config.data, SYMBOLS, HISTORY_MONTHS, last_session=date(2024, 2, 29))
        assert result.complete, result.incomplete_reasons()
    finally:
        engine.dispose()


def evening(day: date) -> datetime:
    """The nightly schedule's tick on ``day``: 18:30 New York."""
    return datetime.combine(day, clock_time(18, 30), tzinfo=NEW_YORK)


def set_schedule_clock(instance: dg.DagsterInstance, schedule: RemoteSchedule, on_since: float,
                       last_iteration: float | None = None) -> None:
    """The running schedule's state as if it had been switched on at ``on_since`` (and last
    evaluated at ``last_iteration``): the scheduler evaluates the ticks after that."""
    state = instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
    assert state is not None and state.is_running
    data = ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=on_since, last_iteration_timestamp=last_iteration)
    instance.update_instigator_state(state.with_data(data))


def scheduler_iteration(workspace: WorkspaceProcessContext, now: datetime) -> None:
    """One iteration of the daemon's scheduler, its clock reading ``now``."""
    logger = logging.getLogger("tt_platform_tests.scheduler")
    results = launch_scheduled_runs(workspace, logger, end_datetime_utc=now.astimezone(timezone.utc), iteration_times={})
    errors = [result for result in results if isinstance(result, SerializableErrorInfo)]
    assert not errors, [error.to_string() for error in errors]


def tick_nightly_schedule(instance: dg.DagsterInstance, workspace: WorkspaceProcessContext) -> list:
    """Switch the nightly schedule on and let the scheduler tick on the session's evening and on
    Good Friday's; the ticks, newest first."""
    location = workspace.create_request_context().get_code_location(LOCATION)
    schedule = location.get_repository(REPOSITORY).get_schedule("nightly_bars")
    instance.start_schedule(schedule)
    set_schedule_clock(instance, schedule, on_since=(evening(SESSION) - timedelta(minutes=1)).timestamp())
    scheduler_iteration(workspace, evening(SESSION) + timedelta(minutes=1))
    scheduler_iteration(workspace, evening(HOLIDAY) + timedelta(minutes=1))
    # from now on the schedule runs on the real clock: the daemon does not catch up on March 2024
    now = time.time()
    set_schedule_clock(instance, schedule, on_since=now, last_iteration=now)
    return list(instance.get_ticks(schedule.get_remote_origin_id(), schedule.selector_id, limit=10))


def wait_for_run(instance: dg.DagsterInstance, run_id: str, timeout: float, log: Path) -> dg.DagsterRun:
    assert wait_until(lambda: instance.get_run_by_id(run_id).status in FINISHED, timeout, 2.0), (
        f"run {run_id} is still {instance.get_run_by_id(run_id).status.value} after {timeout:.0f} s; "
        f"tt ui's log ends with:\n{tail(log)}"
    )
    return instance.get_run_by_id(run_id)


def run_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """The error messages of a run's failed steps (empty for a run without any)."""
    failures = instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})
    messages = []
    for entry in failures:
        event = entry.dagster_event
        error = event.step_failure_data.error if event.is_step_failure else None
        messages.append(f"{event.step_key}: {error.message.strip()}" if error else event.message or "")
    return "; ".join(messages)


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"


def materialization_metadata(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"no materialization of {asset} {partition}"
    return {key: getattr(value, "value", value) for key, value in records[0].asset_materialization.metadata.items()}


def failing_run_config(deployment: Deployment) -> dict:
    """The deployment's run config with a CSV source that names no folder: a tuning worker
    rejects it before it starts, so its run fails (and no asset of the lineage graph changes)."""
    run_config = dagster_run_config(load_run_config(deployment.run_config_file))
    run_config["resources"]["run_config"]["config"]["data"].update(source="csv", csv_dir=None)
    return json.loads(json.dumps(run_config))


def run_failure_alerts(webhook: HttpReceiver) -> list:
    return [request for request in webhook.requests if str(request.body.get("title", "")).startswith("Run failed")]


def stop(ui: subprocess.Popen) -> float:
    """SIGTERM to `tt ui`, which must exit with code 0; the seconds that took."""
    started = time.monotonic()
    ui.send_signal(signal.SIGTERM)
    assert ui.wait(timeout=STOP_BUDGET_SECONDS + 5) == 0
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_schedules_and_sensors_run_the_platform_and_the_ui_shows_it(
    deployment: Deployment, chromium: HeadlessChromium, tmp_path: Path
):
    store_history(deployment)
    # tt ui marks Dagster's community sign-up dialog as seen: it would cover the screenshots
    assert (deployment.setup.dagster_home / ".nux" / "nux.yaml").is_file()

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(deployment.setup.dagster_home)))
    log = tmp_path / "tt-ui.log"
    ui: subprocess.Popen | None = None
    try:
        # --- a tick of the nightly schedule, through the daemon's scheduler ----------------------
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(deployment.setup.workspace)])) as workspace:
            holiday_tick, session_tick = tick_nightly_schedule(instance, workspace)
        assert holiday_tick.status == TickStatus.SKIPPED
        assert holiday_tick.skip_reason == "2024-03-29 (Friday) is not a NYSE session (holiday: Good Friday)"
        assert session_tick.status == TickStatus.SUCCESS, session_tick.error
        assert session_tick.timestamp == evening(SESSION).timestamp()
        assert session_tick.run_keys == [f"nightly-bars:{SESSION}"]
        (nightly_run_id,) = session_tick.run_ids
        queued = instance.get_run_by_id(nightly_run_id)
        # nothing but the daemon's run queue starts it
        assert queued.status == dg.DagsterRunStatus.QUEUED
        assert queued.job_name == "main_job"
        assert queued.asset_selection == {dg.AssetKey("watchlist"), dg.AssetKey("bars")}
        named = ("dagster/schedule_name", "dagster/run_key", "tt/session", "dagster/partition")
        assert {key: queued.tags.get(key) for key in named} == {
            "dagster/schedule_name": "nightly_bars",
            "dagster/run_key": f"nightly-bars:{SESSION}",
            "tt/session": str(SESSION),
            "dagster/partition": MONTH,
        }

        # --- tt ui: webserver and daemon on this instance ----------------------------------------
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_", "MLFLOW_"))} | deployment.variables
        with log.open("w") as out:
            ui = subprocess.Popen(
                [str(TT), "ui", "--port", str(deployment.port)], cwd=REPO_ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        base = deployment.base_url
        assert wait_until(lambda: ui.poll() is not None or server_answers(base), UI_START_SECONDS), tail(log)
        assert ui.poll() is None, tail(log)

        # a run that fails, launched as the UI's Launchpad does, once the failure sensor has
        # ticked (its first tick starts from the runs that exist then)
        def failure_sensor_ticked() -> bool:
            sensor = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": "run_failure_alert_sensor"}
            answer = graphql(base, SENSOR_TICKS, {"sensor": sensor})["sensorOrError"]
            return bool(answer.get("sensorState", {}).get("ticks"))

        assert wait_until(failure_sensor_ticked, UI_START_SECONDS, 2.0), tail(log)
        launched = graphql(base, LAUNCH_RUN, {"params": {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": "tuning_worker_job"},
            "runConfigData": failing_run_config(deployment),
        }})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        failing_run_id = launched["run"]["runId"]

        # --- the scheduled run, started by the daemon --------------------------------------------
        nightly = wait_for_run(instance, nightly_run_id, RUN_SECONDS, log)
        assert nightly.status == dg.DagsterRunStatus.SUCCESS, run_failure(instance, nightly_run_id)
        assert instance.get_materialized_partitions(dg.AssetKey("bars")) == {MONTH}
        assert materialization_metadata(instance, "bars", MONTH)["rows"] == len(SYMBOLS) * MONTH_SESSIONS
        engine = create_store_engine(deployment.store_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                stored = dict(conn.execute(sa.text(
                    "select instrument, count(*) from tt_prices where interval = '1d' "
                    "and ts >= '2024-03-01' and ts < '2024-04-01' group by instrument"
                )).all())
        finally:
            engine.dispose()
        assert stored == {symbol: MONTH_SESSIONS for symbol in SYMBOLS}

        # --- the failed run raises one alert on the webhook ---------------------------------------
        failed = wait_for_run(instance, failing_run_id, RUN_SECONDS, log)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        assert wait_until(lambda: run_failure_alerts(deployment.webhook), ALERT_SECONDS, 2.0), (
            f"no alert for run {failing_run_id} on the webhook; tt ui's log ends with:\n{tail(log)}"
        )

        # --- the automation sensor follows the bars with their features --------------------------
        def features_runs() -> list[dg.DagsterRun]:
            return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "features_follow_bars"})))

        assert wait_until(lambda: any(run.status in FINISHED for run in features_runs()), SENSOR_SECONDS, 2.0), (
            f"features_follow_bars started no run that finished within {SENSOR_SECONDS} s of the bars: "
            f"{[(run.run_id, run.status.value) for run in features_runs()]}; tt ui's log ends with:\n{tail(log)}"
        )
        (features_run,) = features_runs()
        assert features_run.status == dg.DagsterRunStatus.SUCCESS, run_failure(instance, features_run.run_id)
        assert features_run.tags.get("dagster/partition") == MONTH
        assert instance.get_materialized_partitions(dg.AssetKey("features")) == {MONTH}
        assert materialization_metadata(instance, "features", MONTH)["rows"] == len(SYMBOLS) * MONTH_SESSIONS

        # --- the instance's automation, as the UI's GraphQL reports it ---------------------------
        repository = graphql(base, INSTIGATOR_STATES)["repositoryOrError"]
        states = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
        states |= {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
        assert states == {
            "nightly_bars": "RUNNING",
            "weekly_retrain": "STOPPED",
            "features_follow_bars": "RUNNING",
            "walk_forward_new_policies": "RUNNING",
            "walk_forward_folds": "RUNNING",
            "run_failure_alert_sensor": "RUNNING",
            "data_gap_sensor": "RUNNING",
        }

        # --- the UI in headless Chromium ---------------------------------------------------------
        pages = tmp_path / "ui"
        pages.mkdir()
        groups = ",".join(f"global@global:{group}" for group in ("market_data", "research"))
        lineage_url = f"{base}/asset-groups?expanded={urllib.parse.quote(groups)}"
        assets = ["watchlist", "bars", "features", "trained_policy", "evaluation_report", "walk_forward_plan"]
        lineage = chromium.text(lineage_url, pages, "lineage", ["market_data", "research", *assets])
        missing = [name for name in ["market_data", "research", *assets] if name not in lineage]
        assert not missing, f"the lineage graph lacks {missing}: {lineage[:2000]}"
        screenshot = chromium.screenshot(lineage_url, pages / "lineage-graph.png")
        if os.environ.get(SCREENSHOT_COPY_ENV):
            target = Path(os.environ[SCREENSHOT_COPY_ENV])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, target)

        check_names = [spec.name for spec in BAR_CHECK_SPECS]
        assert {"coverage", "ohlc_sanity"} <= set(check_names)
        checks = chromium.text(f"{base}/assets/bars?view=checks", pages, "bars-checks", [*check_names, "Succeeded"])
        unshown = [name for name in check_names if not re.search(rf"\b{name}\b(?: {name})? Succeeded\b", checks)]
        assert not unshown, f"the bars checks page does not show these checks as succeeded: {unshown}: {checks[:2000]}"
        chromium.screenshot(f"{base}/assets/bars?view=checks", pages / "bars-checks.png")

        automations = ["nightly_bars", "weekly_retrain", "features_follow_bars", "walk_forward_new_policies",
                       "walk_forward_folds", "run_failure_alert_sensor", "data_gap_sensor"]
        automation = chromium.text(f"{base}/automation", pages, "automation", automations)
        missing = [name for name in automations if name not in automation]
        assert not missing, f"the automation page lacks {missing}: {automation[:2000]}"
        assert "No automations" not in automation
        chromium.screenshot(f"{base}/automation", pages / "automation.png")

        run_ids = [nightly_run_id[:8], features_run.run_id[:8], failing_run_id[:8]]
        runs = chromium.text(f"{base}/runs", pages, "runs", [*run_ids, "nightly_bars", "features_follow_bars"])
        missing = [item for item in [*run_ids, "nightly_bars", "features_follow_bars"] if item not in runs]
        assert not missing, f"the runs page lacks {missing}: {runs[:2000]}"
        chromium.screenshot(f"{base}/runs", pages / "runs.png")

        # --- stop: SIGTERM, and everything is gone within 10 s -----------------------------------
        took = stop(ui)
        assert took < STOP_BUDGET_SECONDS, f"tt ui took {took:.1f} s to stop"
        assert not server_answers(base)
    finally:
        if ui is not None and ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait(timeout=10)
        instance.dispose()

    # exactly one alert, for the failed run, although the sensor ticked again since
    alerts = run_failure_alerts(deployment.webhook)
    assert len(alerts) == 1, [alert.body for alert in alerts]
    alert = alerts[0].body
    assert alerts[0].path == "/alerts"
    assert alert["title"] == "Run failed: tuning_worker_job"
    assert alert["fields"]["run_id"] == failing_run_id
    assert "csv_dir" in alert["message"]
    # TT_UI_URL is unset: tt ui tells the daemon which port it serves
    assert alert["link"] == f"{deployment.base_url}/runs/{failing_run_id}"
