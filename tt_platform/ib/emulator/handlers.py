"""The emulator's request handlers, keyed by TWS message id (``HANDLERS``).

Each is ``handler(session, fields)``; a handler that may wait (slow-answer faults, connectivity
loss) is a coroutine and runs as its own task, so one slow request never blocks a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pandas as pd

from tt_platform.ib.emulator import messages as msg
from tt_platform.ib.emulator.broker import OrderRejected, OrderTicket
from tt_platform.ib.emulator.historical import (
    bar_rows,
    format_span_time,
    resolve_query,
    visible_bound,
    window_bounds,
)
from tt_platform.ib.emulator.market_hours import hours_strings
from tt_platform.ib.emulator.validation import contract_problem
from tt_platform.ib.emulator.inbound import (
    Fields,
    parse_contract_details,
    parse_head_timestamp,
    parse_historical,
    parse_market_data,
    parse_place_order,
    parse_realtime_bars,
)
from tt_platform.ib.limits import InvalidRequest
from tt_platform.ib.pacing import RequestKey

if TYPE_CHECKING:
    from tt_platform.ib.emulator.server import ClientSession

HMDS = "Historical Market Data Service error message:"
NO_SECURITY = "No security definition has been found for the request"
# IB's answer (error 322) to a historical request beyond its cap on simultaneous open ones
TOO_MANY_OPEN = "Error processing request:Only {limit} simultaneous API historical data requests allowed."


@dataclass(frozen=True)
class HistoricalRecord:
    """One historical request as the gateway saw it (for tests, benchmarks and logs)."""

    at: float  # emulator clock seconds
    client_id: int
    req_id: int
    symbol: str
    bar_size: str
    what_to_show: str
    duration: str
    end: str
    outcome: str  # ok | pacing | too_many_open | no_data | no_security | invalid | dropped | gone
    bars: int = 0


@dataclass
class Stream:
    kind: str  # mktdata | rtbars | keepup
    symbol: str
    interval: str = ""
    format_date: int = 1


def ignore(session: ClientSession, fields: list[str]) -> None:
    return None


def req_ids(session: ClientSession, fields: list[str]) -> None:
    session.send(msg.next_valid_id(session.gateway.next_order_id(session.client_id)))


def managed_accounts(session: ClientSession, fields: list[str]) -> None:
    session.send(msg.managed_accounts([session.gateway.broker.account]))


def current_time(session: ClientSession, fields: list[str]) -> None:
    # the emulator's clock: the replay cursor in a replay, as a gateway reports its server's time
    session.send(msg.current_time(int(session.gateway.replay.now().timestamp())))


def completed_orders(session: ClientSession, fields: list[str]) -> None:
    session.send(msg.completed_orders_end())


# contracts and history ------------------------------------------------------------------------


async def contract_details(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    req_id, ref = parse_contract_details(fields)
    await gateway.wait_connectivity()
    if gateway.faults.contract_details_delay_seconds:
        await gateway.clock.sleep(gateway.faults.contract_details_delay_seconds)
    problem = contract_problem(ref, "reqContractDetails", needs_exchange=False)
    if problem:
        session.error(req_id, 321, problem)
        return
    spec = gateway.resolve(ref)
    if spec is None:
        session.error(req_id, 200, NO_SECURITY)
        return
    trading, liquid = hours_strings(gateway.replay.now())
    session.send(msg.contract_details(req_id, spec, trading, liquid))
    session.send(msg.contract_details_end(req_id))


async def head_timestamp(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    req = parse_head_timestamp(fields)
    await gateway.wait_connectivity()
    problem = contract_problem(req.contract, "reqHeadTimeStamp")
    if problem:
        session.error(req.req_id, 321, problem)
        return
    spec = gateway.resolve(req.contract)
    if spec is None:
        session.error(req.req_id, 200, NO_SECURITY)
        return
    head = gateway.head_timestamp(spec.symbol)
    if head is None:
        session.error(req.req_id, 162, f"{HMDS}HMDS query returned no data: {spec.symbol}@SMART {req.what_to_show}")
        return
    text = str(int(head.timestamp())) if req.format_date == 2 else head.strftime("%Y%m%d-%H:%M:%S")
    session.send(msg.head_timestamp(req.req_id, text))


async def historical_data(session: ClientSession, fields: list[str]) -> None:
    """reqHistoricalData, judged on arrival as IB does: contract, the cap on open requests (322),
    small-bar pacing (162), the request's validity; then answered after the configured delay."""
    gateway = session.gateway
    req = parse_historical(fields)
    ordinal = gateway.count_historical_request()
    await gateway.wait_connectivity()
    now = gateway.clock.now()  # the moment the gateway judges the request (pacing included)

    def record(outcome: str, bars: int = 0, symbol: str = "") -> None:
        gateway.history_log.append(
            HistoricalRecord(
                now,
                session.client_id,
                req.req_id,
                symbol or req.contract.symbol or str(req.contract.con_id),
                req.bar_size,
                req.what_to_show,
                req.duration,
                req.end,
                outcome,
                bars,
            )
        )

    if session.closed:
        record("gone")
        return
    problem = contract_problem(req.contract, "reqHistoricalData")
    if problem:
        record("invalid")
        session.error(req.req_id, 321, problem)
        return
    spec = gateway.resolve(req.contract)
    if spec is None:
        record("no_security")
        session.error(req.req_id, 200, NO_SECURITY)
        return
    limit = gateway.faults.max_open_historical
    if limit is not None and gateway.open_historical() >= limit:
        # what IB answers beyond its cap (any bar size): error 322 with the request's id
        gateway.stats.refused_open_limit += 1
        record("too_many_open", symbol=spec.symbol)
        session.error(req.req_id, 322, TOO_MANY_OPEN.format(limit=limit))
        return
    key = RequestKey(
        str(spec.con_id), req.contract.exchange or "SMART", req.what_to_show, req.bar_size, req.duration, req.end
    )
    if gateway.faults.enforce_pacing:
        broken = gateway.pacing.violation(key, now)  # small bars only: larger ones pass
        if broken:
            record("pacing", symbol=spec.symbol)
            session.error(req.req_id, 162, f"{HMDS}Historical data request pacing violation ({broken})")
            return
        gateway.pacing.record(key, now)
    try:
        query = resolve_query(
            req.end, req.duration, req.bar_size, req.what_to_show, req.keep_up_to_date, gateway.replay.now()
        )
    except InvalidRequest as exc:
        record("invalid", symbol=spec.symbol)
        if "Time length exceed" in str(exc) or "must be made in years" in str(exc):
            session.error(req.req_id, 162, f"{HMDS}{exc}")
        else:
            session.error(req.req_id, 321, str(exc))
        return
    gateway.historical_opened()
    try:
        delay = gateway.faults.historical_delay(spec.symbol)
        if delay:
            await gateway.clock.sleep(delay)
        if session.closed:
            record("gone", symbol=spec.symbol)
            return
        _answer_historical(session, req, spec, query, ordinal, record)
    finally:
        gateway.historical_closed()


def _answer_historical(session: ClientSession, req, spec, query, ordinal: int, record: Callable) -> None:
    gateway = session.gateway
    lo, hi = window_bounds(query, gateway.window_reading)
    now = gateway.replay.now()
    hi = min(hi, visible_bound(query, now))  # never serve a bar that has not closed yet
    bars = gateway.source.bars(spec.symbol, lo, hi, query.interval) if hi > lo else None
    if bars is None or bars.empty:
        record("no_data", symbol=spec.symbol)
        session.error(req.req_id, 162, f"{HMDS}HMDS query returned no data: {spec.symbol}@SMART {req.what_to_show}")
        return
    end = min(query.end, now)
    rows = bar_rows(bars, query.interval, req.format_date, gateway.history_decimals)
    frame = msg.historical_data(req.req_id, format_span_time(query.start), format_span_time(end), rows)
    if ordinal in gateway.faults.drop_mid_historical:
        record("dropped", len(rows), spec.symbol)
        session.send_partial_and_close(frame)
        return
    record("ok", len(rows), spec.symbol)  # before sending: the client may read the log at once
    session.send(frame)
    if req.keep_up_to_date:
        session.streams[req.req_id] = Stream("keepup", spec.symbol, query.interval, req.format_date)
    gateway.historical_answered()


# streams --------------------------------------------------------------------------------------


def realtime_bars(session: ClientSession, fields: list[str]):
    """5-second bars: fed by the replay when it runs, else by a stream on the emulator's clock."""
    req = parse_realtime_bars(fields)
    problem = contract_problem(req.contract, "reqRealTimeBars")
    if problem:
        session.error(req.req_id, 321, problem)
        return None
    spec = session.gateway.resolve(req.contract)
    if spec is None:
        session.error(req.req_id, 200, NO_SECURITY)
        return None
    if req.bar_size != 5:
        session.error(req.req_id, 321, f"Error validating request: real-time bar size must be 5, got {req.bar_size}")
        return None
    stream = Stream("rtbars", spec.symbol)
    session.streams[req.req_id] = stream
    if session.gateway.replay.active:
        return None
    return session.gateway.stream_realtime_bars(session, req.req_id, stream, spec)


def market_data(session: ClientSession, fields: list[str]) -> None:
    req = parse_market_data(fields)
    gateway = session.gateway
    problem = contract_problem(req.contract, "reqMktData")
    if problem:
        session.error(req.req_id, 321, problem)
        return
    spec = gateway.resolve(req.contract)
    if spec is None:
        session.error(req.req_id, 200, NO_SECURITY)
        return
    session.send(msg.market_data_type(req.req_id, 1))
    bar = gateway.replay.last_bar(spec.symbol)
    if bar is not None:
        session.send_ticks(req.req_id, SimpleNamespace(**bar.to_dict()), spec.min_tick, initial=True)
    if req.snapshot:
        session.send(msg.tick_snapshot_end(req.req_id))
    else:
        session.streams[req.req_id] = Stream("mktdata", spec.symbol)


def cancel_stream(session: ClientSession, fields: list[str]) -> None:
    session.streams.pop(Fields(fields, "cancel").int(2), None)


# orders ---------------------------------------------------------------------------------------


def place_order(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    req = parse_place_order(fields)
    problem = contract_problem(req.contract, "placeOrder")
    if problem:
        session.error(req.order_id, 321, problem)
        return
    spec = gateway.resolve(req.contract)
    if spec is None:
        session.error(req.order_id, 200, NO_SECURITY)
        return
    ticket = OrderTicket(
        order_id=req.order_id,
        client_id=session.client_id,
        perm_id=0 if req.what_if else gateway.broker.next_perm_id(),
        symbol=spec.symbol,
        action=req.action,
        quantity=req.quantity,
        order_type=req.order_type,
        lmt_price=req.lmt_price,
        aux_price=req.aux_price,
        tif=req.tif or "DAY",
        account=req.account or gateway.broker.account,
        order_ref=req.order_ref,
        exchange=req.contract.exchange or "SMART",
        outside_rth=req.outside_rth,
        parent_id=req.parent_id,
    )
    if req.what_if:
        _answer_what_if(session, ticket, spec)
        return
    try:
        ticket = gateway.broker.submit(ticket)
    except OrderRejected as exc:
        session.error(req.order_id, exc.code, str(exc))
        return
    session.send(msg.open_order(ticket, spec))
    session.send(msg.order_status(ticket))
    last = gateway.replay.last_bar(spec.symbol)
    if last is not None:
        gateway.broker.mark(spec.symbol, float(last["close"]))  # positions are valued at the last trade
        execution = gateway.broker.match(
            ticket, float(last["close"]), float(last["volume"]), spec.min_tick, gateway.time_text()
        )
        if execution is not None:
            gateway.publish_fill(ticket, execution)


def _answer_what_if(session: ClientSession, ticket: OrderTicket, spec) -> None:
    """IB answers a what-if order with one openOrder carrying the margin and commission impact;
    the order is neither kept nor filled."""
    gateway = session.gateway
    try:
        gateway.broker.validate(ticket)
        impact = gateway.broker.what_if(ticket, gateway.last_price(spec.symbol), spec.min_tick)
    except OrderRejected as exc:
        session.error(ticket.order_id, exc.code, str(exc))
        return
    ticket.status = "PreSubmitted"
    session.send(msg.open_order(ticket, spec, what_if=impact))


def cancel_order(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    order_id = Fields(fields, "cancelOrder").int(2)
    try:
        ticket = gateway.broker.cancel(session.client_id, order_id)
    except OrderRejected as exc:
        session.error(order_id, exc.code, str(exc))
        return
    session.send(msg.order_status(ticket))
    session.error(order_id, 202, "Order Canceled - reason:")


def global_cancel(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    for ticket in gateway.broker.working():
        gateway.broker.cancel(ticket.client_id, ticket.order_id)
        owner = gateway.sessions.get(ticket.client_id)
        if owner is not None:
            owner.send(msg.order_status(ticket))


def open_orders(session: ClientSession, fields: list[str], all_clients: bool = False) -> None:
    gateway = session.gateway
    for ticket in gateway.broker.working():
        if all_clients or ticket.client_id == session.client_id:
            session.send(msg.open_order(ticket, gateway.contracts.lookup(ticket.symbol)))
            session.send(msg.order_status(ticket))
    session.send(msg.open_order_end())


def all_open_orders(session: ClientSession, fields: list[str]) -> None:
    open_orders(session, fields, all_clients=True)


def executions(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    f = Fields(fields, "reqExecutions")
    req_id, wanted_client = f.int(2), f.int(3)
    client = wanted_client or session.client_id
    mine = [e for e in gateway.broker.executions if e.client_id == client]
    for execution in mine:
        session.send(msg.exec_details(req_id, execution, gateway.contracts.lookup(execution.symbol)))
    session.send(msg.exec_details_end(req_id))
    for execution in mine:
        session.send(msg.commission_report(execution))


# account --------------------------------------------------------------------------------------


def positions(session: ClientSession, fields: list[str]) -> None:
    session.positions_subscribed = True
    session.gateway.send_positions(session)
    session.send(msg.position_end())


def cancel_positions(session: ClientSession, fields: list[str]) -> None:
    session.positions_subscribed = False


def account_updates(session: ClientSession, fields: list[str]) -> None:
    subscribe = Fields(fields, "reqAccountUpdates").bool(2)
    session.account_subscribed = subscribe
    if subscribe:
        session.gateway.send_account(session, end=True)


def account_updates_multi(session: ClientSession, fields: list[str]) -> None:
    req_id = Fields(fields, "reqAccountUpdatesMulti").int(2)
    session.account_multi.add(req_id)
    session.gateway.send_account_multi(session, req_id)
    session.send(msg.account_update_multi_end(req_id))


def cancel_account_multi(session: ClientSession, fields: list[str]) -> None:
    session.account_multi.discard(Fields(fields, "cancelAccountUpdatesMulti").int(2))


def account_summary(session: ClientSession, fields: list[str]) -> None:
    gateway = session.gateway
    req_id = Fields(fields, "reqAccountSummary").int(2)
    for key, value in gateway.account_rows():
        session.send(msg.account_summary(req_id, gateway.broker.account, key, value, "USD"))
    session.send(msg.account_summary_end(req_id))


HANDLERS: dict[int, Callable] = {
    1: market_data,
    2: cancel_stream,
    3: place_order,
    4: cancel_order,
    5: open_orders,
    6: account_updates,
    7: executions,
    8: req_ids,
    9: contract_details,
    15: ignore,  # reqAutoOpenOrders
    16: all_open_orders,
    17: managed_accounts,
    20: historical_data,
    25: cancel_stream,  # cancelHistoricalData (ends keepUpToDate)
    49: current_time,
    50: realtime_bars,
    51: cancel_stream,
    58: global_cancel,
    59: ignore,  # reqMarketDataType: always live here
    61: positions,
    62: account_summary,
    63: ignore,  # cancelAccountSummary
    64: cancel_positions,
    71: ignore,  # startApi after the handshake
    76: account_updates_multi,
    77: cancel_account_multi,
    87: head_timestamp,
    90: ignore,  # cancelHeadTimeStamp
    99: completed_orders,
}
