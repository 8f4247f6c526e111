"""IBTrading (real ib_insync underneath) against the gateway emulator: rounding, orders, fills
with their refs, reconciliation that never mistakes a failure for "nothing open", reconnects,
real-time bars and connectivity notices."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tt_platform.ib.client import ConnectRetry
from tt_platform.ib.emulator import (
    ContractSpec,
    FaultPlan,
    ReplayConfig,
    SyntheticBarSource,
)
from tt_platform.ib.emulator.contracts import stable_con_id
from tt_platform.ib.trading import (
    BrokerExecution,
    BrokerOrder,
    BrokerOrderState,
    BrokerRequestFailed,
    ContractRules,
    IBTrading,
    RealtimeBar,
    UnknownSymbol,
    mask_account,
    round_limit_price,
    round_quantity,
)

pytestmark = pytest.mark.timeout(60)
SCALE = 120.0  # one replayed minute (60 clock seconds) every 0.5 s
# Wednesday 2021-06-02 10:00 New York: the market is open, minute bars replay from here
REPLAY = ReplayConfig(start="2021-06-02 14:00", interval="1min", step_seconds=60.0)
ACCOUNT = "DU1234567"  # the emulator's paper account
BBB_TICK = 0.05
AAA_RULES = ContractRules("AAA", stable_con_id("AAA"), 0.01)
BBB_RULES = ContractRules("BBB", stable_con_id("BBB"), BBB_TICK)


@pytest.fixture(scope="module")
def source() -> SyntheticBarSource:
    # AAA trades around 1300 and BBB around 900 in June 2021 with this seed
    return SyntheticBarSource(["AAA", "BBB"], seed=3, last_session="2021-06-30")


@pytest.fixture
def gateway(start_gateway, source):
    return start_gateway(
        source,
        scale=SCALE,
        replay=REPLAY,
        contracts={"BBB": ContractSpec("BBB", stable_con_id("BBB"), min_tick=BBB_TICK)},
    )


def run(coro: Coroutine, timeout: float = 40.0) -> Any:
    return asyncio.get_event_loop().run_until_complete(asyncio.wait_for(coro, timeout))


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def client(gateway, client_id: int = 1, **kw) -> IBTrading:
    kw.setdefault("request_timeout", 3.0)
    kw.setdefault("connect_timeout", 3.0)
    kw.setdefault("retry", ConnectRetry(attempts=40, initial_seconds=0.02, max_seconds=0.2))
    return IBTrading("127.0.0.1", gateway.port, client_id, **kw)


def resting_buy(ref: str, symbol: str = "BBB", price: float = 500.1234, quantity: float = 5) -> BrokerOrder:
    """A buy limit far below the market: it rests."""
    return BrokerOrder(ref, symbol, "BUY", quantity, "LMT", limit_price=price)


def restart(gateway, down_seconds: float = 30.0) -> None:
    """IB's daily restart: every client dropped, the port closed (0.25 s real at this scale)."""
    gateway.submit(gateway.emulator.restart(down_seconds))


# rounding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "lot", "expected"),
    [
        (10.7, 1.0, 10.0),
        (10.0, 1.0, 10.0),
        (0.99, 1.0, 0.0),  # below one lot
        (250.0, 100.0, 200.0),
        (99.0, 100.0, 0.0),
        (-10.7, 1.0, -10.0),  # toward zero for sells expressed as negatives
        (0.3, 0.1, 0.3),  # float division says 2.9999999999999996 lots
        (0.1 * 3, 0.1, 0.3),  # 0.30000000000000004: dust, not a fourth lot
        (2.9999999999999996, 1.0, 3.0),  # dust below a whole lot counts as the lot
        (1.23456, 0.0001, 1.2345),
        (0.00009, 0.0001, 0.0),
    ],
)
def test_round_quantity_in_whole_lots_toward_zero(quantity, lot, expected):
    rounded = round_quantity(quantity, lot)
    assert rounded == expected and repr(rounded) == repr(expected)


@pytest.mark.parametrize(
    ("price", "tick", "side", "expected"),
    [
        (101.237, 0.01, "BUY", 101.23),
        (101.237, 0.01, "SELL", 101.24),
        (101.23, 0.01, "SELL", 101.23),  # on the grid stays
        (1.13, 0.01, "BUY", 1.13),  # float division says 112.99999999999999 ticks
        (4.35, 0.05, "BUY", 4.35),  # 86.99999999999999 ticks
        (4.36, 0.05, "BUY", 4.35),
        (4.36, 0.05, "SELL", 4.40),
        (0.07 * 3, 0.01, "SELL", 0.21),  # 0.21000000000000002 is dust, not 0.22
        (101.2299999999999, 0.01, "BUY", 101.23),
        (0.12345, 0.0001, "sell", 0.1235),
        (500.1234, 0.05, "BUY", 500.10),
    ],
)
def test_round_limit_price_buys_down_sells_up_without_dust(price, tick, side, expected):
    rounded = round_limit_price(price, tick, side)
    assert rounded == expected and repr(rounded) == repr(expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: round_quantity(10, 0), "lot_size must be > 0"),
        (lambda: round_quantity(float("nan"), 1), "quantity must be finite"),
        (lambda: round_limit_price(10.0, 0.01, "HOLD"), "side must be 'BUY' or 'SELL'"),
        (lambda: round_limit_price(-1.0, 0.01, "BUY"), "limit price must be > 0"),
        (lambda: round_limit_price(10.0, -0.01, "BUY"), "min_tick must be > 0"),
        (lambda: round_limit_price(0.004, 0.01, "BUY"), "rounds to 0"),
    ],
)
def test_rounding_rejects_bad_input_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# plain values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_ref": ""}, "order_ref must be a non-empty string"),
        ({"order_ref": "a,b"}, "must not contain NUL or commas"),
        ({"symbol": " "}, "symbol must be a non-empty string"),
        ({"side": "SHORT"}, "side must be 'BUY' or 'SELL'"),
        ({"quantity": 0}, "quantity must be > 0"),
        ({"quantity": -5}, "quantity must be > 0"),
        ({"quantity": float("inf")}, "quantity must be > 0"),
        ({"order_type": "STP"}, "order_type must be 'MKT' or 'LMT'"),
        ({"order_type": "LMT"}, "LMT order needs a limit_price > 0"),
        ({"order_type": "LMT", "limit_price": 0.0}, "LMT order needs a limit_price > 0"),
        ({"limit_price": 10.0}, "MKT order takes no limit_price"),
        ({"tif": "FOREVER"}, "tif must be one of"),
    ],
)
def test_broker_order_is_validated(kwargs, message):
    values = {"order_ref": "tt:x:1", "symbol": "AAA", "side": "BUY", "quantity": 10, "order_type": "MKT"} | kwargs
    with pytest.raises(ValueError, match=message):
        BrokerOrder(**values)


def test_values_are_normalized_and_states_know_when_open():
    order = BrokerOrder("r", " aaa ", "buy", 3, "lmt", limit_price=9.5, tif="gtc")
    assert (order.symbol, order.side, order.order_type, order.tif) == ("AAA", "BUY", "LMT", "GTC")
    with pytest.raises(ValueError, match="min_tick must be > 0"):
        ContractRules("AAA", 1, 0.0)
    with pytest.raises(ValueError, match="con_id must be a positive int"):
        ContractRules("AAA", 0, 0.01)

    def state(status: str) -> BrokerOrderState:
        return BrokerOrderState("r", 1, 2, "AAA", "BUY", 3.0, 0.0, 3.0, 0.0, status, "LMT", 9.5)

    assert [state(s).is_open for s in ("PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel")] == [True] * 4
    assert [state(s).is_open for s in ("Filled", "Cancelled", "ApiCancelled", "Inactive")] == [False] * 4
    assert mask_account(ACCOUNT) == "DU…4567" and mask_account("U123") == "***"


# contracts ------------------------------------------------------------------------------------


def test_contract_rules_from_contract_details(gateway):
    async def scenario():
        trading = client(gateway)
        await trading.connect()
        try:
            rules = await trading.contract_rules(["aaa", "BBB"])
            fractional = await trading.contract_rules(["AAA"], fractional=True)
            with pytest.raises(UnknownSymbol) as unknown:
                await trading.contract_rules(["AAA", "ZZZZ"])
            return rules, fractional, unknown.value
        finally:
            trading.disconnect()

    rules, fractional, unknown = run(scenario())
    assert rules == {"AAA": AAA_RULES, "BBB": BBB_RULES}  # whole shares unless asked otherwise
    assert fractional["AAA"].lot_size == 0.0001  # the emulator's sizeIncrement, like IB's for US stocks
    assert set(unknown.reasons) == {"ZZZZ"} and "ZZZZ" in str(unknown) and "error 200" in str(unknown)


# orders and fills -----------------------------------------------------------------------------


def test_market_order_fills_and_the_execution_carries_the_ref(gateway):
    executions: list[BrokerExecution] = []
    statuses: list[BrokerOrderState] = []

    async def scenario():
        trading = client(gateway)
        trading.on_execution = executions.append
        trading.on_order_status = statuses.append
        await trading.connect()
        try:
            state = await trading.place(BrokerOrder("tt:mkt:1", "AAA", "BUY", 10.7, "MKT"), AAA_RULES)
            assert await eventually(lambda: any(e.commission is not None for e in executions))
            with pytest.raises(ValueError, match="already sent to IB"):
                await trading.place(BrokerOrder("tt:mkt:1", "AAA", "BUY", 1, "MKT"), AAA_RULES)
            return state, await trading.executions(), await trading.positions(), trading.account_label
        finally:
            trading.disconnect()

    state, reported, positions, label = run(scenario())
    assert state.order_ref == "tt:mkt:1" and state.quantity == 10.0 and state.order_type == "MKT"
    assert state.status in ("Submitted", "Filled") and state.perm_id > 0 and state.limit_price is None
    (ticket,) = gateway.emulator.broker.orders.values()
    assert (ticket.order_ref, ticket.quantity, ticket.tif, ticket.account) == ("tt:mkt:1", 10.0, "DAY", ACCOUNT)
    # delivered once, with the commission report that followed the fill
    (live,) = executions
    assert live.commission == 1.0
    assert (live.order_ref, live.symbol, live.side, live.shares) == ("tt:mkt:1", "AAA", "BUY", 10.0)
    assert live.time.tz is not None and str(live.time.tz) == "UTC"
    assert live.time == REPLAY.start  # the fill happened at the replay's market time
    assert reported == [live]
    assert statuses[-1].status == "Filled" and statuses[-1].filled == 10.0 and not statuses[-1].is_open
    assert statuses[-1].avg_fill_price == live.price
    assert positions == {"AAA": 10.0}
    assert label == "DU…4567"


def test_a_fill_not_waiting_for_its_commission_comes_again_with_it(gateway):
    executions: list[BrokerExecution] = []

    async def scenario():
        trading = client(gateway, commission_wait=0.0)
        trading.on_execution = executions.append
        await trading.connect()
        try:
            await trading.place(BrokerOrder("tt:nowait:1", "AAA", "SELL", 4, "MKT"), AAA_RULES)
            assert await eventually(lambda: len(executions) == 2)
            await asyncio.sleep(0.1)
        finally:
            trading.disconnect()

    run(scenario())
    first, second = executions
    assert (first.commission, second.commission) == (None, 1.0)
    assert first.exec_id == second.exec_id and dataclasses.replace(first, commission=1.0) == second


def test_limit_order_rests_on_the_tick_grid_and_another_client_sees_it_until_cancelled(gateway):
    statuses: list[BrokerOrderState] = []

    async def scenario():
        trading, observer = client(gateway, 1), client(gateway, 2)
        trading.on_order_status = statuses.append
        await trading.connect()
        await observer.connect()
        try:
            buy = await trading.place(resting_buy("tt:lmt:buy"), BBB_RULES)
            sell = await trading.place(BrokerOrder("tt:lmt:sell", "AAA", "SELL", 3, "LMT", limit_price=2000.0111),
                                       AAA_RULES)
            await asyncio.sleep(0.6)  # a replayed minute passes: neither trades
            seen = await observer.open_orders()
            with pytest.raises(ValueError, match=r"belongs to client id\(s\) \[1\]"):
                await observer.cancel("tt:lmt:buy")  # IB lets only the placing client cancel
            await trading.cancel("tt:lmt:buy")
            after = await observer.open_orders()
            await trading.cancel("tt:lmt:buy")  # nothing open with that ref any more: quiet
            return buy, sell, seen, after
        finally:
            trading.disconnect()
            observer.disconnect()

    buy, sell, seen, after = run(scenario())
    assert (buy.status, buy.limit_price, buy.quantity) == ("Submitted", 500.10, 5.0)
    assert (buy.filled, buy.remaining) == (0.0, 5.0)
    assert sell.limit_price == 2000.02  # sells round up
    by_ref = {o.order_ref: o for o in seen}
    assert set(by_ref) == {"tt:lmt:buy", "tt:lmt:sell"}  # reqAllOpenOrders: another client's orders
    assert by_ref["tt:lmt:buy"].limit_price == 500.10 and by_ref["tt:lmt:buy"].is_open
    assert by_ref["tt:lmt:buy"].perm_id == buy.perm_id and by_ref["tt:lmt:buy"].symbol == "BBB"
    assert [o.order_ref for o in after] == ["tt:lmt:sell"]
    tickets = {t.order_ref: t for t in gateway.emulator.broker.orders.values()}
    assert tickets["tt:lmt:buy"].status == "Cancelled" and tickets["tt:lmt:buy"].lmt_price == 500.10
    assert tickets["tt:lmt:sell"].lmt_price == 2000.02 and tickets["tt:lmt:sell"].filled == 0
    buy_states = [s.status for s in statuses if s.order_ref == "tt:lmt:buy"]
    assert buy_states[-2:] == ["PendingCancel", "Cancelled"]


def test_cancel_all_cancels_this_clients_orders_only(gateway):
    async def scenario():
        trading, other = client(gateway, 1), client(gateway, 2)
        await trading.connect()
        await other.connect()
        try:
            await trading.place(resting_buy("tt:all:1"), BBB_RULES)
            await trading.place(resting_buy("tt:all:2", "AAA", price=700.0), AAA_RULES)
            await other.place(resting_buy("tt:all:other"), BBB_RULES)
            cancelled = await trading.cancel_all()
            return cancelled, await trading.open_orders(), await trading.cancel_all()
        finally:
            trading.disconnect()
            other.disconnect()

    cancelled, remaining, again = run(scenario())
    assert cancelled == 2 and again == 0
    assert [o.order_ref for o in remaining] == ["tt:all:other"]


def test_an_order_below_one_lot_is_not_sent(gateway):
    async def scenario():
        trading = client(gateway)
        await trading.connect()
        try:
            tiny = await trading.place(BrokerOrder("tt:tiny:1", "AAA", "BUY", 0.6, "MKT"), AAA_RULES)
            lots = dataclasses.replace(AAA_RULES, lot_size=100.0)
            odd = await trading.place(BrokerOrder("tt:tiny:2", "AAA", "SELL", 99, "MKT"), lots)
            with pytest.raises(ValueError, match="rules are for BBB"):
                await trading.place(BrokerOrder("tt:tiny:3", "AAA", "BUY", 1, "MKT"), BBB_RULES)
            return tiny, odd
        finally:
            trading.disconnect()

    assert run(scenario()) == (None, None)
    assert gateway.emulator.broker.orders == {}


def test_a_batch_goes_out_before_any_answer_and_each_order_gets_its_own_outcome(gateway):
    """``submit`` writes every order before reading an answer; ``acknowledged`` gives each its
    state, None (below one lot) or the error that kept it back, and the Trades it registered are
    the ones ib_insync keeps up to date."""
    async def scenario():
        trading = client(gateway)
        await trading.connect()
        try:
            await trading.place(BrokerOrder("tt:batch:0", "AAA", "BUY", 1, "MKT"), AAA_RULES)
            batch = [(BrokerOrder(f"tt:batch:{i}", "AAA", "BUY" if i % 2 else "SELL", i, "MKT"), AAA_RULES)
                     for i in range(1, 7)]
            batch += [(BrokerOrder("tt:batch:tiny", "AAA", "BUY", 0.4, "MKT"), AAA_RULES),
                      (BrokerOrder("tt:batch:0", "AAA", "BUY", 1, "MKT"), AAA_RULES),  # already sent
                      (BrokerOrder("tt:batch:wrong", "AAA", "BUY", 1, "MKT"), BBB_RULES)]
            submissions = trading.submit(batch)
            # nothing was read yet: every sent order is still PendingSubmit on this side
            pending = [s.trade.orderStatus.status for s in submissions if s.trade is not None]
            results = await trading.acknowledged(submissions)
            assert await eventually(lambda: all(t.orderStatus.status == "Filled"
                                                for t in trading._ib.trades() if t.order.orderRef != "tt:batch:0"))
            return pending, results, await trading.positions()
        finally:
            trading.disconnect()

    pending, results, positions = run(scenario())
    assert pending == ["PendingSubmit"] * 6
    states, (tiny, repeated, wrong) = results[:6], results[6:]
    assert [s.order_ref for s in states] == [f"tt:batch:{i}" for i in range(1, 7)]
    assert all(isinstance(s, BrokerOrderState) and s.perm_id > 0 for s in states)
    assert [s.quantity for s in states] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert tiny is None
    assert isinstance(repeated, ValueError) and "already sent to IB" in str(repeated)
    assert isinstance(wrong, ValueError) and "rules are for BBB" in str(wrong)
    assert sorted(t.order_ref for t in gateway.emulator.broker.orders.values()) == sorted(
        f"tt:batch:{i}" for i in range(7))
    assert positions == {"AAA": 1.0 + 1 - 2 + 3 - 4 + 5 - 6}


def test_a_batch_the_gateway_does_not_acknowledge_fails_per_order_naming_each_ref(gateway):
    async def scenario():
        trading = client(gateway, request_timeout=0.4)
        await trading.connect()
        try:
            await trading.place(resting_buy("tt:quiet:0"), BBB_RULES)
            gateway.loop.call_soon_threadsafe(time.sleep, 1.5)  # the gateway stops answering
            await asyncio.sleep(0.05)
            submissions = trading.submit([(resting_buy("tt:quiet:1"), BBB_RULES), (resting_buy("tt:quiet:2"), BBB_RULES)])
            return await trading.acknowledged(submissions)
        finally:
            trading.disconnect()

    first, second = run(scenario())
    for result, ref in ((first, "tt:quiet:1"), (second, "tt:quiet:2")):
        assert isinstance(result, BrokerRequestFailed)
        assert str(result).startswith(f"placeOrder {ref} failed: no answer within 0.4 s")
        assert "may still reach IB" in str(result)


def test_a_rejected_order_comes_back_cancelled_with_ibs_reason(gateway):
    async def scenario():
        trading = client(gateway)
        await trading.connect()
        try:
            wrong = ContractRules("AAA", 12345, 0.01)  # a conId IB does not have for AAA
            return await trading.place(BrokerOrder("tt:bad:1", "AAA", "BUY", 1, "MKT"), wrong)
        finally:
            trading.disconnect()

    state = run(scenario())
    assert state.status == "Cancelled" and not state.is_open
    assert "200" in state.reason and "No security definition" in state.reason
    assert gateway.emulator.broker.orders == {}


# failures are never empty answers -------------------------------------------------------------


def reconciliation_calls(trading: IBTrading) -> dict[str, Callable[[], Coroutine]]:
    return {
        "reqAllOpenOrders": trading.open_orders,
        "reqExecutions": trading.executions,
        "reqPositions": trading.positions,
    }


def test_every_request_without_a_connection_raises(gateway):
    async def scenario():
        never = client(gateway)
        calls = {
            **reconciliation_calls(never),
            "placeOrder tt:nc:1": lambda: never.place(BrokerOrder("tt:nc:1", "AAA", "BUY", 1, "MKT"), AAA_RULES),
            "cancelOrder tt:nc:1": lambda: never.cancel("tt:nc:1"),
            "reqOpenOrders": never.cancel_all,
            "reqContractDetails": lambda: never.contract_rules(["AAA"]),
            "reqRealTimeBars AAA": lambda: never.subscribe_realtime_bars(["AAA"]),
        }
        failures = {}
        for name, call in calls.items():
            with pytest.raises(BrokerRequestFailed) as caught:
                await call()
            failures[name] = caught.value
        # the same after a connection was closed
        closed = client(gateway)
        await closed.connect()
        closed.disconnect()
        for name, call in reconciliation_calls(closed).items():
            with pytest.raises(BrokerRequestFailed, match=f"{name} failed: not connected"):
                await call()
        return failures

    failures = run(scenario())
    for name, failure in failures.items():
        assert failure.request == name and str(failure).startswith(f"{name} failed: not connected to IB")
    assert gateway.emulator.broker.orders == {}


def test_an_unreachable_gateway_is_a_clear_connection_error(gateway):
    port = gateway.port
    gateway.stop()

    async def scenario():
        trading = client(gateway, connect_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"cannot connect to IB at 127.0.0.1:{port} as client 1"):
            await trading.connect()
        assert not trading.is_connected()
        return time.monotonic() - started

    assert run(scenario()) < 1.5


def test_a_hung_gateway_fails_each_request_within_the_timeout(gateway):
    timeout = 0.4
    hang = 2.2

    async def scenario():
        trading = client(gateway, request_timeout=timeout)
        await trading.connect()
        try:
            await trading.place(resting_buy("tt:hang:1"), BBB_RULES)
            gateway.loop.call_soon_threadsafe(time.sleep, hang)  # the gateway stops answering
            hung_at = time.monotonic()
            await asyncio.sleep(0.05)
            took = {}
            calls = {
                **reconciliation_calls(trading),
                "placeOrder tt:hang:2": lambda: trading.place(resting_buy("tt:hang:2"), BBB_RULES),
            }
            for name, call in calls.items():
                started = time.monotonic()
                with pytest.raises(BrokerRequestFailed, match=f"{name} failed: no answer within 0.4 s") as caught:
                    await call()
                took[name] = time.monotonic() - started
                if name.startswith("placeOrder"):
                    assert "may still reach IB" in str(caught.value)
            still_hung = hang - (time.monotonic() - hung_at)
            assert still_hung > 0.2  # all of it while the gateway was hung
            # asked again while the gateway still hangs: when it wakes up, the late answer to the
            # first request (without tt:hang:2) comes first and must not pass for this one's
            trading.request_timeout = 5.0
            orders = await trading.open_orders()
            positions = await trading.positions()
            with pytest.raises(ValueError, match="already sent"):
                await trading.place(resting_buy("tt:hang:2"), BBB_RULES)
            return took, orders, positions
        finally:
            trading.disconnect()

    took, orders, positions = run(scenario())
    assert all(timeout * 0.9 <= t < timeout + 0.3 for t in took.values()), took
    # the order sent into the hung gateway did reach it: it shows up, the late answer was dropped
    assert sorted(o.order_ref for o in orders) == ["tt:hang:1", "tt:hang:2"]
    assert positions == {}


def test_disconnecting_fails_a_request_in_flight_at_once(gateway):
    dropped = []

    async def scenario():
        trading = client(gateway, request_timeout=5.0)
        trading.on_disconnected = lambda: dropped.append(True)
        await trading.connect()
        gateway.loop.call_soon_threadsafe(time.sleep, 1.0)  # the answer will not come soon
        request = asyncio.ensure_future(trading.executions())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        trading.disconnect()
        with pytest.raises(BrokerRequestFailed, match="reqExecutions failed: disconnected by the caller"):
            await request
        return time.monotonic() - started

    assert run(scenario()) < 0.2
    assert dropped == []  # the owner's own disconnect is not news to the owner


def test_a_socket_dropped_mid_answer_is_a_failure_not_a_short_list(gateway):
    dropped = []

    async def scenario():
        trading = client(gateway)
        trading.on_disconnected = lambda: dropped.append(time.monotonic())
        await trading.connect()
        try:
            await trading.place(resting_buy("tt:drop:1"), BBB_RULES)
            await trading.place(resting_buy("tt:drop:2", "AAA", price=700.0), AAA_RULES)
            emulator = gateway.emulator
            session = emulator.sessions[1]
            # the next answer is cut after its first message (an openOrder), then the socket closes
            emulator.faults = dataclasses.replace(emulator.faults, drop_after_messages=session.sent + 1)
            with pytest.raises(BrokerRequestFailed, match="reqAllOpenOrders failed: connection lost") as caught:
                await trading.open_orders()
            assert await eventually(lambda: bool(dropped))
            assert not trading.is_connected()
            await trading.reconnect()
            return caught.value, await trading.open_orders()
        finally:
            trading.disconnect()

    failure, orders = run(scenario())
    assert failure.request == "reqAllOpenOrders"
    assert len(dropped) == 1 and gateway.emulator.stats.drops == 1
    assert sorted(o.order_ref for o in orders) == ["tt:drop:1", "tt:drop:2"]


def test_a_contract_request_the_gateway_does_not_answer_in_time_fails(start_gateway, source):
    gateway = start_gateway(source, scale=SCALE, replay=REPLAY,
                            faults=FaultPlan(contract_details_delay_seconds=600.0))  # 5 s real

    async def scenario():
        trading = client(gateway, request_timeout=0.4)
        await trading.connect()
        try:
            started = time.monotonic()
            with pytest.raises(BrokerRequestFailed, match="reqContractDetails AAA failed: no answer within 0.4 s"):
                await trading.contract_rules(["AAA"])
            return time.monotonic() - started
        finally:
            trading.disconnect()

    assert run(scenario()) < 0.8


# reconnects -----------------------------------------------------------------------------------


def test_fills_and_positions_are_reconciled_after_a_gateway_restart(gateway):
    dropped: list[float] = []

    async def scenario():
        trading = client(gateway)
        trading.on_disconnected = lambda: dropped.append(time.monotonic())
        await trading.connect()
        try:
            await trading.place(BrokerOrder("tt:rc:1", "AAA", "BUY", 20, "MKT"), AAA_RULES)
            await trading.place(BrokerOrder("tt:rc:2", "AAA", "SELL", 5, "MKT"), AAA_RULES)
            await trading.place(resting_buy("tt:rc:3"), BBB_RULES)
            before = await trading.executions()
            restart(gateway)
            assert await eventually(lambda: bool(dropped))
            for name, call in reconciliation_calls(trading).items():
                with pytest.raises(BrokerRequestFailed, match=f"{name} failed: not connected"):
                    await call()
            await trading.reconnect()
            return before, await trading.executions(), await trading.positions(), await trading.open_orders()
        finally:
            trading.disconnect()

    before, after, positions, orders = run(scenario())
    assert len(dropped) == 1 and gateway.emulator.stats.restarts == 1
    fills = sorted((e.order_ref, e.side, e.shares) for e in after)
    assert fills == [("tt:rc:1", "BUY", 20.0), ("tt:rc:2", "SELL", 5.0)]
    assert {e.exec_id for e in after} == {e.exec_id for e in before}
    assert all(e.commission == 1.0 for e in after)
    assert positions == {"AAA": 15.0}
    assert [(o.order_ref, o.status) for o in orders] == [("tt:rc:3", "Submitted")]


def test_realtime_bars_arrive_and_come_back_after_a_restart(gateway):
    bars: list[RealtimeBar] = []
    dropped: list[float] = []

    async def on_bar(bar: RealtimeBar) -> None:  # coroutine callbacks are scheduled on the loop
        bars.append(bar)

    async def scenario():
        trading = client(gateway)
        trading.on_realtime_bar = on_bar
        trading.on_disconnected = lambda: dropped.append(time.monotonic())
        await trading.connect()
        try:
            await trading.contract_rules(["AAA", "BBB"])
            await trading.subscribe_realtime_bars(["AAA", "BBB"])
            assert await eventually(lambda: {b.symbol for b in bars} == {"AAA", "BBB"} and len(bars) >= 12)
            restart(gateway)
            assert await eventually(lambda: bool(dropped))
            first = list(bars)
            await trading.reconnect()  # connects and requests both streams again
            assert await trading.resubscribe() == 0  # nothing left to restore
            assert await eventually(lambda: len(bars) >= len(first) + 12)
            sessions = gateway.emulator.sessions
            streams = [s.symbol for s in sessions[1].streams.values() if s.kind == "rtbars"]
            return first, bars[len(first):], sorted(streams)
        finally:
            trading.disconnect()

    first, again, streams = run(scenario())
    assert streams == ["AAA", "BBB"]  # one stream each: nothing subscribed twice
    for received in (first, again):
        assert {b.symbol for b in received} == {"AAA", "BBB"}
        assert all(str(b.start.tz) == "UTC" and b.start.second % 5 == 0 for b in received)
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in received)
    assert min(b.start for b in again) > max(b.start for b in first)  # the market moved on
    assert first[0].start >= REPLAY.start


def test_data_lost_1101_requests_the_streams_again_without_duplicates(gateway):
    bars: list[RealtimeBar] = []
    notices: list[int] = []

    async def scenario():
        trading = client(gateway)
        trading.on_realtime_bar = bars.append
        trading.on_connectivity = lambda code, message: notices.append(code)
        await trading.connect()
        try:
            await trading.subscribe_realtime_bars(["AAA"])
            assert await eventually(lambda: len(bars) >= 6)
            session = gateway.emulator.sessions[1]
            text = "Connectivity between IB and Trader Workstation has been restored - data lost."
            gateway.loop.call_soon_threadsafe(session.error, -1, 1101, text)
            assert await eventually(lambda: notices == [1101])
            before = len(bars)
            assert await eventually(lambda: len(bars) >= before + 24)
            # the emulator keeps serving the old request id too (IB would have dropped it)
            return [s.symbol for s in session.streams.values() if s.kind == "rtbars"]
        finally:
            trading.disconnect()

    streams = run(scenario())
    assert streams == ["AAA", "AAA"]  # requested again after 1101
    starts = [b.start for b in bars]
    assert len(starts) == len(set(starts))  # the old request's bars are not delivered twice
    assert starts == sorted(starts)


# connectivity and secrets ---------------------------------------------------------------------


def test_connectivity_lost_and_restored_reach_the_owner(start_gateway, source):
    # 1100 one real second after start, 1102 half a second later
    gateway = start_gateway(source, scale=100.0, replay=REPLAY, faults=FaultPlan(connectivity_blips=((100.0, 50.0),)))
    notices: list[tuple[int, str]] = []

    async def scenario():
        trading = client(gateway)
        trading.on_connectivity = lambda code, message: notices.append((code, message))
        await trading.connect()
        try:
            assert await eventually(lambda: len(notices) >= 2, timeout=10)
            return trading.is_connected(), await trading.positions()
        finally:
            trading.disconnect()

    connected, positions = run(scenario())
    assert [code for code, _ in notices] == [1100, 1102]
    assert "lost" in notices[0][1] and "restored" in notices[1][1]
    assert connected and positions == {}


def test_the_account_id_never_reaches_the_logs(gateway, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario():
        trading = client(gateway, client_id=9)
        await trading.connect()
        try:
            await trading.place(BrokerOrder("tt:log:1", "AAA", "BUY", 2, "MKT"), AAA_RULES)
            await trading.open_orders()
            await trading.executions()
            await trading.positions()
        finally:
            trading.disconnect()

    run(scenario())
    ours = [r for r in caplog.records if r.name.startswith(("ib_insync", "tt_platform.ib.trading"))]
    assert any("***" in r.getMessage() for r in ours)  # the account was there, and masked
    assert not [r.getMessage() for r in ours if ACCOUNT in r.getMessage()]
    assert any("DU…4567" in r.getMessage() for r in ours if r.name == "tt_platform.ib.trading")
