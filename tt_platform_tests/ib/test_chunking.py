from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tt_platform.ib.chunking import (
    align_range,
    format_ib_datetime,
    plan_adjusted_chunk,
    plan_chunks,
    to_utc,
)
from tt_platform.ib.limits import (
    InvalidRequest,
    bar_size_interval,
    check_duration,
    interval_spec,
    is_small_bar,
    parse_duration,
)

LATER = "2030-01-01"  # a "now" after every range below: no request has to end now


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def assert_contiguous(chunks, start, end):
    assert chunks[0].start == start and chunks[-1].end == end
    for a, b in pairwise(chunks):
        assert a.end == b.start


def window(chunk) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = ts(chunk.request_end.replace(" UTC", "")) if chunk.request_end else None
    return parse_duration(chunk.duration).start_before(end), end


def test_daily_bars_are_asked_for_in_blocks_of_years():
    chunks = plan_chunks("1999-03-15", "2021-07-01", "1d", now=LATER)
    # 20 years per request by default: two requests for 22 years, not 23 yearly (or 268 monthly) ones
    assert [(c.start, c.end) for c in chunks] == [
        (ts("1999-03-15"), ts("2019-01-01")),
        (ts("2019-01-01"), ts("2021-07-01")),
    ]
    assert [c.duration for c in chunks] == ["20 Y", "3 Y"]
    assert all(parse_duration(c.duration).unit == "Y" for c in chunks)
    yearly = plan_chunks("2019-03-15", "2021-07-01", "1d", years_per_request=1, now=LATER)
    assert [c.start.year for c in yearly] == [2019, 2020, 2021]
    assert [c.duration for c in yearly] == ["294 D", "2 Y", "183 D"]  # padded: see below


def test_every_request_is_padded_by_a_bar_on_both_sides():
    for interval, (start, end) in {
        "1d": ("1999-02-03", "2021-12-31"),
        "1h": ("2020-01-15", "2021-03-02"),
        "1min": ("2021-01-01", "2021-01-05"),
        "30s": ("2021-01-04 13:00", "2021-01-05"),
    }.items():
        step = interval_spec(interval).step
        for unit in (None, "month") if interval == "1d" else (None,):
            for chunk in plan_chunks(start, end, interval, unit, now=LATER):
                lo, hi = window(chunk)
                # [lo, hi) and (lo, hi] both hold every bar stamp in [start, end)
                assert lo <= chunk.start - step and hi >= chunk.end + step - pd.Timedelta(seconds=1)
                assert hi == chunk.end + step


def test_unpadded_requests_ask_for_exactly_the_chunk():
    chunks = plan_chunks("2021-01-04", "2021-04-01", "1d", "month", pad=False, now=LATER)
    assert [window(c) for c in chunks] == [(c.start, c.end) for c in chunks]
    assert [c.duration for c in chunks] == ["28 D", "1 M", "1 M"]


def test_hourly_chunks_are_half_months_and_minute_chunks_half_days():
    hourly = plan_chunks("2021-01-20", "2021-03-10 12:00", "1h", now=LATER)
    assert [c.start.day for c in hourly] == [20, 1, 15, 1]
    assert [c.duration for c in hourly] == ["13 D", "15 D", "15 D", "10 D"]
    assert_contiguous(hourly, ts("2021-01-20"), ts("2021-03-10 12:00"))
    minute = plan_chunks("2021-06-01 13:30", "2021-06-03 20:00", "1min", now=LATER)
    assert [c.duration for c in minute] == ["37920 S", "43320 S", "43320 S", "43320 S", "28920 S"]
    assert minute[1].days == (minute[1].start.date(), minute[1].start.date())


def test_every_chunk_is_within_ibs_duration_limit():
    for interval, (start, end) in {
        "1d": ("1950-02-03", "2021-12-31"),
        "1h": ("2020-01-15", "2021-03-02"),
        "1min": ("2021-01-01", "2021-01-20"),
        "30s": ("2021-01-01", "2021-01-03"),
    }.items():
        chunks = plan_chunks(start, end, interval, now=LATER)
        assert_contiguous(chunks, *align_range(start, end, interval))
        for chunk in chunks:
            check_duration(parse_duration(chunk.duration), interval_spec(interval).bar_size)


@settings(max_examples=60, deadline=None)
@given(
    st.dates(min_value=pd.Timestamp("1990-01-01").date(), max_value=pd.Timestamp("2024-01-01").date()),
    st.integers(1, 9000),
    st.integers(1, 25),
)
def test_daily_chunks_cover_the_range_and_their_padded_windows(start, days, years):
    end = pd.Timestamp(start) + pd.Timedelta(days=days)
    chunks = plan_chunks(start, end, "1d", years_per_request=years, now="2060-01-01")
    assert_contiguous(chunks, ts(str(start)), ts(str(end.date())))
    assert len(chunks) <= days / 365.25 / years + 2
    for chunk in chunks:
        lo, hi = window(chunk)
        assert lo <= chunk.start - pd.Timedelta(days=1) and hi == chunk.end + pd.Timedelta(days=1)
        check_duration(parse_duration(chunk.duration), "1 day")


def test_a_padded_request_reaching_into_the_future_ends_now():
    now = ts("2025-05-31 02:00")
    (chunk,) = plan_chunks("2025-05-30", "2025-05-31", "1d", now=now)
    assert chunk.request_end == "" and chunk.duration == "3 D"
    assert parse_duration(chunk.duration).start_before(now) <= chunk.start - pd.Timedelta(days=1)


def test_same_range_gives_same_chunks_and_smaller_units_are_allowed():
    assert plan_chunks("2020-05-05", "2021-02-02", "1d") == plan_chunks("2020-05-05", "2021-02-02", "1d")
    monthly = plan_chunks("2021-01-01", "2022-01-01", "1d", unit="month", now=LATER)
    assert len(monthly) == 12 and all(c.end == c.start + pd.DateOffset(months=1) for c in monthly)
    with pytest.raises(ValueError, match="exceed IB's duration limit"):
        plan_chunks("2021-01-01", "2021-02-01", "1min", unit="month")
    with pytest.raises(ValueError, match="exceed IB's duration limit"):
        plan_chunks("2021-01-01", "2021-02-01", "1h", unit="year")


def test_ranges_are_aligned_to_bars_and_validated():
    assert align_range("2021-01-01 10:30", "2021-01-02 10:30", "1d") == (ts("2021-01-01"), ts("2021-01-03"))
    with pytest.raises(ValueError, match="empty range"):
        plan_chunks("2021-02-01", "2021-01-01", "1d")
    with pytest.raises(ValueError, match="unsupported interval"):
        plan_chunks("2021-01-01", "2021-02-01", "5min")


def test_adjusted_bars_are_one_request_ending_now():
    chunk = plan_adjusted_chunk("2018-06-01", "2020-01-01", "1d", now="2021-05-01")
    assert chunk.request_end == "" and chunk.duration == "3 Y"
    assert parse_duration(chunk.duration).start_before(ts("2021-05-01")) <= chunk.start - pd.Timedelta(days=1)
    short = plan_adjusted_chunk("2021-04-20", "2021-04-30", "1d", now="2021-05-01")
    assert short.duration == "12 D"
    with pytest.raises(ValueError, match="ADJUSTED_LAST must end now"):
        plan_adjusted_chunk("2021-01-01", "2021-02-01", "1h")


def test_ib_datetime_format_and_timezone_handling():
    assert format_ib_datetime(pd.Timestamp("2021-06-01 09:30", tz="America/New_York")) == "20210601 13:30:00 UTC"
    assert to_utc("2021-06-01").tzinfo is not None
    with pytest.raises(ValueError):
        to_utc("not a date")


def test_duration_grammar_and_limits():
    assert str(parse_duration("30 D")) == "30 D"
    for bad in ("30", "D 30", "0 D", "3 X", ""):
        with pytest.raises(InvalidRequest):
            parse_duration(bad)
    with pytest.raises(InvalidRequest, match="Time length exceed max"):
        check_duration(parse_duration("2 D"), "1 min")
    with pytest.raises(InvalidRequest, match="Time length exceed max"):
        check_duration(parse_duration("28801 S"), "30 secs")
    with pytest.raises(InvalidRequest, match="Time length exceed max"):
        check_duration(parse_duration("1 Y"), "1 hour")
    with pytest.raises(InvalidRequest, match="must be made in years"):
        check_duration(parse_duration("400 D"), "1 day")
    for years in ("1 Y", "2 Y", "20 Y", "50 Y"):  # N Y of daily bars, ending now or not
        check_duration(parse_duration(years), "1 day")
    with pytest.raises(InvalidRequest, match="max 50 Y"):
        check_duration(parse_duration("51 Y"), "1 day")
    with pytest.raises(InvalidRequest, match="bar size"):
        check_duration(parse_duration("1 D"), "7 mins")


def test_bar_size_facts():
    assert [is_small_bar(b) for b in ("1 secs", "30 secs", "1 min", "1 hour", "1 day")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert [bar_size_interval(b) for b in ("1 day", "30 secs", "5 mins", "2 hours")] == ["1d", "30s", "5min", "2h"]
