"""Live data gaps: more than two intervals of session time without a bar alert once per gap."""

from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.live_bars import DataGapWatch


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York").tz_convert("UTC")


def alerted(watch: DataGapWatch, last_bars, now) -> list[str]:
    return [s.symbol for s in watch.check(last_bars, now)]


def test_gap_needs_more_than_two_intervals_after_the_last_bar_ended():
    watch = DataGapWatch("1min", "XNYS")
    last = {"AAA": ny("2024-06-05 10:00"), "BBB": ny("2024-06-05 10:02")}  # AAA's bar ended 10:01
    assert alerted(watch, last, ny("2024-06-05 10:02:59")) == []
    assert alerted(watch, last, ny("2024-06-05 10:03:01")) == ["AAA"]


def test_each_gap_alerts_once_and_again_only_after_it_closed():
    watch = DataGapWatch("1min", "XNYS")
    assert alerted(watch, {"AAA": ny("2024-06-05 10:00")}, ny("2024-06-05 10:04")) == ["AAA"]
    assert alerted(watch, {"AAA": ny("2024-06-05 10:00")}, ny("2024-06-05 10:10")) == []
    assert watch.open_gaps == {"AAA"}
    assert alerted(watch, {"AAA": ny("2024-06-05 10:10")}, ny("2024-06-05 10:11:30")) == []
    assert watch.open_gaps == frozenset()
    assert alerted(watch, {"AAA": ny("2024-06-05 10:10")}, ny("2024-06-05 10:14")) == ["AAA"]


def test_nights_and_weekends_do_not_count():
    watch = DataGapWatch("1min", "XNYS")
    friday_close = {"AAA": ny("2024-06-07 15:59")}
    assert alerted(watch, friday_close, ny("2024-06-08 12:00")) == []  # Saturday: not judged
    assert alerted(watch, friday_close, ny("2024-06-10 09:31:30")) == []  # 1.5 session minutes
    assert alerted(watch, friday_close, ny("2024-06-10 09:32:30")) == ["AAA"]


def test_a_gap_open_at_the_close_does_not_alert_again_at_the_next_open():
    watch = DataGapWatch("5min", "XNYS")
    last = {"AAA": ny("2024-06-05 15:30")}
    assert alerted(watch, last, ny("2024-06-05 15:50")) == ["AAA"]
    assert alerted(watch, last, ny("2024-06-05 20:00")) == []  # closed: state kept
    assert alerted(watch, last, ny("2024-06-06 09:45")) == []
    assert watch.open_gaps == {"AAA"}


def test_half_day_close_ends_session_time():
    watch = DataGapWatch("1min", "XNYS")
    # 2024-11-29 closes at 13:00; 2024-12-02 is the next session
    last = {"AAA": ny("2024-11-29 12:59")}
    assert alerted(watch, last, ny("2024-12-02 09:31:30")) == []
    assert alerted(watch, last, ny("2024-12-02 09:32:30")) == ["AAA"]


@pytest.mark.parametrize(
    ("interval", "calendar", "message"),
    [("7s", "XNYS", "bar interval"), ("1min", "NOPE", "unknown exchange calendar")],
)
def test_bad_configuration_is_refused(interval, calendar, message):
    with pytest.raises(ValueError, match=message):
        DataGapWatch(interval, calendar)


def test_bad_checks_are_refused():
    watch = DataGapWatch("1min")
    with pytest.raises(ValueError, match="no last bar"):
        watch.check({"AAA": None}, ny("2024-06-05 10:00"))
    with pytest.raises(ValueError, match="no time zone"):
        watch.check({"AAA": ny("2024-06-05 10:00")}, pd.Timestamp("2024-06-05 10:00"))
