"""The nightly ingest after the US close and the weekly retraining.

The nightly schedule asks the exchange calendar itself rather than building on
``build_schedule_from_partitioned_job``: over partitions with holiday exclusions that helper
requests an incomplete partition on the excluded tick and then skips the next real session.
Each session maps to the month partition holding it (bars are monthly; a month is materialized
again as its sessions arrive) and to a run key naming the session, so a tick is never run twice.
Features follow bars through their automation condition, so the nightly run selects the
watchlist and bars only.

Both schedules run the deployment's run config (the built-in defaults until a deployment names
its own run-config file).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import dagster as dg
import pandas as pd

from tt_platform.defs.platform.resources import dagster_run_config, deployment_config
from tt_platform.pipeline.automation import (
    EARLY_CLOSE_TAG,
    KIND_TAG,
    SESSION_TAG,
    WEEK_TAG,
    check_session,
    iso_week,
    nightly_run_key,
    retrain_run_key,
)

EXCHANGE_TIMEZONE = "America/New_York"
# the job the nightly ingest runs (defined with the platform's other jobs)
MAIN_JOB_NAME = "main_job"
NIGHTLY_ASSETS = [dg.AssetKey("watchlist"), dg.AssetKey("bars")]

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets("trained_policy", "evaluation_report"),
    tags={KIND_TAG: "training"},
    description="Train a policy on the stored features and evaluate it out of sample (the weekly retraining).",
)


def deployment_run_config() -> dict[str, Any]:
    """The Dagster run config scheduled runs get: the deployment's (TT_RUN_CONFIG, else the
    built-in one), read at each tick, ``data.end`` left to resolve to the last completed session
    when each run is created."""
    return dagster_run_config(deployment_config())


def scheduled_day(context: dg.ScheduleEvaluationContext) -> date:
    """The tick's date in New York (a test context without a time means now)."""
    when = context.scheduled_execution_time or datetime.now().astimezone()
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize(EXCHANGE_TIMEZONE) if stamp.tzinfo is None else stamp.tz_convert(EXCHANGE_TIMEZONE)
    return stamp.date()


@dg.schedule(
    name="nightly_bars",
    cron_schedule="30 18 * * 1-5",
    execution_timezone=EXCHANGE_TIMEZONE,
    job_name=MAIN_JOB_NAME,
    description=(
        "After the US close (18:30 New York, Monday to Friday): when the day was an NYSE session "
        "(half days included), ingest the watchlist and that session's month of bars for every "
        "active symbol; on a weekend or holiday the tick is skipped, naming the holiday. One run "
        "per session (run key nightly-bars:<date>); features follow bars by their automation "
        "condition. Missing history is filled by a Dagster backfill over a range of months "
        "(Materialize > partitions in the UI), which runs as one run."
    ),
)
def nightly_bars(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    session = check_session(scheduled_day(context))
    if not session.is_session:
        return dg.SkipReason(session.reason)
    tags = {SESSION_TAG: session.day.isoformat(), KIND_TAG: "ingest"}
    if session.early_close is not None:
        tags[EARLY_CLOSE_TAG] = session.early_close.strftime("%H:%M")
    return dg.RunRequest(
        run_key=nightly_run_key(session.day),
        run_config=deployment_run_config(),
        tags=tags,
        asset_selection=NIGHTLY_ASSETS,
        partition_key=session.partition_key,
    )


@dg.schedule(
    name="weekly_retrain",
    cron_schedule="0 6 * * 6",
    execution_timezone=EXCHANGE_TIMEZONE,
    job=retrain_job,
    description=(
        "Saturday 06:00 New York: train a policy on the features through the week's last session "
        "and evaluate it out of sample; one run per ISO week (run key retrain:<year>-W<week>). "
        "The new policy's walk-forward follows (sensor walk_forward_new_policies)."
    ),
)
def weekly_retrain(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = scheduled_day(context)
    return dg.RunRequest(
        run_key=retrain_run_key(day),
        run_config=deployment_run_config(),
        tags={WEEK_TAG: iso_week(day)},
    )
