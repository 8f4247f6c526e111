"""Stale bar series: more than two intervals of session time without a new bar, judged on the
exchange calendar (nights, weekends, holidays and half days do not count)."""

from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.alerts.gaps import (
    GapScan,
    alerts_for,
    find_stale_series,
    read_gap_cursor,
    series_key,
    write_gap_cursor,
)

# Wednesday 2024-06-05, 11:00 New York: XNYS in session
WEDNESDAY_11AM = "2024-06-05 15:00"


def stale_symbols(scan: GapScan) -> list[str]:
    return [s.symbol for s in scan.stale]


def test_intraday_series_is_stale_after_more_than_two_intervals():
    scan = find_stale_series(
        {
            "AAA": "2024-06-05 14:50",  # its bar ended 14:55; the next (14:55-15:00) is not over yet
            "CCC": "2024-06-05 14:45",  # ended 14:50: 10 minutes ago, not more than two intervals
            "BBB": "2024-06-05 14:40",  # ended 14:45: 15 minutes, bars 14:45 and 14:50 are missing
        },
        "5min",
        WEDNESDAY_11AM,
    )
    assert stale_symbols(scan) == ["BBB"]
    stale = scan.stale[0]
    assert (stale.interval, stale.calendar, stale.missing_bars) == ("5min", "XNYS", 2)
    assert stale.last_bar == pd.Timestamp("2024-06-05 14:40", tz="UTC")
    assert stale.describe() == "BBB (5min, XNYS): last bar 2024-06-05 14:40 UTC, 2 complete bar(s) missing since"
    assert scan.not_in_session == frozenset()


def test_the_night_does_not_count():
    last_minute_of_wednesday = {"AAA": "2024-06-05 19:59"}  # 15:59 New York
    # Thursday 09:31:30 New York: only the 09:30 bar is complete
    assert find_stale_series(last_minute_of_wednesday, "1min", "2024-06-06 13:31:30").stale == ()
    # 09:32:30: the 09:30 and 09:31 bars are both missing
    assert stale_symbols(find_stale_series(last_minute_of_wednesday, "1min", "2024-06-06 13:32:30")) == ["AAA"]


def test_hourly_bars_follow_the_grid_anchored_at_the_open():
    # the last full hour of Wednesday starts 14:30 New York (15:30-16:00 makes no bar); Thursday
    # 11:00 New York: only the 09:30 bar is complete, so one bar is missing
    scan = find_stale_series({"AAA": "2024-06-05 18:30"}, "1h", "2024-06-06 15:00")
    assert scan.stale == ()
    # 11:31 New York: the 09:30 and 10:30 bars are missing
    scan = find_stale_series({"AAA": "2024-06-05 18:30"}, "1h", "2024-06-06 15:31")
    assert stale_symbols(scan) == ["AAA"] and scan.stale[0].missing_bars == 2


def test_nothing_is_stale_outside_sessions():
    old = {"AAA": "2024-05-01 14:00"}
    for now in (
        "2024-06-08 15:00",  # Saturday
        "2024-07-04 15:00",  # Independence Day
        "2024-07-03 17:30",  # 13:30 New York on a half day: closed since 13:00
        "2024-06-05 21:00",  # Wednesday evening
        "2024-06-05 13:29",  # one minute before the open
    ):
        scan = find_stale_series(old, "5min", now)
        assert scan.stale == (), now
        assert scan.not_in_session == frozenset({"AAA|5min"}), now


def test_a_half_day_counts_its_own_short_session():
    # 2024-07-03 closes 13:00 New York (17:00 UTC); 12:45 New York: in session
    scan = find_stale_series({"AAA": "2024-07-03 16:20", "BBB": "2024-07-03 16:35"}, "5min", "2024-07-03 16:45")
    assert stale_symbols(scan) == ["AAA"]


def test_daily_bars_end_at_their_sessions_close():
    last = {
        "MON": "2024-06-03",  # during Wednesday only Tuesday is missing
        "FRI": "2024-05-31",  # Monday and Tuesday missing
        "TUE": "2024-06-04",
    }
    scan = find_stale_series(last, "1d", WEDNESDAY_11AM)
    assert stale_symbols(scan) == ["FRI"] and scan.stale[0].missing_bars == 2


def test_a_holiday_is_not_a_missing_daily_bar():
    # Tuesday 2024-05-28 after Memorial Day (Monday 27th); the last bar is Thursday the 23rd:
    # only Friday the 24th is missing
    assert find_stale_series({"AAA": "2024-05-23"}, "1d", "2024-05-28 15:00").stale == ()
    assert stale_symbols(find_stale_series({"AAA": "2024-05-22"}, "1d", "2024-05-28 15:00")) == ["AAA"]


def test_each_symbol_on_its_own_calendar():
    # Saturday: XNYS is closed, crypto trades around the clock
    scan = find_stale_series({"AAA": "2024-06-07 19:00", "BTCUSD": "2024-06-08 10:00"}, "1h", "2024-06-08 15:00")
    assert stale_symbols(scan) == ["BTCUSD"] and scan.stale[0].calendar == "24/7"
    assert scan.not_in_session == frozenset({"AAA|1h"})
    # one calendar for every symbol when given
    forced = find_stale_series({"AAA": "2024-06-08 10:00"}, "1h", "2024-06-08 15:00", calendar="24/7")
    assert stale_symbols(forced) == ["AAA"]


def test_a_series_silent_for_long_is_reported_as_more_than():
    scan = find_stale_series({"AAA": "2023-01-03"}, "1d", WEDNESDAY_11AM)
    stale = scan.stale[0]
    assert stale.beyond_lookback and stale.missing_bars >= 20
    assert f"more than {stale.missing_bars} complete bar(s)" in stale.describe()


def test_timezone_aware_and_naive_times_agree():
    aware = find_stale_series({"BBB": pd.Timestamp("2024-06-05 10:40", tz="America/New_York")}, "5min",
                              pd.Timestamp("2024-06-05 11:00", tz="America/New_York"))
    naive = find_stale_series({"BBB": "2024-06-05 14:40"}, "5min", WEDNESDAY_11AM)
    assert aware == naive and stale_symbols(aware) == ["BBB"]


@pytest.mark.parametrize("interval", ["2d", "30s", "1 day", "bogus", "90s"])
def test_bad_interval_is_refused_in_one_line(interval):
    with pytest.raises(ValueError, match=r"bar interval must be '1d' or a whole number of minutes") as raised:
        find_stale_series({"AAA": "2024-06-05"}, interval, WEDNESDAY_11AM)
    assert repr(interval) in str(raised.value)


def test_unknown_calendar_is_refused():
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'"):
        find_stale_series({"AAA": "2024-06-05"}, "1d", WEDNESDAY_11AM, calendar="NOPE")


def test_a_gap_alerts_once_until_it_closes():
    stale_bbb = find_stale_series({"AAA": "2024-06-05 14:50", "BBB": "2024-06-05 14:40"}, "5min", WEDNESDAY_11AM)
    new, alerted = alerts_for(stale_bbb, {})
    assert [s.symbol for s in new] == ["BBB"] and list(alerted) == ["BBB|5min"]

    # still stale five minutes later: nothing new
    later = find_stale_series({"AAA": "2024-06-05 14:55", "BBB": "2024-06-05 14:40"}, "5min", "2024-06-05 15:05")
    new, alerted = alerts_for(later, alerted)
    assert new == [] and list(alerted) == ["BBB|5min"]

    # overnight the exchange is closed: the alert is remembered, not repeated the next morning
    night = find_stale_series({"AAA": "2024-06-05 19:55", "BBB": "2024-06-05 14:40"}, "5min", "2024-06-06 02:00")
    new, alerted = alerts_for(night, alerted)
    assert new == [] and list(alerted) == ["BBB|5min"]

    # BBB caught up: forgotten, so a later gap alerts again
    caught_up = find_stale_series({"AAA": "2024-06-05 14:55", "BBB": "2024-06-05 14:55"}, "5min", "2024-06-05 15:05")
    new, alerted = alerts_for(caught_up, alerted)
    assert new == [] and alerted == {}
    again = find_stale_series({"AAA": "2024-06-05 15:40", "BBB": "2024-06-05 15:20"}, "5min", "2024-06-05 15:45")
    new, alerted = alerts_for(again, alerted)
    assert [s.symbol for s in new] == ["BBB"]


def test_cursor_round_trip_and_unreadable_cursor():
    alerted = {series_key("BBB", "5min"): "2024-06-05T14:40:00+00:00", series_key("AAA", "1d"): "2024-06-03T00:00:00+00:00"}
    assert read_gap_cursor(write_gap_cursor(alerted)) == alerted
    for garbage in (None, "", "not json", "[1, 2]", '{"alerted": 3}'):
        assert read_gap_cursor(garbage) == {}


def test_scans_of_several_intervals_add_up():
    daily = find_stale_series({"FRI": "2024-05-31"}, "1d", WEDNESDAY_11AM)
    intraday = find_stale_series({"BBB": "2024-06-05 14:40"}, "5min", WEDNESDAY_11AM)
    both = daily + intraday
    assert [s.key for s in both.stale] == ["FRI|1d", "BBB|5min"]
