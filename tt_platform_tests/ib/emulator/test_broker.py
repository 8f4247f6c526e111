from __future__ import annotations

import pytest

from tt_platform.ib.emulator.broker import (
    Broker,
    CommissionModel,
    OrderRejected,
    OrderTicket,
)

T = "20211231 15:00:00 UTC"


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


def test_market_order_fills_at_the_last_price_and_updates_the_account():
    broker = Broker("DU1", initial_cash=10_000.0)
    ticket = broker.submit(order())
    assert ticket.status == "Submitted"
    execution = broker.match(ticket, 50.004, 0.01, T)
    assert (execution.price, execution.shares, execution.side, execution.commission) == (50.0, 100.0, "BOT", 1.0)
    assert ticket.status == "Filled" and ticket.remaining == 0
    assert broker.cash == pytest.approx(10_000 - 5_000 - 1)
    holding = broker.holdings["AAA"]
    assert holding.quantity == 100 and holding.avg_cost == pytest.approx(50.01)
    broker.mark("AAA", 51.0)
    values = broker.account_values()
    assert values["NetLiquidation"] == pytest.approx(broker.cash + 5_100)
    assert values["UnrealizedPnL"] == pytest.approx(100 * (51.0 - 50.01))


def test_market_order_without_a_price_waits_for_the_next_bar_open():
    broker = Broker("DU1")
    ticket = broker.submit(order())
    assert broker.match(ticket, None, 0.01, T) is None
    execution = broker.match_bar(ticket, 20.0, 21.0, 19.0, 0.01, T)
    assert execution.price == 20.0


def test_limit_orders_rest_until_a_bar_trades_through():
    broker = Broker("DU1")
    buy = broker.submit(order(kind="LMT", lmt=95.0))
    assert broker.match(buy, 100.0, 0.01, T) is None and buy.status == "Submitted"
    assert broker.match_bar(buy, 99.0, 101.0, 96.0, 0.01, T) is None
    assert broker.match_bar(buy, 94.0, 97.0, 93.0, 0.01, T).price == 94.0  # gap down: the open is better
    sell = broker.submit(order(order_id=2, action="SELL", qty=100.0, kind="LMT", lmt=105.0))
    assert broker.match_bar(sell, 103.0, 106.0, 102.0, 0.01, T).price == 105.0
    assert broker.holdings["AAA"].quantity == 0
    assert broker.holdings["AAA"].realized_pnl == pytest.approx(100 * (105.0 - 94.01) - 1.0)


def test_marketable_limit_fills_at_once():
    broker = Broker("DU1")
    ticket = broker.submit(order(kind="LMT", lmt=101.0))
    assert broker.match(ticket, 100.0, 0.01, T).price == 100.0


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
    broker = Broker("DU1")
    broker.match(broker.submit(order(action="SELL", qty=10.0)), 100.0, 0.01, T)
    assert broker.holdings["AAA"].quantity == -10
    assert broker.holdings["AAA"].avg_cost == pytest.approx(99.9)  # the commission lowers the entry
    execution = broker.match(broker.submit(order(order_id=2, qty=30.0)), 90.0, 0.01, T)
    h = broker.holdings["AAA"]
    assert h.quantity == 20
    assert execution.realized_pnl == pytest.approx(10 * (99.9 - 90.0) - 1.0 / 3)
    assert h.avg_cost == pytest.approx(90.0 + (2.0 / 3) / 20)
    assert broker.cash == pytest.approx(1_000_000 + 1000 - 1 - 2700 - 1)
