"""The nightly ingest and the weekly retraining: what each tick asks for, and that it runs."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from tt_platform.defs.automation import JOBS, SCHEDULES, SENSORS
from tt_platform.defs.automation.schedules import nightly_bars, weekly_retrain
from tt_platform_tests.pipeline.test_whole_graph import platform_env  # noqa: F401 - fixture

NEW_YORK = ZoneInfo("America/New_York")


def platform_definitions() -> dg.Definitions:
    """The platform's assets, resources and jobs with the automation's schedules, sensors and jobs."""
    from tt_platform.definitions import defs

    own = {job.name for job in JOBS}
    jobs = [job for job in defs.jobs or [] if job.name not in own] + JOBS
    return dg.Definitions(assets=defs.assets, resources=defs.resources, jobs=jobs, schedules=SCHEDULES, sensors=SENSORS)


def tick(schedule: dg.ScheduleDefinition, when: datetime, instance: dg.DagsterInstance | None = None):
    """What ``schedule`` returns for a tick scheduled at ``when`` (New York time)."""
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when.replace(tzinfo=NEW_YORK))
    return schedule(context)


def test_the_automation_loads_with_the_platform():
    defs = platform_definitions()
    dg.Definitions.validate_loadable(defs)
    nightly = defs.resolve_schedule_def("nightly_bars")
    assert (nightly.cron_schedule, nightly.execution_timezone, nightly.job_name) == ("30 18 * * 1-5", "America/New_York", "main_job")
    weekly = defs.resolve_schedule_def("weekly_retrain")
    assert (weekly.cron_schedule, weekly.job_name) == ("0 6 * * 6", "retrain_job")
    assert "backfill" in nightly.description  # how missing history is filled


def test_a_holiday_is_skipped_naming_it():
    result = tick(nightly_bars, datetime(2024, 7, 4, 18, 30))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "2024-07-04 (Thursday) is not a NYSE session (holiday: July 4th)"


def test_a_weekend_is_skipped():
    result = tick(nightly_bars, datetime(2024, 7, 6, 18, 30))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "2024-07-06 is a Saturday: not a NYSE session"


def test_a_half_day_runs_its_month():
    request = tick(nightly_bars, datetime(2024, 11, 29, 18, 30))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "nightly-bars:2024-11-29"
    assert request.partition_key == "2024-11"
    assert request.tags["tt/session"] == "2024-11-29" and request.tags["tt/early_close"] == "13:00"


def test_a_session_requests_watchlist_and_bars_of_its_month():
    defs = platform_definitions()
    request = tick(nightly_bars, datetime(2024, 7, 8, 18, 30))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "nightly-bars:2024-07-08"
    assert request.partition_key == "2024-07"
    assert request.asset_selection == [dg.AssetKey("watchlist"), dg.AssetKey("bars")]
    assert request.tags == {"tt/session": "2024-07-08", "tt/kind": "ingest"}
    job = defs.resolve_job_def("main_job")
    assert dg.validate_run_config(job, request.run_config)
    assert job.partitions_def.has_partition_key(request.partition_key)
    # the tick is evaluated again (a daemon restart): the same run key, so Dagster runs it once
    assert tick(nightly_bars, datetime(2024, 7, 8, 18, 30)).run_key == request.run_key


def test_the_weekly_retrain_runs_once_per_iso_week():
    defs = platform_definitions()
    request = tick(weekly_retrain, datetime(2024, 7, 6, 6, 0))
    assert request.run_key == "retrain:2024-W27"
    assert request.tags == {"tt/week": "2024-W27"}
    job = defs.resolve_job_def("retrain_job")
    assert job.tags["tt/kind"] == "training"  # the instance's one-training-at-a-time limit applies
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {"trained_policy", "evaluation_report"}
    assert dg.validate_run_config(job, request.run_config)
    assert tick(weekly_retrain, datetime(2024, 7, 13, 6, 0)).run_key == "retrain:2024-W28"


def test_the_nightly_request_materializes_the_sessions_month(platform_env):
    defs = platform_definitions()
    request = tick(nightly_bars, datetime(2024, 7, 8, 18, 30))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("main_job").execute_in_process(
            instance=instance,
            run_config=request.run_config,
            tags=request.tags,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            raise_on_error=False,
        )
        assert result.success, [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
        assert instance.get_materialized_partitions(dg.AssetKey("bars")) == {"2024-07"}
        assert instance.get_latest_materialization_event(dg.AssetKey("features")) is None  # left to its condition
        record = instance.fetch_materializations(dg.AssetKey("bars"), limit=1).records[0]
        # the deployment's default universe (5 symbols) x the 22 sessions of July 2024
        assert record.asset_materialization.metadata["rows"].value == 5 * 22
