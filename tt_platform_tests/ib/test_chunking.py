from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest

from tt_platform.ib.chunking import (
    align_range,
    format_ib_datetime,
    plan_adjusted_chunk,
    plan_chunks,
    to_utc,
)
from tt_platform.ib.limits import (
    InvalidRequest,
    check_duration,
    interval_spec,
    parse_duration,
)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def assert_contiguous(chunks, start, end):
    assert chunks[0].start == start and chunks[-1].end == end
    for a, b in pairwise(chunks):
        assert a.end == b.start


def test_daily_chunks_follow_calendar_years():
    chunks = plan_chunks("2019-03-15", "2021-07-01", "1d")
    assert [(c.start, c.end) for c in chunks] == [
        (ts("2019-03-15"), ts("2020-01-01")),
        (ts("2020-01-01"), ts("2021-01-01")),
        (ts("2021-01-01"), ts("2021-07-01")),
    ]
    assert [c.duration for c in chunks] == ["292 D", "1 Y", "181 D"]
    assert chunks[1].request_end == "20210101 00:00:00 UTC"


def test_hourly_chunks_follow_months_and_minute_chunks_days():
    hourly = plan_chunks("2021-01-20", "2021-03-10 12:00", "1h")
    assert [c.duration for c in hourly] == ["12 D", "1 M", "10 D"]  # 9.5 days asked as 10 D
    assert_contiguous(hourly, ts("2021-01-20"), ts("2021-03-10 12:00"))
    minute = plan_chunks("2021-06-01 13:30", "2021-06-03 20:00", "1min")
    assert [c.duration for c in minute] == ["37800 S", "1 D", "72000 S"]


def test_every_chunk_is_within_ibs_duration_limit():
    for interval, (start, end) in {
        "1d": ("1999-02-03", "2021-12-31"),
        "1h": ("2020-01-15", "2021-03-02"),
        "1min": ("2021-01-01", "2021-01-20"),
    }.items():
        chunks = plan_chunks(start, end, interval)
        assert_contiguous(chunks, *align_range(start, end, interval))
        for chunk in chunks:
            check_duration(parse_duration(chunk.duration), interval_spec(interval).bar_size, ends_now=False)
            covered = parse_duration(chunk.duration).start_before(chunk.end)
            assert chunk.start - pd.Timedelta(days=1) < covered <= chunk.start


def test_same_range_gives_same_chunks_and_smaller_units_are_allowed():
    assert plan_chunks("2020-05-05", "2021-02-02", "1d") == plan_chunks("2020-05-05", "2021-02-02", "1d")
    monthly = plan_chunks("2021-01-01", "2022-01-01", "1d", unit="month")
    assert len(monthly) == 12 and all(c.duration == "1 M" for c in monthly)
    with pytest.raises(ValueError, match="exceed IB's duration limit"):
        plan_chunks("2021-01-01", "2021-02-01", "1min", unit="month")


def test_ranges_are_aligned_to_bars_and_validated():
    assert align_range("2021-01-01 10:30", "2021-01-02 10:30", "1d") == (ts("2021-01-01"), ts("2021-01-03"))
    with pytest.raises(ValueError, match="empty range"):
        plan_chunks("2021-02-01", "2021-01-01", "1d")
    with pytest.raises(ValueError, match="unsupported interval"):
        plan_chunks("2021-01-01", "2021-02-01", "5min")


def test_adjusted_bars_are_one_request_ending_now():
    chunk = plan_adjusted_chunk("2018-06-01", "2020-01-01", "1d", now="2021-05-01")
    assert chunk.request_end == "" and chunk.duration == "3 Y"
    assert parse_duration(chunk.duration).start_before(ts("2021-05-01")) <= chunk.start
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
        check_duration(parse_duration("2 D"), "1 min", ends_now=False)
    with pytest.raises(InvalidRequest, match="Time length exceed max"):
        check_duration(parse_duration("2 Y"), "1 day", ends_now=False)
    check_duration(parse_duration("20 Y"), "1 day", ends_now=True)  # multi-year daily ending now is fine
    with pytest.raises(InvalidRequest, match="bar size"):
        check_duration(parse_duration("1 D"), "7 mins", ends_now=False)
