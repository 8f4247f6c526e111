"""The emulator answers as IB does, checked through the unmodified ib_insync client: what-if
orders, closed bars only, true 5-second bars, fills at the quotes with partial fills, trading
hours, and IB's error codes."""

from __future__ import annotations

import datetime as dt
import time

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from ib_insync import IB, Contract, LimitOrder, MarketOrder, Stock

from tt_platform.data.synthetic import generate_bars
from tt_platform.ib.emulator import FrameBarSource, ReplayConfig, SyntheticBarSource
from tt_platform_tests.ib.conftest import wait_until

pytestmark = pytest.mark.timeout(90)
NEW_YORK = "America/New_York"


def connect(gateway, client_id: int = 1) -> IB:
    ib = IB()
    ib.RequestTimeout = 10
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=5)
    return ib


def collect_errors(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    return errors


@pytest.fixture(scope="module")
def minute_source() -> FrameBarSource:
    """Daily and minute bars of the same synthetic market (the minutes split each day)."""
    daily = generate_bars(["AAA", "BBB"], "2021-05-17", "2021-06-11", interval="1d", seed=3)
    minutes = generate_bars(["AAA", "BBB"], "2021-05-17", "2021-06-11", interval="1min", seed=3)
    return FrameBarSource({"1d": daily, "1min": minutes})


# what-if orders ------------------------------------------------------------------------------


def test_what_if_orders_return_margin_and_commission_and_never_trade(start_gateway, daily_source, daily_frame):
    gateway = start_gateway(daily_source, scale=50.0, spread_bps=0.0)
    last_close = daily_frame.loc[daily_frame.symbol == "AAA", "close"].iloc[-1]
    ask = round(last_close + 0.01, 2)
    ib = connect(gateway)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        state = ib.whatIfOrder(contract, MarketOrder("BUY", 100))
        assert float(state.initMarginChange) == pytest.approx(0.25 * 100 * ask, abs=0.01)
        assert float(state.maintMarginChange) == pytest.approx(0.25 * 100 * ask, abs=0.01)
        assert float(state.initMarginBefore) == 0.0
        assert float(state.initMarginAfter) == pytest.approx(float(state.initMarginChange), abs=0.01)
        assert float(state.equityWithLoanBefore) == 1_000_000.0
        assert float(state.equityWithLoanChange) == pytest.approx(-1.0, abs=0.01)  # the commission
        assert state.commission == 1.0 and state.commissionCurrency == "USD"
        big = ib.whatIfOrder(contract, LimitOrder("SELL", 1000, 30.0))
        assert big.commission == 5.0  # 0.005 per share above the minimum
        assert ib.openTrades() == [] and ib.reqOpenOrders() == [] and ib.fills() == []
    finally:
        ib.disconnect()
    later = connect(gateway, client_id=2)
    try:
        assert later.positions() == [] and later.reqAllOpenOrders() == []
        assert later.reqExecutions() == []
        assert gateway.emulator.broker.orders == {} and gateway.emulator.broker.executions == []
    finally:
        later.disconnect()


# history: closed bars only -------------------------------------------------------------------


def test_history_ending_now_holds_only_closed_bars_at_the_replay_clock(start_gateway, minute_source):
    # 14:03 UTC on Tuesday 2021-06-01 (10:03 New York); a long step keeps the clock there
    replay = ReplayConfig(start="2021-06-01 14:03", interval="1min", step_seconds=3600.0)
    gateway = start_gateway(minute_source, scale=50.0, replay=replay)
    ib = connect(gateway)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        daily = ib.reqHistoricalData(contract, "", "5 D", "1 day", "TRADES", True, 1)
        # Monday 2021-05-31 was Memorial Day; Tuesday's session is still open
        assert daily and daily[-1].date == dt.date(2021, 5, 28)
        minutes = ib.reqHistoricalData(contract, "", "1800 S", "1 min", "TRADES", True, 2)
        stamps = [b.date for b in minutes]
        assert stamps[-1] == dt.datetime(2021, 6, 1, 14, 2, tzinfo=dt.timezone.utc)  # closed at 14:03
        assert stamps[0] == dt.datetime(2021, 6, 1, 13, 33, tzinfo=dt.timezone.utc)
    finally:
        ib.disconnect()


def test_history_without_replay_ends_with_the_last_closed_session(start_gateway):
    today = pd.Timestamp.now(tz="UTC").normalize()
    gateway = start_gateway(SyntheticBarSource(["AAA"], seed=1, last_session=today), scale=1.0)
    ib = connect(gateway)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        bars = ib.reqHistoricalData(contract, "", "10 D", "1 day", "TRADES", True, 1)
        now = pd.Timestamp.now(tz="UTC")
    finally:
        ib.disconnect()
    calendar = xcals.get_calendar("XNYS", start=(today - pd.Timedelta(days=30)).strftime("%Y-%m-%d"))
    closed = calendar.closes[calendar.closes <= now]
    assert bars[-1].date == closed.index[-1].date()  # never today's bar before today's close


def test_one_day_of_minutes_before_mondays_open_is_the_last_session(start_gateway, minute_source):
    # 12:00 UTC on Monday 2021-06-07: 08:00 in New York, 90 minutes before the open
    replay = ReplayConfig(start="2021-06-07 12:00", interval="1min", step_seconds=3600.0)
    gateway = start_gateway(minute_source, scale=50.0, replay=replay)
    ib = connect(gateway)
    errors = collect_errors(ib)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        bars = ib.reqHistoricalData(contract, "", "1 D", "1 min", "TRADES", True, 1)
        assert not [e for e in errors if e[1] == 162]
        assert len(bars) == 390
        assert {b.date.date() for b in bars} == {dt.date(2021, 6, 4)}  # Friday's session
    finally:
        ib.disconnect()


# real-time bars ------------------------------------------------------------------------------


def minutes_around_now(symbol: str = "AAA") -> pd.DataFrame:
    """Minute bars on the tick grid from 10 minutes ago to 2 hours ahead, rising and falling."""
    start = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=10)
    stamps = pd.date_range(start, periods=130, freq="1min")
    rng = np.random.default_rng(11)
    opens = np.round(100 + np.cumsum(rng.normal(0, 0.2, len(stamps))), 2)
    closes = np.round(opens + rng.choice([-0.3, 0.25, 0.4, -0.15], len(stamps)), 2)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": stamps,
            "open": opens,
            "high": np.round(np.maximum(opens, closes) + 0.07, 2),
            "low": np.round(np.minimum(opens, closes) - 0.05, 2),
            "close": closes,
            "volume": rng.integers(1_000, 50_000, len(stamps)).astype(float),
        }
    )


def assert_consistent_with_minutes(bars, minutes: pd.DataFrame) -> int:
    """Each complete minute of 5-second bars reproduces that minute's OHLC and volume."""
    by_ts = minutes.set_index("ts")
    complete = 0
    times = [pd.Timestamp(b.time) for b in bars]
    assert all(t.second % 5 == 0 for t in times)
    assert all((b - a) == pd.Timedelta(seconds=5) for a, b in zip(times, times[1:]))
    for minute, group in pd.Series(list(bars), index=times).groupby(lambda t: t.floor("1min")):
        expected = by_ts.loc[minute]
        for bar in group:
            assert expected["low"] <= bar.low <= bar.open_ <= bar.high <= expected["high"] or (
                expected["low"] <= bar.low <= bar.high <= expected["high"] and bar.low <= bar.open_ <= bar.high
            )
        if len(group) < 12:
            continue
        complete += 1
        assert group.iloc[0].open_ == expected["open"] and group.iloc[-1].close == expected["close"]
        assert max(b.high for b in group) == expected["high"] and min(b.low for b in group) == expected["low"]
        assert sum(b.volume for b in group) == pytest.approx(expected["volume"])
    return complete


def realtime_bars(gateway, symbol: str, count: int) -> tuple[list, list[float]]:
    """The first ``count`` 5-second bars of ``symbol`` and when each arrived (monotonic seconds)."""
    ib = connect(gateway)
    arrivals: list[float] = []
    try:
        contract = Stock(symbol, "SMART", "USD")
        ib.qualifyContracts(contract)
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        bars.updateEvent += lambda *_: arrivals.append(time.monotonic())
        assert wait_until(ib, lambda: len(bars) >= count, timeout=30)
        ib.cancelRealTimeBars(bars)
        return list(bars), arrivals
    finally:
        ib.disconnect()


def test_realtime_bars_without_replay_are_true_five_second_bars_on_the_clock(start_gateway):
    minutes = minutes_around_now()
    scale = 25.0  # one 5-second bar every 0.2 s of real time
    gateway = start_gateway(FrameBarSource({"1min": minutes}), scale=scale)
    received, arrivals = realtime_bars(gateway, "AAA", 30)
    assert assert_consistent_with_minutes(received, minutes) >= 1
    # one bar per 5 clock seconds, not a burst: 29 gaps of 0.2 s take about 5.8 s
    assert arrivals[29] - arrivals[0] >= 0.6 * 29 * 5 / scale


def test_replayed_minutes_become_twelve_paced_five_second_bars(start_gateway, minute_source):
    scale = 30.0
    # one replayed minute per 60 clock seconds: the market runs at the clock's pace (2 s real)
    replay = ReplayConfig(start="2021-06-02 14:00", interval="1min", step_seconds=60.0)
    gateway = start_gateway(minute_source, scale=scale, replay=replay)
    received, arrivals = realtime_bars(gateway, "BBB", 24)
    day = minute_source.bars("BBB", pd.Timestamp("2021-06-02", tz="UTC"), pd.Timestamp("2021-06-03", tz="UTC"), "1min")
    assert received[0].time >= dt.datetime(2021, 6, 2, 14, 0, tzinfo=dt.timezone.utc)
    assert assert_consistent_with_minutes(received, day) >= 1
    # the twelve bars of a minute are spread over its 2 s of real time, not sent at once
    assert arrivals[11] - arrivals[0] >= 0.6 * 11 * 5 / scale


# fills ---------------------------------------------------------------------------------------


def test_partial_fills_take_a_share_of_each_bars_volume(start_gateway, daily_source, daily_frame):
    aaa = daily_frame[daily_frame.symbol == "AAA"].set_index("ts")
    before = aaa.loc[: pd.Timestamp("2021-05-28", tz="UTC")].iloc[-1]
    share = 10 / before["volume"]  # about 10 shares per daily bar
    replay = ReplayConfig(start="2021-06-01", step_seconds=5.0)
    gateway = start_gateway(daily_source, scale=50.0, replay=replay, volume_share=share, spread_bps=0.0)
    ib = connect(gateway)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 25))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Filled", timeout=30)
        fills = trade.fills
        assert len(fills) >= 3 and sum(f.execution.shares for f in fills) == 25
        assert [f.execution.cumQty for f in fills] == sorted(f.execution.cumQty for f in fills)
        assert fills[0].execution.shares == np.floor(share * before["volume"])
        assert fills[0].execution.price == round(before["close"] + 0.01, 2)  # the ask
        assert wait_until(ib, lambda: all(f.commissionReport.execId for f in trade.fills))
        assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(1.0)  # one order's fee
    finally:
        ib.disconnect()
    later = connect(gateway, client_id=1)
    try:
        executions = later.reqExecutions()
        assert sorted(f.execution.execId for f in executions) == sorted(f.execution.execId for f in fills)
        assert [(p.contract.symbol, p.position) for p in later.positions()] == [("AAA", 25.0)]
    finally:
        later.disconnect()


# contract details ----------------------------------------------------------------------------


def test_contract_details_carry_trading_and_liquid_hours(start_gateway, daily_source):
    # the day after Thanksgiving 2021 closes early; the weekend is closed
    gateway = start_gateway(daily_source, replay=ReplayConfig(start="2021-11-26 15:00", step_seconds=3600.0))
    ib = connect(gateway)
    try:
        (details,) = ib.reqContractDetails(Stock("AAA", "SMART", "USD"))
    finally:
        ib.disconnect()
    assert details.timeZoneId == "US/Eastern"
    liquid = details.liquidHours.split(";")
    trading = details.tradingHours.split(";")
    assert liquid[:4] == [
        "20211126:0930-20211126:1300",
        "20211127:CLOSED",
        "20211128:CLOSED",
        "20211129:0930-20211129:1600",
    ]
    assert trading[:4] == [
        "20211126:0400-20211126:1700",
        "20211127:CLOSED",
        "20211128:CLOSED",
        "20211129:0400-20211129:2000",
    ]
    assert len(liquid) == len(trading) == 7


def test_contract_details_hours_follow_the_calendar_without_replay(start_gateway, daily_source):
    gateway = start_gateway(daily_source, scale=1.0)
    ib = connect(gateway)
    try:
        (details,) = ib.reqContractDetails(Stock("BBB", "SMART", "USD"))
    finally:
        ib.disconnect()
    today = pd.Timestamp(pd.Timestamp.now(tz=NEW_YORK).date())
    calendar = xcals.get_calendar("XNYS", start=(today - pd.Timedelta(days=5)).strftime("%Y-%m-%d"))
    for entry, offset in zip(details.liquidHours.split(";"), range(7)):
        day = today + pd.Timedelta(days=offset)
        if calendar.is_session(day):
            close = calendar.session_close(day).tz_convert(NEW_YORK).strftime("%H%M")
            assert entry == f"{day:%Y%m%d}:0930-{day:%Y%m%d}:{close}"
        else:
            assert entry == f"{day:%Y%m%d}:CLOSED"


# error codes ---------------------------------------------------------------------------------


def test_malformed_contracts_get_321_and_unknown_ones_200(start_gateway, daily_source):
    gateway = start_gateway(daily_source, scale=50.0)
    ib = connect(gateway)
    errors = collect_errors(ib)
    try:
        no_exchange = Contract(symbol="AAA", secType="STK", currency="USD")
        assert len(ib.reqHistoricalData(no_exchange, "", "5 D", "1 day", "TRADES", True)) == 0
        bad_type = Contract(symbol="AAA", secType="XYZ", exchange="SMART", currency="USD")
        assert ib.reqContractDetails(bad_type) == []
        assert ib.reqContractDetails(Stock("ZZZZ", "SMART", "USD")) == []
        assert len(ib.reqHistoricalData(Stock("ZZZZ", "SMART", "USD"), "", "5 D", "1 day", "TRADES", True)) == 0
        trade = ib.placeOrder(no_exchange, MarketOrder("BUY", 1))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    finally:
        ib.disconnect()
    codes = [code for _, code, _ in errors]
    assert codes == [321, 321, 200, 200, 321]
    assert "Please enter exchange" in errors[0][2] and "Invalid security type" in errors[1][2]
    assert "No security definition" in errors[2][2]
    assert "Missing order exchange" in errors[4][2]
    assert gateway.emulator.broker.orders == {}


def test_cli_sets_the_spread_and_the_volume_share():
    from tt_platform.ib.emulator.cli import build_emulator, build_parser

    args = build_parser().parse_args(["--synthetic", "AAA", "--spread-bps", "5", "--volume-share", "0.1"])
    broker = build_emulator(args).broker
    assert (broker.quotes.spread_bps, broker.volume_share) == (5.0, 0.1)
    assert build_emulator(build_parser().parse_args(["--synthetic", "AAA"])).broker.volume_share is None
