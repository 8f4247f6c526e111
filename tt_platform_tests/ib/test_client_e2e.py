"""IBMarketData (real ib_insync underneath) against the gateway emulator on an ephemeral port."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from tt_platform.ib.client import IBMarketData
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FaultPlan, SyntheticBarSource
from tt_platform.ib.emulator.contracts import stable_con_id
from tt_platform.ib.errors import ErrorKind
from tt_platform.ib.models import ResolvedContract, Unresolved
from tt_platform.ib.pacing import HistoricalPacer, PacingRules

pytestmark = pytest.mark.timeout(60)
SCALE = 200.0


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def make_client(gateway, client_id: int = 1, **kw) -> IBMarketData:
    kw.setdefault("pacer", HistoricalPacer(ScaledClock(SCALE), PacingRules(margin_seconds=5.0)))
    kw.setdefault("request_timeout", 10.0)
    kw.setdefault("connect_timeout", 5.0)
    return IBMarketData("127.0.0.1", gateway.port, client_id, **kw).connect()


def source_slice(frame: pd.DataFrame, symbol: str, start: str, end: str) -> pd.DataFrame:
    part = frame[(frame.symbol == symbol) & (frame.ts >= utc(start)) & (frame.ts < utc(end))]
    return part.reset_index(drop=True)


@pytest.fixture
def gateway(start_gateway, daily_source):
    return start_gateway(daily_source, scale=SCALE, faults=FaultPlan(unknown_symbols={"CCC"}))


@pytest.fixture
def intraday_gateway(start_gateway):
    return start_gateway(SyntheticBarSource(["AAA"], seed=7, last_session="2021-12-31"), scale=SCALE)


def test_connect_and_qualify(gateway):
    with make_client(gateway) as client:
        assert client.is_connected()
        resolved = client.qualify(["aaa", "ZZZ", "CCC"])
    aaa = resolved["AAA"]
    assert isinstance(aaa, ResolvedContract)
    assert (aaa.con_id, aaa.sec_type, aaa.exchange, aaa.primary_exchange, aaa.currency) == (
        stable_con_id("AAA"),
        "STK",
        "SMART",
        "NYSE",
        "USD",
    )
    assert aaa.min_tick == 0.01
    # unknown symbol and a symbol the gateway is told to refuse: error 200 with its reason
    for symbol in ("ZZZ", "CCC"):
        assert isinstance(resolved[symbol], Unresolved)
        assert resolved[symbol].code == 200 and "No security definition" in resolved[symbol].reason
    assert not client.is_connected()


def test_daily_bars_match_the_source_in_one_request_of_years(gateway, daily_frame):
    with make_client(gateway) as client:
        result = client.historical_bars("AAA", "2019-03-01", "2021-07-01", "1d")
    assert not result.refused and result.errors == [] and result.requests == 1
    expected = source_slice(daily_frame, "AAA", "2019-03-01", "2021-07-01")
    pd.testing.assert_frame_equal(result.bars, expected)
    assert str(result.bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert (result.bars["ts"] == result.bars["ts"].dt.normalize()).all()  # daily bars at 00:00 UTC
    log = gateway.emulator.history_log
    # padded by a day on both sides, trimmed back by the client
    assert [(r.duration, r.end) for r in log] == [("3 Y", "20210702 00:00:00 UTC")]


def test_daily_requests_in_smaller_blocks_meet_without_gaps_or_overlaps(gateway, daily_frame):
    with make_client(gateway, years_per_request=1) as client:
        result = client.historical_bars("AAA", "2019-03-01", "2021-07-01", "1d")
    assert result.requests == 3 and len(gateway.emulator.history_log) == 3
    pd.testing.assert_frame_equal(result.bars, source_slice(daily_frame, "AAA", "2019-03-01", "2021-07-01"))


def test_no_request_precedes_the_listing_date(gateway, daily_frame):
    with make_client(gateway) as client:
        head = client.head_timestamp("AAA")
        result = client.historical_bars("AAA", "2005-01-01", "2020-01-01", "1d")
    assert head == daily_frame.loc[daily_frame.symbol == "AAA", "ts"].min() == utc("2019-01-02")
    # one request, from the listing date: not a 15-year window
    assert [(r.duration, r.end) for r in gateway.emulator.history_log] == [("2 Y", "20200102 00:00:00 UTC")]
    assert len(result.bars) == len(source_slice(daily_frame, "AAA", "2019-01-01", "2020-01-01"))


def test_hourly_bars_are_chunked_by_half_month(intraday_gateway):
    with make_client(intraday_gateway) as client:
        result = client.historical_bars("AAA", "2021-01-15", "2021-03-05", "1h")
    source = intraday_gateway.emulator.source
    expected = source.bars("AAA", utc("2021-01-15"), utc("2021-03-05"), "1h")
    assert not result.refused and result.requests == 4
    pd.testing.assert_frame_equal(result.bars, expected)


def test_minute_bars_are_chunked_by_half_day(intraday_gateway):
    with make_client(intraday_gateway) as client:
        result = client.historical_bars("AAA", "2021-03-01", "2021-03-04", "1min")
    assert result.requests == 6 and len(result.bars) == 3 * 390
    assert result.bars["ts"].min() == utc("2021-03-01 14:30")  # 09:30 New York (EST)
    assert not result.bars.duplicated(["ts"]).any()
    assert [r.duration for r in intraday_gateway.emulator.history_log] == ["43320 S"] * 6


def test_no_data_is_not_refused(gateway):
    with make_client(gateway) as client:
        result = client.historical_bars("AAA", "2022-02-01", "2022-03-01", "1d")
    assert result.bars.empty and not result.refused and result.no_data
    assert result.error_kinds == {ErrorKind.NO_DATA}


def test_unknown_symbols_are_refused(gateway):
    with make_client(gateway) as client:
        unknown = client.historical_bars("ZZZ", "2020-01-01", "2021-01-01")
        blocked = client.historical_bars("CCC", "2020-01-01", "2021-01-01")
    for result in (unknown, blocked):
        assert result.refused and result.bars.empty and not result.no_data
        assert result.error_kinds == {ErrorKind.NO_SECURITY}


def test_adjusted_daily_bars_are_one_request_ending_now(gateway, daily_frame):
    with make_client(gateway) as client:
        result = client.historical_bars("BBB", "2020-01-01", "2021-01-01", adjusted=True)
    (record,) = gateway.emulator.history_log
    assert (record.what_to_show, record.end) == ("ADJUSTED_LAST", "")
    pd.testing.assert_frame_equal(result.bars, source_slice(daily_frame, "BBB", "2020-01-01", "2021-01-01"))
    with make_client(gateway, client_id=2) as client, pytest.raises(ValueError, match="ADJUSTED_LAST must end now"):
        client.historical_bars("BBB", "2020-01-01", "2020-02-01", "1h", adjusted=True)


def test_a_request_without_answer_is_a_timeout_not_no_data(start_gateway, daily_source):
    slow = start_gateway(daily_source, scale=SCALE, faults=FaultPlan(historical_delay_seconds=100.0))  # 0.5 s real
    with make_client(slow, request_timeout=0.2) as client:
        late = client.historical_bars("AAA", "2021-01-01", "2021-02-01")
    assert late.refused and late.error_kinds == {ErrorKind.TIMEOUT}
    with make_client(slow, client_id=2, request_timeout=5.0) as client:
        slow_but_in_time = client.historical_bars("AAA", "2021-01-01", "2021-02-01")
    assert not slow_but_in_time.refused and len(slow_but_in_time.bars) == 19


def test_requests_need_a_connection(gateway):
    client = IBMarketData("127.0.0.1", gateway.port, 1)
    with pytest.raises(ConnectionError, match="not connected"):
        client.qualify(["AAA"])


def test_client_from_settings():
    settings = SimpleNamespace(ib_host="10.0.0.5", ib_port=4001, ib_client_id=42)
    client = IBMarketData.from_settings(settings, request_timeout=3)
    assert (client.host, client.port, client.client_id, client.request_timeout) == ("10.0.0.5", 4001, 42, 3.0)
    assert "not connected" in repr(client)


def test_real_daily_files_through_the_emulator(start_gateway, shared_data):
    from tt_platform.ib.emulator import CsvDirectoryBarSource

    source = CsvDirectoryBarSource(shared_data / "daily" / "market_lab_adjusted")
    gateway = start_gateway(source, scale=SCALE)
    with make_client(gateway) as client:
        # GSPC starts in 1927: a listing before 1970 (ib_insync cannot parse negative epochs)
        assert client.head_timestamp("GSPC") == utc("1927-12-30")
        assert client.head_timestamp("SPY") == utc("1993-01-29")
        result = client.historical_bars("SPY", "1990-01-01", "1996-01-01")
    expected = source.bars("SPY", utc("1990-01-01"), utc("1996-01-01"), "1d")
    assert result.requests == 1  # from the listing date (1993) to 1996 in one request
    assert len(result.bars) == len(expected) == 738
    assert (result.bars["ts"] == expected["ts"]).all()
    # prices travel rounded to 6 decimals (the adjusted series carry float noise)
    assert (result.bars["close"] - expected["close"]).abs().max() < 1e-6
