from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.ib.emulator import (
    BarSource,
    BarSourceError,
    CsvDirectoryBarSource,
    FrameBarSource,
    SyntheticBarSource,
)

T0 = pd.Timestamp("1900-01-01", tz="UTC")
T1 = pd.Timestamp("2100-01-01", tz="UTC")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_frame_source_serves_half_open_ranges_per_interval(daily_frame):
    source = FrameBarSource(daily_frame)
    assert isinstance(source, BarSource)
    assert source.symbols() == ["AAA", "BBB", "CCC"]
    bars = source.bars("aaa", utc("2021-01-04"), utc("2021-01-08"), "1d")
    assert list(bars["ts"].dt.strftime("%Y-%m-%d")) == ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"]
    assert (bars["symbol"] == "AAA").all()
    assert source.bars("AAA", T0, T1, "1h").empty
    with pytest.raises(BarSourceError, match="unsupported intervals"):
        FrameBarSource({"5min": daily_frame})


def test_csv_directory_source_reads_plain_csvs(tmp_path):
    (tmp_path / "abc.csv").write_text(
        "date,open,high,low,close,volume\n2021-01-04,10,11,9,10.5,100\n2021-01-05,10.5,12,10,11,200\n"
    )
    source = CsvDirectoryBarSource(tmp_path)
    assert source.symbols() == ["ABC"]
    bars = source.bars("ABC", T0, T1, "1d")
    assert list(bars["close"]) == [10.5, 11.0]
    assert bars["ts"].iloc[0] == utc("2021-01-04")
    assert source.bars("ABC", T0, T1, "1min").empty
    assert source.bars("NOPE", T0, T1, "1d").empty


@pytest.mark.parametrize(
    "content, problem",
    [
        ("day,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\n", "line 1: header has no 'date' column"),
        ("date,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\nnot-a-date,1,1,1,1,1\n", "line 3: 'date' is not an ISO-8601"),
        ("date,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\n2021-01-05,1,x,1,1,1\n", "line 3: 'high' is not a number"),
        ("date,open,high,low,close,volume\n2021-01-04,1,1,1,-1,1\n", "price <= 0"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, content, problem):
    (tmp_path / "BAD.csv").write_text(content)
    source = CsvDirectoryBarSource(tmp_path)
    with pytest.raises(BarSourceError, match=problem) as info:
        source.bars("BAD", T0, T1, "1d")
    assert "BAD.csv" in str(info.value)


def test_csv_directory_must_exist_and_hold_csvs(tmp_path):
    with pytest.raises(BarSourceError, match="not a directory"):
        CsvDirectoryBarSource(tmp_path / "missing")
    with pytest.raises(BarSourceError, match=r"no \*\.csv"):
        CsvDirectoryBarSource(tmp_path)


def test_real_market_lab_files(shared_data):
    source = CsvDirectoryBarSource(shared_data / "daily" / "market_lab_adjusted")
    assert {"SPY", "AAPL", "GSPC", "VIX"} <= set(source.symbols())
    spy = source.bars("SPY", T0, T1, "1d")
    assert len(spy) == 7285
    assert spy["ts"].iloc[0] == utc("1993-01-29") and spy["ts"].iloc[-1] == utc("2021-12-31")


def test_synthetic_source_is_deterministic_and_serves_intraday():
    a = SyntheticBarSource(["aaa"], seed=3, last_session="2021-12-31")
    b = SyntheticBarSource(["AAA"], seed=3, last_session="2021-12-31")
    daily = a.bars("AAA", utc("2021-03-01"), utc("2021-04-01"), "1d")
    pd.testing.assert_frame_equal(daily, b.bars("AAA", utc("2021-03-01"), utc("2021-04-01"), "1d"))
    assert len(daily) == 23  # XNYS sessions in March 2021
    minute = a.bars("AAA", utc("2021-03-01"), utc("2021-03-03"), "1min")
    assert len(minute) == 2 * 390
    assert minute["ts"].min() >= utc("2021-03-01") and minute["ts"].max() < utc("2021-03-03")
    assert a.bars("AAA", utc("2022-01-03"), utc("2022-02-01"), "1d").empty  # after last_session
    assert a.bars("ZZZ", utc("2021-03-01"), utc("2021-04-01"), "1d").empty
    with pytest.raises(BarSourceError):
        SyntheticBarSource([])
