"""Orders, executions, commissions, positions and account values through unmodified ib_insync."""

from __future__ import annotations

import pandas as pd
import pytest
from ib_insync import IB, LimitOrder, MarketOrder, Stock

from tt_platform.ib.emulator import ReplayConfig
from tt_platform_tests.ib.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def connect(gateway, client_id: int = 1) -> IB:
    ib = IB()
    ib.RequestTimeout = 10
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=5)
    return ib


def account_value(ib: IB, tag: str) -> float:
    values = [float(v.value) for v in ib.accountValues() if v.tag == tag and v.currency == "USD" and not v.modelCode]
    assert values, f"no {tag} among the account values"
    return values[-1]


@pytest.fixture
def gateway(start_gateway, daily_source):
    return start_gateway(daily_source, scale=50.0)


def test_market_orders_fill_at_the_ask_and_the_bid(start_gateway, daily_source, daily_frame):
    gateway = start_gateway(daily_source, scale=50.0, spread_bps=10.0)  # half spread: 2 cents at ~40
    last_close = daily_frame.loc[daily_frame.symbol == "AAA", "close"].iloc[-1]
    assert 30 < last_close < 50
    ask, bid = round(last_close + 0.02, 2), round(last_close - 0.02, 2)
    ib = connect(gateway)
    try:
        assert account_value(ib, "NetLiquidation") == 1_000_000.0
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
        assert wait_until(ib, lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.commission > 0)
        assert trade.orderStatus.status == "Filled"
        assert trade.orderStatus.avgFillPrice == pytest.approx(ask)
        (fill,) = trade.fills
        assert (fill.execution.side, fill.execution.shares, fill.execution.price) == ("BOT", 10.0, ask)
        assert fill.commissionReport.commission == 1.0
        assert wait_until(ib, lambda: any(p.position == 10 for p in ib.positions()))
        (position,) = ib.positions()
        assert position.contract.symbol == "AAA"
        assert position.avgCost == pytest.approx(ask + 0.1)  # USD 1 commission over 10 shares
        assert wait_until(
            ib,
            lambda: (
                account_value(ib, "NetLiquidation")
                == pytest.approx(1_000_000 - 1.0 - 10 * (ask - last_close), abs=0.01)
            ),
        )
        assert account_value(ib, "GrossPositionValue") == pytest.approx(10 * last_close, abs=0.01)
        assert [item.position for item in ib.portfolio()] == [10.0]

        closing = ib.placeOrder(contract, MarketOrder("SELL", 10))
        assert wait_until(ib, lambda: closing.isDone() and closing.fills and closing.fills[0].commissionReport.execId)
        assert closing.fills[0].execution.price == bid
        # two commissions and the spread crossed twice
        assert closing.fills[0].commissionReport.realizedPNL == pytest.approx(-2.0 - 10 * (ask - bid), abs=0.02)
        assert wait_until(ib, lambda: ib.positions() == [])
    finally:
        ib.disconnect()


def test_limit_order_rests_and_cancels(gateway):
    ib = connect(gateway)
    try:
        contract = Stock("BBB", "SMART", "USD")
        ib.qualifyContracts(contract)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 5, 0.5))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        assert [t.order.orderId for t in ib.reqOpenOrders()] == [trade.order.orderId]
        ib.cancelOrder(trade.order)
        assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
        assert trade.fills == [] and ib.positions() == []
        assert ib.reqOpenOrders() == []
    finally:
        ib.disconnect()


def test_resting_limit_order_fills_on_a_replayed_bar(start_gateway, daily_source, daily_frame):
    gateway = start_gateway(daily_source, scale=50.0, replay=ReplayConfig(start="2021-06-01"))
    aaa = daily_frame[daily_frame.symbol == "AAA"].set_index("ts")
    before = aaa.loc[: pd.Timestamp("2021-05-31", tz="UTC"), "close"].iloc[-1]
    upcoming = aaa.loc[pd.Timestamp("2021-06-01", tz="UTC") :].iloc[:15]
    # a limit below the current price that one of the next sessions trades through
    limit = round(min(before * 0.999, upcoming["low"].min() + 0.01), 2)
    hit = upcoming[upcoming["low"] <= limit].iloc[0]
    ib = connect(gateway)
    try:
        contract = Stock("AAA", "SMART", "USD")
        ib.qualifyContracts(contract)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 3, limit))
        assert wait_until(ib, lambda: trade.orderStatus.status in ("Submitted", "Filled"))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Filled", timeout=20)
        assert trade.orderStatus.avgFillPrice == pytest.approx(round(min(hit["open"], limit), 2))
        assert trade.orderStatus.avgFillPrice <= limit
    finally:
        ib.disconnect()


def test_executions_and_positions_are_shared_across_clients_and_reconnects(gateway):
    first = connect(gateway, client_id=1)
    contract = Stock("CCC", "SMART", "USD")
    first.qualifyContracts(contract)
    trade = first.placeOrder(contract, MarketOrder("SELL", 4))
    assert wait_until(first, lambda: trade.isDone())
    first.disconnect()
    again = connect(gateway, client_id=1)
    other = connect(gateway, client_id=2)
    try:
        fills = again.reqExecutions()
        assert [(f.execution.side, f.execution.shares, f.contract.symbol) for f in fills] == [("SLD", 4.0, "CCC")]
        assert other.reqExecutions() == []  # executions belong to the client that placed the order
        assert [(p.contract.symbol, p.position) for p in other.positions()] == [("CCC", -4.0)]  # one account
        assert [(p.contract.symbol, p.position) for p in again.positions()] == [("CCC", -4.0)]
        next_order = again.placeOrder(contract, MarketOrder("BUY", 4))
        assert next_order.order.orderId > trade.order.orderId  # ids continue after a reconnect
    finally:
        again.disconnect()
        other.disconnect()


def test_a_fill_resends_only_the_changed_contracts_position_and_portfolio_rows(gateway):
    """As at IB: a fill in one contract updates that contract, not every holding (with 50 holdings,
    re-sending all of them on each fill floods the client while it is placing orders)."""
    ib = connect(gateway)
    try:
        contracts = [Stock(symbol, "SMART", "USD") for symbol in ("AAA", "BBB")]
        ib.qualifyContracts(*contracts)
        for contract in contracts:
            trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
            assert wait_until(ib, lambda trade=trade: trade.isDone())
        assert wait_until(ib, lambda: sorted(p.contract.symbol for p in ib.positions()) == ["AAA", "BBB"])
        positions, portfolio = [], []
        ib.positionEvent += lambda position: positions.append(position.contract.symbol)
        ib.updatePortfolioEvent += lambda item: portfolio.append(item.contract.symbol)
        trade = ib.placeOrder(contracts[1], MarketOrder("BUY", 5))
        assert wait_until(ib, lambda: trade.isDone() and "BBB" in positions and "BBB" in portfolio)
        ib.sleep(0.3)
        assert set(positions) == {"BBB"} and set(portfolio) == {"BBB"}
        assert {p.contract.symbol: p.position for p in ib.positions()} == {"AAA": 10.0, "BBB": 15.0}
        assert {item.contract.symbol: item.position for item in ib.portfolio()} == {"AAA": 10.0, "BBB": 15.0}
    finally:
        ib.disconnect()
