from __future__ import annotations

import pytest

from tt_platform.ib.emulator.broker import (
    Broker,
    CommissionModel,
    OrderRejected,
    OrderTicket,
)
from tt_platform.ib.emulator.quotes import QuoteModel

T = "20211231 15:00:00 UTC"
VOLUME = 1e6  # a bar's volume: plenty unless a test caps fills by volume


def order(order_id=1, action="BUY", qty=100.0, kind="MKT", lmt=None, client_id=1):
    return OrderTicket(
        order_id=order_id,
        client_id=client_id,
        perm_id=1000 + order_id,
        symbol="AAA",
        action=action,
        quantity=qty,
        order_type=kind,
        lmt_price=lmt,
    )


def test_commission_follows_ibs_fixed_pricing():
    model = CommissionModel()
    assert model.commission(100, 50.0) == 1.0  # minimum
    assert model.commission(1000, 50.0) == 5.0  # 0.005 per share
    assert model.commission(1000, 0.2) == 2.0  # capped at 1 % of the value


def test_market_orders_fill_at_the_ask_or_the_bid_and_update_the_account():
    broker = Broker("DU1", initial_cash=10_000.0, quotes=QuoteModel(spread_bps=20.0))  # 10 cents at 50
    ticket = broker.submit(order())
    assert ticket.status == "Submitted"
    execution = broker.match(ticket, 50.0, VOLUME, 0.01, T)
    assert (execution.price, execution.shares, execution.side, execution.commission) == (50.05, 100.0, "BOT", 1.0)
    assert ticket.status == "Filled" and ticket.remaining == 0
    assert broker.cash == pytest.approx(10_000 - 5_005 - 1)
    holding = broker.holdings["AAA"]
    assert holding.quantity == 100 and holding.avg_cost == pytest.approx(50.06)
    broker.mark("AAA", 51.0)
    values = broker.account_values()
    assert values["NetLiquidation"] == pytest.approx(broker.cash + 5_100)
    assert values["UnrealizedPnL"] == pytest.approx(100 * (51.0 - 50.06))
    sell = broker.match(broker.submit(order(order_id=2, action="SELL")), 51.0, VOLUME, 0.01, T)
    assert sell.price == 50.95  # the bid


def test_the_spread_is_at_least_one_tick():
    quote = QuoteModel(spread_bps=0.0).around(20.0, 0.01)
    assert (quote.bid, quote.ask) == (19.99, 20.01)
    with pytest.raises(ValueError, match="spread_bps"):
        QuoteModel(spread_bps=-1.0)


def test_market_order_without_a_price_waits_for_the_next_bar_open():
    broker = Broker("DU1", quotes=QuoteModel(spread_bps=0.0))
    ticket = broker.submit(order())
    assert broker.match(ticket, None, VOLUME, 0.01, T) is None
    execution = broker.match_bar(ticket, 20.0, 21.0, 19.0, VOLUME, 0.01, T)
    assert execution.price == 20.01  # the ask at the open


def test_limit_orders_rest_until_a_bar_trades_through():
    broker = Broker("DU1")
    buy = broker.submit(order(kind="LMT", lmt=95.0))
    assert broker.match(buy, 100.0, VOLUME, 0.01, T) is None and buy.status == "Submitted"
    assert broker.match_bar(buy, 99.0, 101.0, 96.0, VOLUME, 0.01, T) is None
    assert broker.match_bar(buy, 94.0, 97.0, 93.0, VOLUME, 0.01, T).price == 94.0  # gap down: the open is better
    sell = broker.submit(order(order_id=2, action="SELL", qty=100.0, kind="LMT", lmt=105.0))
    assert broker.match_bar(sell, 103.0, 106.0, 102.0, VOLUME, 0.01, T).price == 105.0
    assert broker.holdings["AAA"].quantity == 0
    assert broker.holdings["AAA"].realized_pnl == pytest.approx(100 * (105.0 - 94.01) - 1.0)


def test_marketable_limit_fills_at_once_at_the_quote():
    broker = Broker("DU1", quotes=QuoteModel(spread_bps=0.0))
    ticket = broker.submit(order(kind="LMT", lmt=101.0))
    assert broker.match(ticket, 100.0, VOLUME, 0.01, T).price == 100.01  # the ask: better than the limit
    at_the_limit = broker.submit(order(order_id=2, kind="LMT", lmt=100.0))
    assert broker.match(at_the_limit, 100.0, VOLUME, 0.01, T) is None  # the ask is above the limit


def test_partial_fills_take_a_share_of_each_bars_volume():
    broker = Broker("DU1", quotes=QuoteModel(spread_bps=0.0), volume_share=0.1)
    ticket = broker.submit(order(qty=500.0, kind="LMT", lmt=50.0))
    first = broker.match_bar(ticket, 49.0, 49.5, 48.0, 2_000.0, 0.01, T)
    assert (first.shares, first.cum_qty, ticket.status, ticket.remaining) == (200.0, 200.0, "Submitted", 300.0)
    second = broker.match_bar(ticket, 49.2, 49.5, 48.0, 10_000.0, 0.01, T)
    assert (second.shares, second.cum_qty, ticket.status) == (300.0, 500.0, "Filled")
    # IB charges per order: the executions add up to the order's commission
    assert first.commission + second.commission == pytest.approx(CommissionModel().commission(500, 49.12))
    assert ticket.avg_fill_price == pytest.approx((200 * 49.0 + 300 * 49.2) / 500)
    assert broker.holdings["AAA"].quantity == 500
    with pytest.raises(ValueError, match="volume_share"):
        Broker("DU1", volume_share=1.5)


def test_a_what_if_order_changes_nothing():
    broker = Broker("DU1", initial_cash=100_000.0, quotes=QuoteModel(spread_bps=0.0))
    ticket = order(qty=100.0)
    impact = broker.what_if(ticket, 50.0, 0.01)
    assert impact.price == 50.01 and impact.commission == 1.0
    assert impact.init_margin_change == pytest.approx(0.25 * 100 * 50.01)
    assert impact.equity_with_loan_change == pytest.approx(-1.0)
    assert impact.init_margin_after == pytest.approx(impact.init_margin_before + impact.init_margin_change)
    assert broker.orders == {} and broker.executions == [] and broker.holdings == {}
    assert broker.cash == 100_000.0


def test_cancel_and_rejections():
    broker = Broker("DU1")
    ticket = broker.submit(order(kind="LMT", lmt=1.0))
    assert broker.cancel(1, 1).status == "Cancelled"
    with pytest.raises(OrderRejected) as info:
        broker.cancel(1, 1)
    assert info.value.code == 161
    with pytest.raises(OrderRejected) as info:
        broker.cancel(1, 99)
    assert info.value.code == 10147
    with pytest.raises(OrderRejected) as info:
        broker.submit(order())  # same id as the cancelled order
    assert info.value.code == 103
    for bad, code in (
        (order(order_id=5, action="HOLD"), 321),
        (order(order_id=6, qty=0), 321),
        (order(order_id=7, kind="STP"), 387),
        (order(order_id=8, kind="LMT", lmt=None), 321),
    ):
        with pytest.raises(OrderRejected) as info:
            broker.submit(bad)
        assert info.value.code == code
    assert ticket.is_done


def test_same_order_id_modifies_a_working_order():
    broker = Broker("DU1")
    broker.submit(order(kind="LMT", lmt=90.0))
    modified = broker.submit(order(kind="LMT", lmt=99.0, qty=50.0))
    assert (modified.lmt_price, modified.quantity) == (99.0, 50.0)
    assert len(broker.orders) == 1


def test_short_then_cover_and_flip():
    broker = Broker("DU1", quotes=QuoteModel(spread_bps=0.0))
    broker.match(broker.submit(order(action="SELL", qty=10.0)), 100.01, VOLUME, 0.01, T)  # bid 100.00
    assert broker.holdings["AAA"].quantity == -10
    assert broker.holdings["AAA"].avg_cost == pytest.approx(99.9)  # the commission lowers the entry
    execution = broker.match(broker.submit(order(order_id=2, qty=30.0)), 89.99, VOLUME, 0.01, T)  # ask 90.00
    h = broker.holdings["AAA"]
    assert h.quantity == 20
    assert execution.realized_pnl == pytest.approx(10 * (99.9 - 90.0) - 1.0 / 3)
    assert h.avg_cost == pytest.approx(90.0 + (2.0 / 3) / 20)
    assert broker.cash == pytest.approx(1_000_000 + 1000 - 1 - 2700 - 1)
