"""Alerts as Dagster sensors: a failed run, and bars that stopped arriving during a session.

Both send through the notifier the environment configures (``tt_platform.alerts``): the sensor's
tick log always, plus a webhook, email or Telegram. A channel that fails is logged as a warning
and never fails the tick. Neither sensor talks to IB: the data-gap sensor reads the store only,
under a statement timeout, so a tick ends well inside Dagster's 60 s sensor limit.
"""

from __future__ import annotations

import logging

import dagster as dg
import pandas as pd
import psycopg2.errors
import sqlalchemy as sa
from dagster._core.events import DagsterEventType
from pydantic import ValidationError

from tt_platform.alerts.gaps import alerts_for, find_stale_series, interval_length, read_gap_cursor, write_gap_cursor
from tt_platform.alerts.notifiers import Alert, AlertConfigError, CompositeNotifier, LogNotifier, notifier_from_settings
from tt_platform.alerts.settings import AlertSettings
from tt_platform.defs.platform.resources import PlatformResource
from tt_platform.orchestration import failure_reason
from tt_platform.store.bar_freshness import last_bar_times, limit_statement_time
from tt_platform.store.engine import connection_failure, create_store_engine, database_url
from tt_platform.store.registry import latest_watchlist

GAP_CHECK_SECONDS = 300
# connecting (10 s) and querying (10 s) leave most of the 60 s a sensor tick may take to the
# channels (about 20 s at most, sent side by side)
CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 10
# symbols named in a data-gap alert's title; the text lists every stale series
TITLE_SYMBOLS = 5


def current_time() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def alert_notifier(tick_log: logging.Logger) -> tuple[AlertSettings, CompositeNotifier]:
    """The configured channels, logging to the process log and to the sensor's tick log. Bad
    alert settings are reported (names and reasons, never values) and the alert still reaches the
    log: a typo in one variable must not silence every alert."""
    try:
        settings = AlertSettings()
        return settings, notifier_from_settings(settings, tick_log)
    except (ValidationError, AlertConfigError) as error:
        problem = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            if isinstance(error, ValidationError) else str(error)
        )
        for log in (logging.getLogger("tt_platform.alerts"), tick_log):
            log.error("alert settings: %s; alerts go to the log only until this is fixed", problem)
        return AlertSettings.model_construct(), CompositeNotifier([LogNotifier(tick_log)], tick_log)


def run_failure_alert(run: dg.DagsterRun, reason: str, settings: AlertSettings) -> Alert:
    fields = {"job": run.job_name, "run_id": run.run_id}
    partition = run.tags.get("dagster/partition")
    if partition:
        fields["partition"] = partition
    return Alert(
        title=f"Run failed: {run.job_name}",
        text=reason,
        severity="error",
        fields=fields,
        link=settings.run_url(run.run_id),
    )


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    description="Sends one alert per failed run of any job (job, run id, root cause, link to the run) "
    "to the log and to the webhook / email / Telegram configured by TT_ALERT_* variables.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> dg.SkipReason:
    run = context.dagster_run
    failures = context.instance.all_logs(
        run.run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
    )
    settings, notifier = alert_notifier(context.log)
    delivery = notifier.send(run_failure_alert(run, failure_reason(list(failures)), settings))
    # returning a result moves Dagster's run-status cursor past this run: it never alerts twice
    return dg.SkipReason(f"alerted on run {run.run_id} of {run.job_name}: {delivery.summary()}")


def _read_last_bars(platform: PlatformResource, intervals: list[str]) -> dict[str, dict[str, pd.Timestamp]]:
    """Interval -> symbol -> last bar, for the latest watchlist's symbols (every stored symbol
    when no watchlist was recorded), in one bounded transaction."""
    url = database_url(platform.settings)
    engine = create_store_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.begin() as conn:
            limit_statement_time(conn, QUERY_TIMEOUT_SECONDS)
            watchlist = latest_watchlist(conn)
            symbols = watchlist[1] if watchlist else None
            return {interval: last_bar_times(conn, interval=interval, symbols=symbols) for interval in intervals}
    except sa.exc.OperationalError as error:
        if "statement timeout" in str(error.orig or error):
            raise RuntimeError(f"reading the last bars took longer than {QUERY_TIMEOUT_SECONDS} s; stopped") from None
        raise connection_failure(url, error) from None
    finally:
        engine.dispose()


@dg.sensor(
    name="data_gap_sensor",
    minimum_interval_seconds=GAP_CHECK_SECONDS,
    description="Every 5 minutes, during the exchange's sessions: alerts once per bar series (watchlist symbol "
    "and TT_ALERT_GAP_INTERVALS interval) that has had no new bar for more than two intervals; again only "
    "after it caught up. Reads the store only.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def data_gap_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource) -> dg.SkipReason:
    now = current_time()
    settings, notifier = alert_notifier(context.log)
    intervals = settings.watched_intervals
    if not intervals:
        return dg.SkipReason("TT_ALERT_GAP_INTERVALS names no interval: nothing to watch")
    for interval in intervals:
        try:
            interval_length(interval)
        except ValueError as error:
            raise ValueError(f"TT_ALERT_GAP_INTERVALS: {error}") from None
    try:
        last_bars = _read_last_bars(platform, intervals)
    except sa.exc.ProgrammingError as error:
        if not isinstance(error.orig, psycopg2.errors.UndefinedTable):
            raise
        return dg.SkipReason("the store has no bar table yet (never migrated): nothing to watch")
    scans = [find_stale_series(last_bars[interval], interval, now) for interval in intervals]
    scan = sum(scans[1:], scans[0])
    new, alerted = alerts_for(scan, read_gap_cursor(context.cursor))
    context.update_cursor(write_gap_cursor(alerted))
    watched = sum(len(series) for series in last_bars.values())
    if not new:
        return dg.SkipReason(
            f"{watched} series watched at {now:%Y-%m-%d %H:%M} UTC: {len(scan.stale)} stale (already alerted), "
            f"{len(scan.not_in_session)} outside their session"
        )
    symbols = list(dict.fromkeys(s.symbol for s in new))
    named = ", ".join(symbols[:TITLE_SYMBOLS]) + (f" and {len(symbols) - TITLE_SYMBOLS} more" if len(symbols) > TITLE_SYMBOLS else "")
    alert = Alert(
        title=f"Bars stale: {named}",
        text="\n".join(s.describe() for s in new),
        severity="warning",
        fields={"checked_at": f"{now:%Y-%m-%d %H:%M} UTC"},
    )
    delivery = notifier.send(alert)
    return dg.SkipReason(f"alerted on {len(new)} stale series ({named}): {delivery.summary()}")


SENSORS = [run_failure_alert_sensor, data_gap_sensor]
