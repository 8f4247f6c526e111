"""Live streams (keepUpToDate, 5 s real-time bars, ticks) through unmodified ib_insync."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from ib_insync import IB, Stock

from tt_platform.ib.emulator import ReplayConfig
from tt_platform_tests.ib.conftest import wait_until

pytestmark = pytest.mark.timeout(60)
REPLAY_START = "2021-06-01"  # a Tuesday; 2021-05-31 was Memorial Day


@pytest.fixture
def replay_gateway(start_gateway, daily_source):
    # scale 50: one 5 s step every 0.1 s of real time
    return start_gateway(daily_source, scale=50.0, replay=ReplayConfig(start=REPLAY_START, step_seconds=5.0))


@pytest.fixture
def ib(replay_gateway):
    client = IB()
    client.RequestTimeout = 10
    client.connect("127.0.0.1", replay_gateway.port, clientId=7, timeout=5)
    yield client
    client.disconnect()


def closes(frame: pd.DataFrame, symbol: str) -> pd.Series:
    part = frame[frame.symbol == symbol]
    return pd.Series(part["close"].to_numpy(), index=part["ts"].dt.date)


def test_keep_up_to_date_starts_before_the_cursor_and_grows(ib, daily_frame):
    contract = Stock("AAA", "SMART", "USD")
    ib.qualifyContracts(contract)
    bars = ib.reqHistoricalData(contract, "", "10 D", "1 day", "TRADES", False, 1, keepUpToDate=True)
    history = [b.date for b in bars]
    assert history and max(history) < dt.date(2021, 6, 1)  # nothing the market has not produced yet
    assert wait_until(ib, lambda: len(bars) >= len(history) + 3)
    new = bars[len(history) :]
    assert [b.date for b in new[:3]] == [dt.date(2021, 6, 1), dt.date(2021, 6, 2), dt.date(2021, 6, 3)]
    expected = closes(daily_frame, "AAA")
    assert [b.close for b in new[:3]] == [
        expected[d] for d in (dt.date(2021, 6, 1), dt.date(2021, 6, 2), dt.date(2021, 6, 3))
    ]
    ib.cancelHistoricalData(bars)


def test_market_data_ticks_follow_the_replay(ib, daily_frame):
    contract = Stock("AAA", "SMART", "USD")
    ib.qualifyContracts(contract)
    expected = closes(daily_frame, "AAA")
    ticker = ib.reqMktData(contract)
    assert wait_until(ib, lambda: ticker.last == ticker.last and ticker.last > 0)
    first = ticker.last
    assert first in {expected[dt.date(2021, 5, 28)], expected[dt.date(2021, 6, 1)]}
    assert wait_until(ib, lambda: ticker.last != first)
    assert ticker.bid < ticker.last < ticker.ask
    assert ticker.volume > 0
    ib.cancelMktData(contract)


def test_snapshot_quotes(ib, daily_frame):
    contract = Stock("CCC", "SMART", "USD")
    ib.qualifyContracts(contract)
    (ticker,) = ib.reqTickers(contract)
    assert ticker.last > 0 and ticker.close > 0
    assert ticker.bid < ticker.last < ticker.ask  # the quotes orders trade at
    assert ticker.ask - ticker.last == pytest.approx(ticker.last - ticker.bid)
