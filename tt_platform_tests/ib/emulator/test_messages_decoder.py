"""Every frame the emulator sends, fed to ib_insync's own Decoder.

ib_insync drops a frame with a wrong field count silently (it logs and the request hangs), so
each layout is checked three ways: the exact field count, the decoded values reaching the
wrapper, and no error logged by the decoder.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from ib_insync.decoder import Decoder
from ib_insync.objects import BarData

from tt_platform.ib.emulator import messages as msg
from tt_platform.ib.emulator.broker import Execution, OrderTicket
from tt_platform.ib.emulator.contracts import default_spec
from tt_platform.ib.emulator.messages import BarRow
from tt_platform.ib.emulator.wire import HEADER, encode_fields

SPEC = default_spec("AAPL")


class RecordingWrapper:
    """Stands in for ib_insync's Wrapper and records every call the decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args):
            self.calls.append((name, args))

        return record

    def only(self, name: str) -> list[tuple]:
        return [args for called, args in self.calls if called == name]


@pytest.fixture
def decode(caplog):
    """decode(fields) -> RecordingWrapper, through real framing and ib_insync's Decoder."""

    def run(fields: list[object]) -> RecordingWrapper:
        frame = encode_fields(fields)
        (size,) = HEADER.unpack(frame[:4])
        assert size == len(frame) - 4
        # exactly what ib_insync's Client does with a received frame
        parts = frame[4:].decode(errors="backslashreplace").split("\0")
        parts.pop()
        wrapper = RecordingWrapper()
        with caplog.at_level(logging.ERROR, logger="ib_insync.Decoder"):
            caplog.clear()
            Decoder(wrapper, msg.SERVER_VERSION).interpret(parts)
            failures = [r.getMessage() for r in caplog.records if r.name == "ib_insync.Decoder"]
        assert not failures, f"ib_insync could not decode {fields[:2]}: {failures}"
        return wrapper

    return run


def test_handshake_is_exactly_two_fields():
    assert msg.handshake("20240102 10:00:00 UTC") == [176, "20240102 10:00:00 UTC"]


@pytest.mark.parametrize(
    "fields, method, expected",
    [
        (msg.next_valid_id(7), "nextValidId", (7,)),
        (msg.managed_accounts(["DU1", "DU2"]), "managedAccounts", ("DU1,DU2",)),
        (msg.contract_details_end(5), "contractDetailsEnd", (5,)),
        (msg.open_order_end(), "openOrderEnd", ()),
        (msg.position_end(), "positionEnd", ()),
        (msg.exec_details_end(9), "execDetailsEnd", (9,)),
        (msg.account_time("15:30"), "updateAccountTime", ("15:30",)),
        (msg.account_download_end("DU1"), "accountDownloadEnd", ("DU1",)),
        (
            msg.account_value("NetLiquidation", "1000.00", "USD", "DU1"),
            "updateAccountValue",
            ("NetLiquidation", "1000.00", "USD", "DU1"),
        ),
        (
            msg.account_update_multi(4, "DU1", "TotalCashValue", "5.00", "USD"),
            "accountUpdateMulti",
            (4, "DU1", "", "TotalCashValue", "5.00", "USD"),
        ),
        (msg.account_update_multi_end(4), "accountUpdateMultiEnd", (4,)),
        (
            msg.account_summary(3, "DU1", "NetLiquidation", "9.00", "USD"),
            "accountSummary",
            (3, "DU1", "NetLiquidation", "9.00", "USD"),
        ),
        (msg.account_summary_end(3), "accountSummaryEnd", (3,)),
        (msg.current_time(1700000000), "currentTime", (1700000000,)),
        (msg.tick_size(2, 8, 12345.0), "tickSize", (2, 8, 12345.0)),
        (msg.market_data_type(2, 1), "marketDataType", (2, 1)),
        (msg.tick_snapshot_end(2), "tickSnapshotEnd", (2,)),
        (msg.head_timestamp(6, "19801212-00:00:00"), "headTimestamp", (6, "19801212-00:00:00")),
        (msg.completed_orders_end(), "completedOrdersEnd", ()),
    ],
)
def test_simple_layouts(decode, fields, method, expected):
    # ib_insync's generic handler skips 2 fields (1 for ids >= 81, with no version field)
    skip = 1 if fields[0] >= 81 or fields[0] == 102 else 2
    assert len(fields) == skip + len(expected)
    assert decode(fields).only(method) == [expected]


def test_error_layout(decode):
    fields = msg.error(12, 162, "Historical Market Data Service error message:pacing violation")
    assert len(fields) == 6
    assert decode(fields).only("error") == [
        (12, 162, "Historical Market Data Service error message:pacing violation", "")
    ]


def test_contract_details_layout(decode):
    fields = msg.contract_details(3, SPEC)
    assert len(fields) == 40
    ((req_id, details),) = decode(fields).only("contractDetails")
    assert req_id == 3
    c = details.contract
    assert (c.symbol, c.secType, c.exchange, c.currency, c.conId) == ("AAPL", "STK", "SMART", "USD", SPEC.con_id)
    assert c.primaryExchange == "NASDAQ" and c.tradingClass == "NMS"
    assert details.minTick == 0.01
    assert details.longName == SPEC.long_name
    assert details.stockType == "COMMON" and details.timeZoneId == "US/Eastern"
    assert details.minSize == 0.0001 and details.suggestedSizeIncrement == 100


def test_historical_data_layout(decode):
    rows = [
        BarRow("20210104", 10.5, 11.25, 10.0, 11.0, 1200.0, 10.75, 12),
        BarRow("20210105", 11.0, 12.0, 10.5, 11.5, 800.0, 11.3, 8),
    ]
    fields = msg.historical_data(4, "20210101  00:00:00", "20210106  00:00:00", rows)
    assert len(fields) == 5 + 8 * len(rows)
    wrapper = decode(fields)
    bars = wrapper.only("historicalData")
    assert [b[0] for b in bars] == [4, 4]
    assert bars[0][1] == BarData(
        date="20210104", open=10.5, high=11.25, low=10.0, close=11.0, volume=1200.0, average=10.75, barCount=12
    )
    assert bars[1][1].close == 11.5
    assert wrapper.only("historicalDataEnd") == [(4, "20210101  00:00:00", "20210106  00:00:00")]


def test_historical_data_update_layout_keeps_ibs_field_order(decode):
    row = BarRow("1633046400", 1.0, 4.0, 0.5, 2.0, 900.0, 2.5, 9)
    fields = msg.historical_data_update(8, row)
    assert len(fields) == 10
    ((req_id, bar),) = decode(fields).only("historicalDataUpdate")
    assert req_id == 8
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.average, bar.barCount) == (
        1.0,
        4.0,
        0.5,
        2.0,
        900.0,
        2.5,
        9,
    )


def test_realtime_bar_layout(decode):
    row = BarRow("x", 1.5, 2.5, 1.25, 2.0, 300.0, 1.9, 3)
    fields = msg.realtime_bar(5, 1633046400, row)
    assert len(fields) == 11
    assert decode(fields).only("realtimeBar") == [(5, 1633046400, 1.5, 2.5, 1.25, 2.0, 300.0, 1.9, 3)]


def test_tick_price_layout(decode):
    fields = msg.tick_price(9, 4, 101.25, 300.0)
    assert len(fields) == 7
    assert decode(fields).only("priceSizeTick") == [(9, 4, 101.25, 300.0)]


def _ticket(**kw) -> OrderTicket:
    values = dict(
        order_id=11,
        client_id=3,
        perm_id=1000007,
        symbol="AAPL",
        action="BUY",
        quantity=25.0,
        order_type="LMT",
        lmt_price=101.5,
        account="DU1",
        order_ref="tt-1",
        status="Submitted",
    )
    values.update(kw)
    return OrderTicket(**values)


def test_order_status_layout(decode):
    ticket = _ticket(status="Filled", filled=25.0, avg_fill_price=101.0, last_fill_price=101.0)
    fields = msg.order_status(ticket)
    assert len(fields) == 12
    assert decode(fields).only("orderStatus") == [(11, "Filled", 25.0, 0.0, 101.0, 1000007, 0, 101.0, 3, "", 0.0)]


def test_open_order_layout(decode):
    fields = msg.open_order(_ticket(), SPEC)
    assert len(fields) == msg.OPEN_ORDER_FIELD_COUNT == 128
    ((order_id, contract, order, state),) = decode(fields).only("openOrder")
    assert order_id == 11
    assert (contract.symbol, contract.conId, contract.exchange) == ("AAPL", SPEC.con_id, "SMART")
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice) == ("BUY", 25.0, "LMT", 101.5)
    assert (order.clientId, order.permId, order.account, order.orderRef) == (3, 1000007, "DU1", "tt-1")
    assert state.status == "Submitted"
    # fields near the tail decoded in place prove the whole layout is aligned
    assert order.adjustedOrderType == "None"
    assert order.dontUseAutoPriceForHedge is True
    assert order.autoCancelParent is False
    assert order.whatIf is False


def test_open_order_with_a_missing_field_is_caught(caplog):
    """The harness itself: a short openOrder frame is reported, not silently accepted."""
    parts = encode_fields(msg.open_order(_ticket(), SPEC)[:-6])[4:].decode().split("\0")[:-1]
    with caplog.at_level(logging.ERROR, logger="ib_insync.Decoder"):
        wrapper = RecordingWrapper()
        Decoder(wrapper, msg.SERVER_VERSION).interpret(parts)
    assert wrapper.only("openOrder") == []
    assert any("Error handling fields" in r.getMessage() for r in caplog.records)


def _execution() -> Execution:
    return Execution(
        exec_id="0000e0d5.00000001.01.01",
        order_id=11,
        client_id=3,
        perm_id=1000007,
        symbol="AAPL",
        side="BOT",
        shares=25.0,
        price=101.0,
        cum_qty=25.0,
        avg_price=101.0,
        account="DU1",
        exchange="ISLAND",
        time_text="20211231 15:00:00 UTC",
        order_ref="tt-1",
        commission=1.0,
        realized_pnl=0.0,
    )


def test_exec_details_layout(decode):
    fields = msg.exec_details(-1, _execution(), SPEC)
    assert len(fields) == 31
    ((req_id, contract, execution),) = decode(fields).only("execDetails")
    assert req_id == -1
    assert (contract.symbol, contract.conId) == ("AAPL", SPEC.con_id)
    assert (execution.execId, execution.side, execution.shares, execution.price) == (
        "0000e0d5.00000001.01.01",
        "BOT",
        25.0,
        101.0,
    )
    assert (execution.orderId, execution.permId, execution.clientId, execution.cumQty) == (11, 1000007, 3, 25.0)
    assert execution.time == dt.datetime(2021, 12, 31, 15, 0, tzinfo=dt.UTC)
    assert execution.lastLiquidity == 1


def test_commission_report_layout(decode):
    fields = msg.commission_report(_execution())
    assert len(fields) == 8
    ((report,),) = decode(fields).only("commissionReport")
    assert (report.execId, report.commission, report.currency, report.realizedPNL) == (
        "0000e0d5.00000001.01.01",
        1.0,
        "USD",
        0.0,
    )


def test_position_layout(decode):
    fields = msg.position("DU1", SPEC, 25.0, 101.04)
    assert len(fields) == 16
    ((account, contract, quantity, avg_cost),) = decode(fields).only("position")
    assert (account, contract.symbol, contract.conId, quantity, avg_cost) == ("DU1", "AAPL", SPEC.con_id, 25.0, 101.04)


def test_portfolio_layout(decode):
    fields = msg.portfolio_value(SPEC, 25.0, 102.0, 2550.0, 101.04, 24.0, 0.0, "DU1")
    assert len(fields) == 20
    ((contract, position, price, value, cost, unrealized, realized, account),) = decode(fields).only("updatePortfolio")
    assert (contract.symbol, position, price, value, cost, unrealized, realized, account) == (
        "AAPL",
        25.0,
        102.0,
        2550.0,
        101.04,
        24.0,
        0.0,
        "DU1",
    )
