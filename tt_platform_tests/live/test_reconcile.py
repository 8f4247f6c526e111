"""Reconciliation: what the broker reports against what the session recorded -- new fills once,
working orders kept open, done orders settled, unsent orders named, other sessions' refs left
alone, and position differences reported with both numbers."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from tt_platform.ib.trading import BrokerExecution, BrokerOrderState
from tt_platform.live.order_refs import order_ref, session_key
from tt_platform.live.reconcile import OrderUpdate, reconcile, session_of_ref

OURS = session_key("paper-session-1")
THEIRS = session_key("paper-session-2")
BAR = datetime(2024, 3, 11, 14, 30, tzinfo=UTC)
LATER = datetime(2024, 3, 11, 14, 31, tzinfo=UTC)


def ref(symbol: str, side: str = "BUY", session: str = OURS, bar: datetime = BAR, sequence: int = 0) -> str:
    return order_ref(session, bar, symbol, side, sequence)


def recorded(order_id: str, status: str, quantity: float, **extra) -> dict:
    return {"order_id": order_id, "status": status, "quantity": quantity, "filled_quantity": 0.0} | extra


def working(order_ref: str, symbol: str, status: str = "Submitted", filled: float = 0.0, quantity: float = 100.0,
            broker_order_id: int = 11) -> BrokerOrderState:
    return BrokerOrderState(order_ref=order_ref, broker_order_id=broker_order_id, perm_id=broker_order_id + 1000,
                            symbol=symbol, side="BUY", quantity=quantity, filled=filled, remaining=quantity - filled,
                            avg_fill_price=0.0, status=status, order_type="LMT", limit_price=100.0)


def execution(exec_id: str, order_ref: str, symbol: str, shares: float, side: str = "BUY") -> BrokerExecution:
    return BrokerExecution(exec_id=exec_id, order_ref=order_ref, broker_order_id=11, symbol=symbol, side=side,
                           shares=shares, price=100.0, time=pd.Timestamp(LATER), commission=1.0)


def run(*, orders=(), fill_ids=(), open_orders=(), executions=(), broker=None, ours=None):
    return reconcile(session=OURS, recorded_orders=list(orders), recorded_fill_ids=set(fill_ids),
                     open_orders=list(open_orders), executions=list(executions), broker_positions=broker or {},
                     our_positions=ours or {})


def updates_by_order(result) -> dict[str, OrderUpdate]:
    return {u.order_id: u for u in result.order_updates}


# ---------------------------------------------------------------------------- fills
def test_new_executions_are_reported_once_recorded_ones_never_again():
    buy = ref("AAA")
    first, second = execution("e1", buy, "AAA", 40), execution("e2", buy, "AAA", 60)
    snapshot = {"orders": [recorded(buy, "submitted", 100)], "executions": [first, second]}
    before = run(**snapshot, ours={"AAA": 0.0}, broker={"AAA": 100.0})
    assert before.new_executions == (first, second)
    # the session records both fills; the broker keeps reporting them all day
    after = run(**snapshot, fill_ids={"e1", "e2"}, ours={"AAA": 100.0}, broker={"AAA": 100.0})
    assert after.new_executions == ()
    partly = run(**snapshot, fill_ids={"e1"}, ours={"AAA": 40.0}, broker={"AAA": 100.0})
    assert partly.new_executions == (second,)
    assert partly.position_breaks == {}


def test_an_execution_repeated_in_one_snapshot_is_new_and_booked_once():
    buy = ref("AAA")
    fill = execution("e1", buy, "AAA", 100)
    result = run(orders=[recorded(buy, "submitted", 100)], executions=[fill, fill],
                 ours={"AAA": 0.0}, broker={"AAA": 100.0})
    assert result.new_executions == (fill,)
    assert result.position_breaks == {}
    assert updates_by_order(result)[buy].filled_quantity == 100.0


def test_executions_of_other_sessions_and_of_hand_placed_orders_are_not_ours():
    mine, theirs = ref("AAA"), ref("AAA", session=THEIRS)
    by_hand = execution("e9", "rebalance by hand", "AAA", 5)
    result = run(orders=[recorded(mine, "submitted", 10)],
                 executions=[execution("e1", theirs, "AAA", 10), by_hand, execution("e2", mine, "AAA", 10)],
                 ours={"AAA": 0.0}, broker={"AAA": 25.0})
    assert [e.exec_id for e in result.new_executions] == ["e2"]
    # the broker's 25 include the other session's and the hand-placed shares: a reported break
    assert result.position_breaks == {"AAA": (10.0, 25.0)}
    assert session_of_ref(theirs) == THEIRS and session_of_ref("rebalance by hand") is None


# ---------------------------------------------------------------------------- order states
def test_orders_working_at_the_broker_stay_open():
    quiet, partial, pending, cancelling = ref("AAA"), ref("BBB"), ref("CCC"), ref("DDD")
    orders = [recorded(quiet, "submitted", 100), recorded(partial, "submitted", 100),
              recorded(pending, "pending_submit", 100), recorded(cancelling, "cancel_pending", 100)]
    open_orders = [working(quiet, "AAA"), working(partial, "BBB", filled=30, broker_order_id=12),
                   working(pending, "CCC", status="PreSubmitted", broker_order_id=13),
                   working(cancelling, "DDD", status="Submitted", broker_order_id=14)]
    result = run(orders=orders, open_orders=open_orders, executions=[execution("e1", partial, "BBB", 30)],
                 ours={"BBB": 0.0}, broker={"BBB": 30.0})
    updates = updates_by_order(result)
    assert quiet not in updates  # submitted and still submitted: nothing to write
    assert updates[partial] == OrderUpdate(partial, "partially_filled", "broker: Submitted", "12", 30.0)
    assert updates[pending] == OrderUpdate(pending, "submitted", "broker: PreSubmitted", "13", 0.0)
    # asked to cancel and still working: it stays cancel_pending, a fill may still come
    assert cancelling not in updates
    assert set(updates) == {partial, pending}


def test_a_cancel_the_broker_is_processing_is_recorded_as_pending():
    order = ref("AAA")
    result = run(orders=[recorded(order, "submitted", 100)],
                 open_orders=[working(order, "AAA", status="PendingCancel")])
    assert updates_by_order(result)[order].status == "cancel_pending"


def test_orders_no_longer_working_are_filled_cancelled_or_not_sent():
    full, split, partial, gone, never, cancelled = (ref("AAA"), ref("BBB"), ref("CCC"), ref("DDD"), ref("EEE"),
                                                    ref("FFF"))
    orders = [recorded(full, "submitted", 100), recorded(split, "pending_submit", 50),
              recorded(partial, "partially_filled", 100), recorded(gone, "submitted", 100),
              recorded(never, "pending_submit", 100), recorded(cancelled, "cancel_pending", 100)]
    executions = [execution("e1", full, "AAA", 100), execution("e2", split, "BBB", 20),
                  execution("e3", split, "BBB", 30), execution("e4", partial, "CCC", 40)]
    open_orders = [working(cancelled, "FFF", status="Cancelled")]
    result = run(orders=orders, executions=executions, open_orders=open_orders)
    updates = updates_by_order(result)
    assert updates[full].status == "filled" and updates[full].filled_quantity == 100.0
    # a pending_submit order the broker filled in two executions reached it after all
    assert updates[split].status == "filled" and updates[split].filled_quantity == 50.0
    assert updates[partial].status == "cancelled" and updates[partial].filled_quantity == 40.0
    assert "40 of 100 filled" in updates[partial].message
    assert updates[gone] == OrderUpdate(gone, "cancelled", "no longer working at the broker (not open)", None, 0.0)
    assert updates[never].status == "not_sent" and "never received" in updates[never].message
    assert updates[cancelled].status == "cancelled" and "(Cancelled)" in updates[cancelled].message


def test_orders_already_settled_are_left_alone():
    statuses = {"AAA": "filled", "BBB": "cancelled", "CCC": "not_sent", "DDD": "rejected"}
    done = [recorded(ref(symbol), status, 100) for symbol, status in statuses.items()]
    assert run(orders=done).order_updates == ()


def test_refs_of_other_sessions_are_never_updated_but_still_known():
    mine, theirs = ref("AAA"), ref("AAA", session=THEIRS)
    result = run(orders=[recorded(mine, "submitted", 10)], open_orders=[working(theirs, "AAA")],
                 executions=[execution("e1", theirs, "AAA", 10)])
    assert result.new_executions == ()
    # our order is not the other session's working one: it is no longer working
    assert updates_by_order(result)[mine].status == "cancelled"
    assert theirs in result.known_refs


# ---------------------------------------------------------------------------- known refs
def test_known_refs_hold_broker_open_orders_executions_and_recorded_orders():
    recorded_only, open_only, executed = ref("AAA"), ref("BBB"), ref("CCC", side="SELL")
    resubmitted = ref("DDD", sequence=1)
    hand_placed = working("", "EEE")  # an order without a ref is no ref at all
    result = run(orders=[recorded(recorded_only, "filled", 10), recorded(resubmitted, "not_sent", 5)],
                 open_orders=[working(open_only, "BBB"), hand_placed],
                 executions=[execution("e1", executed, "CCC", 5, side="SELL")])
    assert result.known_refs == frozenset({recorded_only, open_only, executed, resubmitted})
    assert ref("DDD") not in result.known_refs  # sequence 0 of DDD was never made


# ---------------------------------------------------------------------------- positions
def test_position_breaks_report_both_numbers_after_booking_new_fills():
    buy, sell = ref("AAA"), ref("BBB", side="SELL")
    result = run(orders=[recorded(buy, "submitted", 100), recorded(sell, "submitted", 30)],
                 executions=[execution("e1", buy, "AAA", 100), execution("e2", sell, "BBB", 30, side="SELL")],
                 ours={"AAA": 0.0, "BBB": 50.0, "CCC": 10.0, "DDD": 0.0},
                 broker={"AAA": 100.0, "BBB": 25.0, "ZZZ": 7.0})
    # AAA: 0 + 100 bought = broker; BBB: 50 - 30 sold = 20 vs 25; CCC: 10 vs none; DDD flat on both;
    # ZZZ is not a symbol of ours
    assert result.position_breaks == {"BBB": (20.0, 25.0), "CCC": (10.0, 0.0)}
    assert result.describe() == ("2 new fill(s); 2 order update(s); position differences: "
                                 "BBB ours 20 broker 25, CCC ours 10 broker 0")


def test_agreeing_positions_within_tolerance_are_no_break():
    result = run(ours={"AAA": 100.0}, broker={"AAA": 100.0 + 1e-9})
    assert result.position_breaks == {}
    assert result.describe() == "0 new fill(s); 0 order update(s)"


@pytest.mark.parametrize("broker_side", ["BUY", "BOT"])
def test_a_buy_is_booked_whichever_way_the_side_is_spelled(broker_side):
    buy = ref("AAA")
    fill = execution("e1", buy, "AAA", 10, side=broker_side)
    assert run(executions=[fill], ours={"AAA": 0.0}, broker={"AAA": 10.0}).position_breaks == {}
