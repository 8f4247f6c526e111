"""The alert sensors with temporary Dagster instances: a failed run alerts once (on a local webhook
and in the log), a stale bar series alerts once during a session and never on a weekend; the
store read behind the data-gap sensor."""

from __future__ import annotations

import logging
import os

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.defs.alerts import SENSORS, data_gap_sensor, run_failure_alert_sensor
from tt_platform.defs.alerts import sensors as alert_sensors
from tt_platform.defs.platform.resources import PlatformResource
from tt_platform.settings import get_settings
from tt_platform.store.bar_freshness import last_bar_times, limit_statement_time
from tt_platform.store.engine import StoreConnectionError
from tt_platform.store.prices import write_bars
from tt_platform.store.registry import record_watchlist
from tt_platform_tests.alerts import free_port, http_receiver
from tt_platform_tests.store.bars_factory import random_bars

TOKEN = "123456:AAH-very-secret-bot-token"
HOOK_SECRET = "hook-secret-path"


@pytest.fixture(autouse=True)
def alert_environment(monkeypatch, tmp_path):
    """No TT_ALERT_* from the shell or a .env; each test sets the channels it uses."""
    for name in list(os.environ):
        if name.startswith("TT_ALERT_") or name == "TT_UI_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def webhook(monkeypatch):
    with http_receiver() as receiver:
        monkeypatch.setenv("TT_ALERT_WEBHOOK_URL", f"{receiver.url}/hooks/{HOOK_SECRET}")
        yield receiver


@dg.op
def explode():
    raise ValueError("boom")


@dg.job
def failing_job():
    explode()


@dg.op
def fine():
    return 1


@dg.job
def succeeding_job():
    fine()


def test_sensors_load_in_definitions():
    defs = dg.Definitions(jobs=[failing_job], sensors=SENSORS, resources={"platform": PlatformResource()})
    dg.Definitions.validate_loadable(defs)
    assert {s.name for s in SENSORS} == {"run_failure_alert_sensor", "data_gap_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in SENSORS)
    assert data_gap_sensor.minimum_interval_seconds == 300


def test_a_failed_run_alerts_with_job_run_id_root_cause_and_link(webhook, monkeypatch, caplog):
    monkeypatch.setenv("TT_UI_URL", "http://dagster.example:3000/")
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        with caplog.at_level(logging.INFO):
            outcome = run_failure_alert_sensor(context)

    run_id = result.run_id
    assert len(webhook.requests) == 1
    body = webhook.requests[0].body
    assert body["title"] == "Run failed: failing_job"
    assert body["message"] == "explode: ValueError: boom"
    assert body["fields"] == {"job": "failing_job", "run_id": run_id}
    assert body["link"] == f"http://dagster.example:3000/runs/{run_id}"
    assert isinstance(outcome, dg.SkipReason)
    assert outcome.skip_message == f"alerted on run {run_id} of failing_job: sent via log, webhook"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT ")]
    assert logged == [f"ALERT Run failed: failing_job | explode: ValueError: boom | job: failing_job | run_id: {run_id}"
                      f" | http://dagster.example:3000/runs/{run_id}"]
    assert HOOK_SECRET not in caplog.text


def test_each_failed_run_alerts_once_across_ticks(webhook):
    """Dagster's run-status cursor moves past a run once the sensor returned for it."""
    with dg.instance_for_test() as instance:
        first = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert first.skip_message.startswith("Initiating run_failure_alert_sensor")  # cursor starts at "now"

        succeeding_job.execute_in_process(instance=instance)
        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        second = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        third = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=second.cursor))

    assert second.skip_message.startswith(f"alerted on run {failed.run_id} of failing_job")
    assert second.cursor != first.cursor
    assert third.cursor == second.cursor and "alerted" not in (third.skip_message or "")
    assert [r.body["fields"]["run_id"] for r in webhook.requests] == [failed.run_id]


def test_a_channel_that_is_down_does_not_fail_the_sensor(monkeypatch, caplog):
    port = free_port()
    monkeypatch.setenv("TT_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/hooks/{HOOK_SECRET}")
    monkeypatch.setenv("TT_ALERT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TT_ALERT_TELEGRAM_CHAT_ID", "42")
    monkeypatch.setenv("TT_ALERT_TELEGRAM_API", f"http://127.0.0.1:{port}")
    with dg.instance_for_test() as instance:
        first = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        failing_job.execute_in_process(instance=instance, raise_on_error=False)
        with caplog.at_level(logging.INFO):
            tick = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert tick.skip_message.endswith("sent via log; failed: webhook, telegram")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("alert channel webhook failed" in w and f"127.0.0.1:{port}" in w for w in warnings)
    assert any("alert channel telegram failed" in w and "/bot***/sendMessage" in w for w in warnings)
    assert any(r.getMessage().startswith("ALERT Run failed: failing_job") for r in caplog.records)
    for secret in (TOKEN, TOKEN.split(":")[1], HOOK_SECRET):
        assert secret not in caplog.text and secret not in tick.skip_message


def failed_run_tick(caplog):
    """The failure sensor's tick for one failed run of ``failing_job``, its log captured."""
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_event=result.get_run_failure_event(),
            dagster_instance=instance, dagster_run=result.dagster_run,
        ).for_run_failure()
        with caplog.at_level(logging.INFO):
            return run_failure_alert_sensor(context)


def test_a_channel_configured_in_part_still_alerts_in_the_log(monkeypatch, caplog):
    monkeypatch.setenv("TT_ALERT_TELEGRAM_CHAT_ID", "42")
    outcome = failed_run_tick(caplog)
    assert outcome.skip_message.endswith("sent via log")
    assert "TT_ALERT_TELEGRAM_CHAT_ID is set but TT_ALERT_TELEGRAM_TOKEN is not" in caplog.text
    assert any(r.getMessage().startswith("ALERT Run failed: failing_job") for r in caplog.records)


# --- the data-gap sensor, on the test store -------------------------------------------------

WEDNESDAY_11AM = pd.Timestamp("2024-06-05 15:00", tz="UTC")  # XNYS in session
SATURDAY = pd.Timestamp("2024-06-08 15:00", tz="UTC")


@pytest.fixture
def store_env(monkeypatch, tmp_path, store_url):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TT_DB_URL", store_url)
    get_settings.cache_clear()
    yield store_url
    get_settings.cache_clear()


def five_minute_bars(symbol: str, last: str, n: int = 12) -> pd.DataFrame:
    start = pd.Timestamp(last, tz="UTC") - pd.Timedelta(minutes=5 * (n - 1))
    return random_bars([symbol], n, start=str(start.tz_convert(None)), freq="5min")


@pytest.fixture
def seeded_store(store_env, store_engine):
    """AAA is current at 11:00 New York on Wednesday 2024-06-05; BBB stopped at 10:40."""
    write_bars(store_engine, five_minute_bars("AAA", "2024-06-05 14:50"), source="test", interval="5min", adjusted=False)
    write_bars(store_engine, five_minute_bars("BBB", "2024-06-05 14:40"), source="test", interval="5min", adjusted=False)
    return store_engine


def gap_tick(cursor: str | None = None) -> tuple[dg.SkipReason, str | None]:
    context = dg.build_sensor_context(cursor=cursor, resources={"platform": PlatformResource()})
    outcome = data_gap_sensor(context)
    return outcome, context.cursor


def test_a_stale_series_alerts_once_during_a_session(seeded_store, webhook, monkeypatch, caplog):
    monkeypatch.setenv("TT_ALERT_GAP_INTERVALS", "5min")
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    with caplog.at_level(logging.INFO):
        first, cursor = gap_tick()
    assert len(webhook.requests) == 1
    body = webhook.requests[0].body
    assert body["title"] == "Bars stale: BBB" and body["severity"] == "warning"
    assert body["message"] == "BBB (5min, XNYS): last bar 2024-06-05 14:40 UTC, 2 complete bar(s) missing since"
    assert "AAA" not in webhook.requests[0].text
    assert first.skip_message == "alerted on 1 stale series (BBB): sent via log, webhook"
    assert any(r.getMessage().startswith("ALERT Bars stale: BBB") for r in caplog.records)

    # the next tick, five minutes later, with the cursor: BBB is still stale, no second alert
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM + pd.Timedelta(minutes=5))
    write_bars(seeded_store, five_minute_bars("AAA", "2024-06-05 14:55"), source="test", interval="5min", adjusted=False)
    second, cursor = gap_tick(cursor)
    assert len(webhook.requests) == 1
    assert second.skip_message == "2 series watched at 2024-06-05 15:05 UTC: 1 stale (already alerted), 0 outside their session"

    # BBB catches up: the cursor forgets it, so a later gap alerts again
    write_bars(seeded_store, five_minute_bars("BBB", "2024-06-05 14:55"), source="test", interval="5min", adjusted=False)
    third, cursor = gap_tick(cursor)
    assert "0 stale" in third.skip_message and "BBB" not in cursor
    assert len(webhook.requests) == 1


def test_no_alert_outside_a_session(seeded_store, webhook, monkeypatch):
    monkeypatch.setenv("TT_ALERT_GAP_INTERVALS", "5min")
    monkeypatch.setattr(alert_sensors, "current_time", lambda: SATURDAY)
    outcome, cursor = gap_tick()
    assert webhook.requests == []
    assert outcome.skip_message == "2 series watched at 2024-06-08 15:00 UTC: 0 stale (already alerted), 2 outside their session"


def test_only_the_latest_watchlist_is_watched(seeded_store, webhook, monkeypatch):
    record_watchlist(seeded_store, "wl-aaa", ["AAA"], source="test")
    monkeypatch.setenv("TT_ALERT_GAP_INTERVALS", "5min")
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    outcome, _ = gap_tick()
    assert webhook.requests == [] and outcome.skip_message.startswith("1 series watched")


def test_intervals_not_watched_do_not_alert(seeded_store, webhook, monkeypatch):
    # the default watches daily bars only; the store holds 5-minute bars
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    outcome, _ = gap_tick()
    assert webhook.requests == [] and outcome.skip_message.startswith("0 series watched")


def test_an_unreachable_store_is_named_in_one_line(monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TT_DB_URL", f"postgresql+psycopg2://tt:db-password@127.0.0.1:{port}/tt")
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    with pytest.raises(StoreConnectionError, match=rf"cannot connect to PostgreSQL at 127\.0\.0\.1:{port}, database 'tt'") as raised:
        gap_tick()
    assert "db-password" not in str(raised.value)


def test_a_store_never_migrated_is_skipped(monkeypatch, tmp_path, fresh_schema_url):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TT_DB_URL", fresh_schema_url)
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    outcome, cursor = gap_tick()
    assert outcome.skip_message == "the store has no bar table yet (never migrated): nothing to watch"
    assert cursor is None


# --- the store read -------------------------------------------------------------------------

def test_last_bar_times_per_symbol_and_series(store_engine):
    write_bars(store_engine, random_bars(["AAA", "BBB"], 5, start="2024-06-03"), source="test", interval="1d", adjusted=False)
    write_bars(store_engine, random_bars(["CCC"], 3, start="2024-06-03"), source="test", interval="1d", adjusted=False)
    write_bars(store_engine, random_bars(["AAA"], 9, start="2024-06-03"), source="test", interval="1d", adjusted=True)
    write_bars(store_engine, five_minute_bars("DDD", "2024-06-05 14:40"), source="test", interval="5min", adjusted=False)

    assert last_bar_times(store_engine, interval="1d") == {
        "AAA": pd.Timestamp("2024-06-07", tz="UTC"),
        "BBB": pd.Timestamp("2024-06-07", tz="UTC"),
        "CCC": pd.Timestamp("2024-06-05", tz="UTC"),
    }
    assert last_bar_times(store_engine, interval="1d", adjusted=True) == {"AAA": pd.Timestamp("2024-06-11", tz="UTC")}
    assert last_bar_times(store_engine, interval="5min") == {"DDD": pd.Timestamp("2024-06-05 14:40", tz="UTC")}
    # chosen symbols (case-insensitive); those without bars are left out
    assert last_bar_times(store_engine, interval="1d", symbols=["ccc", "ZZZ"]) == {"CCC": pd.Timestamp("2024-06-05", tz="UTC")}
    assert last_bar_times(store_engine, interval="1d", symbols=[]) == {}
    assert last_bar_times(store_engine, interval="1h") == {}


def test_statement_timeout_stops_a_slow_query(store_engine):
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        with store_engine.begin() as conn:
            limit_statement_time(conn, 0.2)
            conn.execute(sa.text("SELECT pg_sleep(5)"))
    with pytest.raises(ValueError, match="statement timeout must be positive"):
        with store_engine.begin() as conn:
            limit_statement_time(conn, 0)


def test_bad_alert_settings_still_alert_in_the_log(monkeypatch, caplog):
    monkeypatch.setenv("TT_ALERT_SMTP_PORT", "not-a-port")
    monkeypatch.setenv("TT_ALERT_SMTP_PASSWORD", "db-password-never-shown")
    outcome = failed_run_tick(caplog)
    assert outcome.skip_message.endswith("sent via log")
    assert "alert settings: TT_ALERT_SMTP_PORT: Input should be a valid integer" in caplog.text
    assert "not-a-port" not in caplog.text and "db-password-never-shown" not in caplog.text
    assert any(r.getMessage().startswith("ALERT Run failed: failing_job") for r in caplog.records)


def test_a_bad_gap_interval_is_named(monkeypatch, seeded_store):
    monkeypatch.setenv("TT_ALERT_GAP_INTERVALS", "1d, 2d")
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    with pytest.raises(ValueError, match=r"^TT_ALERT_GAP_INTERVALS: bar interval must be '1d' or .*, not '2d'$"):
        gap_tick()


def test_many_stale_symbols_are_summed_up_in_the_title(store_env, store_engine, webhook, monkeypatch):
    symbols = [f"S{i:02d}" for i in range(8)]
    write_bars(store_engine, random_bars(symbols, 3, start="2024-05-27"), source="test", interval="1d", adjusted=False)
    monkeypatch.setattr(alert_sensors, "current_time", lambda: WEDNESDAY_11AM)
    outcome, _ = gap_tick()
    body = webhook.requests[0].body
    assert body["title"] == "Bars stale: S00, S01, S02, S03, S04 and 3 more"
    assert len(body["message"].splitlines()) == 8
    assert outcome.skip_message.startswith("alerted on 8 stale series (S00, S01, S02, S03, S04 and 3 more)")
