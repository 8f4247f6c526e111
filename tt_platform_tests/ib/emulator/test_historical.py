from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.ib.emulator.historical import (
    bar_rows,
    format_bar_time,
    parse_end_datetime,
    resolve_query,
)
from tt_platform.ib.limits import InvalidRequest

NOW = pd.Timestamp("2021-06-15 12:00", tz="UTC")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", NOW),
        ("20210101 00:00:00 UTC", pd.Timestamp("2021-01-01", tz="UTC")),
        ("20210601 09:30:00 US/Eastern", pd.Timestamp("2021-06-01 13:30", tz="UTC")),
        ("20210601-13:30:00", pd.Timestamp("2021-06-01 13:30", tz="UTC")),
        ("20210601 13:30:00", pd.Timestamp("2021-06-01 13:30", tz="UTC")),
        ("20210601", pd.Timestamp("2021-06-01", tz="UTC")),
    ],
)
def test_end_datetime_forms(text, expected):
    assert parse_end_datetime(text, NOW) == expected


@pytest.mark.parametrize("text", ["2021-06-01", "20210601 25:00:00", "20210601 10:00:00 Mars/Olympus"])
def test_bad_end_datetimes_are_invalid_requests(text):
    with pytest.raises(InvalidRequest, match="end date/time"):
        parse_end_datetime(text, NOW)


def test_query_window_is_the_duration_before_the_end():
    q = resolve_query("20220101 00:00:00 UTC", "1 Y", "1 day", "TRADES", False, NOW)
    assert (q.interval, q.start, q.end, q.ends_now) == (
        "1d",
        pd.Timestamp("2021-01-01", tz="UTC"),
        pd.Timestamp("2022-01-01", tz="UTC"),
        False,
    )
    q = resolve_query("", "3 D", "1 hour", "TRADES", True, NOW)
    # "N D" is N trading days: Thursday, Friday and Monday (Tuesday has not opened at NOW)
    assert q.ends_now and q.end == NOW and q.start == pd.Timestamp("2021-06-10", tz="UTC")


@pytest.mark.parametrize(
    "args, message",
    [
        (("20220101 00:00:00 UTC", "1 Y", "1 day", "ADJUSTED_LAST", False), "must be empty for ADJUSTED_LAST"),
        (("20220101 00:00:00 UTC", "1 D", "1 hour", "TRADES", True), "must be empty with keepUpToDate"),
        (("20220101 00:00:00 UTC", "2 D", "1 min", "TRADES", False), "Time length exceed max"),
        (("20220101 00:00:00 UTC", "1 D", "3 secs", "TRADES", False), "bar size"),
        (("20220101 00:00:00 UTC", "1 D", "1 min", "VOLUME", False), "whatToShow"),
    ],
)
def test_requests_ib_refuses(args, message):
    with pytest.raises(InvalidRequest, match=message):
        resolve_query(*args, NOW)


def test_bar_rows_format_dates_and_round_prices():
    bars = pd.DataFrame(
        {
            "symbol": "AAA",
            "ts": pd.to_datetime(["2021-06-01 13:30", "2021-06-01 13:31"], utc=True),
            "open": [10.0, 10.1 + 0.2],
            "high": [10.5, 10.6],
            "low": [9.9, 10.0],
            "close": [10.2, 10.4],
            "volume": [1500.0, 50.0],
        }
    )
    rows = bar_rows(bars, "1min", 2)
    assert rows[0].date == str(int(pd.Timestamp("2021-06-01 13:30", tz="UTC").timestamp()))
    assert rows[1].open == 10.3  # no 10.299999999999999
    assert rows[0].wap == round((10.5 + 9.9 + 10.2) / 3, 6)
    assert [r.count for r in rows] == [15, 1]
    assert format_bar_time(pd.Timestamp("2021-06-01", tz="UTC"), "1d", 2) == "20210601"
    assert format_bar_time(pd.Timestamp("2021-06-01 13:30", tz="UTC"), "1h", 1) == "20210601 13:30:00 UTC"
    assert bar_rows(bars.iloc[:0], "1min", 2) == []


def test_small_bar_sizes_are_served_within_their_step_size_limit():
    q = resolve_query("20211217 20:00:00 UTC", "28800 S", "30 secs", "TRADES", False, NOW)
    assert q.interval == "30s" and q.start == pd.Timestamp("2021-12-17 12:00", tz="UTC")
    with pytest.raises(InvalidRequest, match="Time length exceed max"):
        resolve_query("20211217 20:00:00 UTC", "1 D", "30 secs", "TRADES", False, NOW)


def test_daily_bars_take_years_with_an_explicit_end_and_days_only_up_to_365():
    q = resolve_query("20220102 00:00:00 UTC", "21 Y", "1 day", "TRADES", False, NOW)
    assert q.start == pd.Timestamp("2001-01-02", tz="UTC") and not q.ends_now
    with pytest.raises(InvalidRequest, match="must be made in years"):
        resolve_query("20220102 00:00:00 UTC", "400 D", "1 day", "TRADES", False, NOW)


def test_the_two_readings_of_a_window():
    from tt_platform.ib.emulator.historical import window_bounds

    q = resolve_query("20210201 00:00:00 UTC", "1 M", "1 day", "TRADES", False, NOW)
    assert window_bounds(q, "inclusive_start") == (q.start, q.end)  # [start, end)
    lo, hi = window_bounds(q, "exclusive_start")  # (start, end]
    assert q.start < lo < q.start + pd.Timedelta(microseconds=1) and q.end < hi
    with pytest.raises(ValueError, match="window reading"):
        window_bounds(q, "both")
