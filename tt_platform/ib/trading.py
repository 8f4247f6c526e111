"""The platform's IB order and reconciliation client, on ib_insync (asyncio).

The live trading loop places and cancels orders through ``IBTrading``, hears of fills, order
states, real-time bars and connectivity through its callbacks, and after every reconnect (and
after 1101/1102) reconciles through ``open_orders()``, ``executions()`` and ``positions()``.

Those three either return IB's complete answer or raise ``BrokerRequestFailed``: a request that
failed, timed out, lost its connection or could not be sent is never read as "nothing open".
Open orders and positions carry no request id on the wire, so the late answer of a timed-out
request could pass for the answer of the next one; the next request of that kind therefore
waits for the late answer first (within its own deadline) and discards it.

Every order carries the caller's ``order_ref`` as IB's ``orderRef``, which comes back on open
orders and on executions: it is the idempotency key (IB order ids can be reused after a gateway
restart). A ref is spent once sent: ``place`` refuses a ref it has already sent or sees at IB.
A decision's orders go out as one batch: ``submit`` writes them all to the socket before any
answer is read, ``acknowledged`` then waits for IB's answers (``place`` is both, for one order).

Callbacks are plain attributes the owner sets (a callback may be a coroutine function; its
coroutine is scheduled on the running loop; exceptions are logged, never raised into ib_insync):

* ``on_execution(BrokerExecution)``: a fill of this client's order, once, with its commission
  (IB reports it right after the fill; ``commission_wait`` bounds the wait). A fill whose
  report is late (or cut off by a disconnect) comes with ``commission`` None, and once more
  with the commission if the report still arrives: key fills by ``exec_id``. Fills that happen
  while disconnected, or of orders this connection does not know, arrive only through
  ``executions()``.
* ``on_order_status(BrokerOrderState)``: every order status IB reports to this client (and the
  local ``PendingCancel`` of a cancel request).
* ``on_disconnected()``: the connection dropped (not called for ``disconnect()``); call
  ``reconnect()`` and reconcile.
* ``on_connectivity(code, message)``: IB's 1100 (lost), 1101 (restored, data lost: real-time bar
  subscriptions are re-requested automatically), 1102 (restored, data kept) and 2110 (TWS to
  server broken). Reconcile after 1101 and 1102.
* ``on_realtime_bar(RealtimeBar)``: each 5-second bar of a subscribed symbol.

Account ids never appear in logs or errors: ib_insync's loggers carry the ``AccountRedactor`` of
``tt_platform.ib.client``, which learns this login's accounts as soon as IB names them;
``account_label`` is the masked form for reports.

Besides ``tt_platform.ib.client`` this is the one module that imports ib_insync (the import
block below): a switch to ib_async changes both.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pandas as pd

# isort: off
# tt_platform.ib.client first: it gives the thread the event loop ib_insync asks for on import
from tt_platform.ib.client import ACCOUNT_REDACTOR, ConnectRetry, IBClientIdInUse
from tt_platform.ib.errors import CONNECTIVITY_CODES, IBConnectionLost

from ib_insync import IB, Contract, Order, OrderStatus, RealTimeBarList, Stock, Trade, TradeLogEntry
from ib_insync.util import UNSET_DOUBLE
from ib_insync.wrapper import RequestError
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

# isort: on

log = logging.getLogger(__name__)

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MKT", "LMT")
TIFS = ("DAY", "GTC", "IOC", "OPG")
# IB order states after which an order can neither fill nor be cancelled
DONE_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
REALTIME_BAR_SECONDS = 5
# a value within this many steps of a grid point is on it: float dust (0.1 * 3) is not a price
_DUST_STEPS = Decimal("1e-9")
# real-time bars kept per subscription list (ib_insync appends every bar; delivered ones can go)
_KEEP_BARS = 64


# rounding to what IB accepts ------------------------------------------------------------------


def _decimal(value: float, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{name} must be a number, got {value!r}")  # noqa: TRY004 (ValueError by contract)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    # the shortest text that reads back as the float: 0.1 -> Decimal("0.1"), not 0.1000000000000000055...
    return Decimal(repr(float(value)))


def _positive(value: float, name: str) -> Decimal:
    number = _decimal(value, name)
    if not number > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


def _steps(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value / step`` as a whole number of steps, rounded as asked unless it is on the grid."""
    try:
        ratio = value / step
        nearest = ratio.to_integral_value(ROUND_HALF_EVEN)
    except InvalidOperation as exc:  # pragma: no cover - finite positive inputs never get here
        raise ValueError(f"cannot divide {value} by {step}: {exc}") from None
    if abs(ratio - nearest) <= _DUST_STEPS:
        return nearest
    return ratio.to_integral_value(rounding)


def round_quantity(quantity: float, lot_size: float) -> float:
    """``quantity`` in whole lots, rounded toward zero (0 when below one lot)."""
    lot = _positive(lot_size, "lot_size")
    lots = _steps(_decimal(quantity, "quantity"), lot, ROUND_DOWN)
    return float(lots * lot) + 0.0  # + 0.0: never -0.0


def round_limit_price(price: float, min_tick: float, side: str) -> float:
    """A limit price on the tick grid, never more aggressive than asked: BUY rounds down, SELL up."""
    side = _side(side)
    tick = _positive(min_tick, "min_tick")
    value = _positive(price, "limit price")
    ticks = _steps(value, tick, ROUND_FLOOR if side == "BUY" else ROUND_CEILING)
    rounded = ticks * tick
    if not rounded > 0:
        raise ValueError(f"limit price {price!r} rounds to {rounded} on the {min_tick!r} tick grid")
    return float(rounded)


def _side(side: str) -> str:
    normal = str(side).strip().upper()
    if normal not in SIDES:
        raise ValueError(f"side must be 'BUY' or 'SELL', got {side!r}")
    return normal


def mask_account(account: str) -> str:
    """An account id safe to show: "DU…4567" (first two and last four characters)."""
    return f"{account[:2]}…{account[-4:]}" if len(account) > 6 else "***"


def _redact(text: str) -> str:
    for account in ACCOUNT_REDACTOR.accounts:
        text = text.replace(account, "***")
    return text


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _price(value: float | None) -> float | None:
    return None if value is None or value >= UNSET_DOUBLE or not math.isfinite(value) else float(value)


# plain values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractRules:
    """What IB accepts for a symbol's orders: the price tick and the size lot."""

    symbol: str
    con_id: int
    min_tick: float
    lot_size: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError(f"ContractRules.symbol must be a non-empty string, got {self.symbol!r}")
        object.__setattr__(self, "symbol", self.symbol.strip().upper())
        if isinstance(self.con_id, bool) or not isinstance(self.con_id, int) or self.con_id <= 0:
            raise ValueError(f"ContractRules({self.symbol}).con_id must be a positive int, got {self.con_id!r}")
        _positive(self.min_tick, f"ContractRules({self.symbol}).min_tick")
        _positive(self.lot_size, f"ContractRules({self.symbol}).lot_size")


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the trading loop means it; ``place`` fits it to the contract's rules."""

    order_ref: str
    symbol: str
    side: str
    quantity: float
    order_type: str
    limit_price: float | None = None
    tif: str = "DAY"

    def __post_init__(self) -> None:
        if not isinstance(self.order_ref, str) or not self.order_ref.strip():
            raise ValueError(f"BrokerOrder.order_ref must be a non-empty string, got {self.order_ref!r}")
        if "\0" in self.order_ref or "," in self.order_ref:
            raise ValueError(f"BrokerOrder.order_ref must not contain NUL or commas, got {self.order_ref!r}")
        ref = self.order_ref
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError(f"BrokerOrder {ref}: symbol must be a non-empty string, got {self.symbol!r}")
        object.__setattr__(self, "symbol", self.symbol.strip().upper())
        try:
            object.__setattr__(self, "side", _side(self.side))
        except ValueError as exc:
            raise ValueError(f"BrokerOrder {ref}: {exc}") from None
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, (int, float)):
            raise ValueError(f"BrokerOrder {ref}: quantity must be a number, got {self.quantity!r}")  # noqa: TRY004
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"BrokerOrder {ref}: quantity must be > 0 (side gives the sign), got {self.quantity!r}")
        order_type = str(self.order_type).strip().upper()
        if order_type not in ORDER_TYPES:
            raise ValueError(f"BrokerOrder {ref}: order_type must be 'MKT' or 'LMT', got {self.order_type!r}")
        object.__setattr__(self, "order_type", order_type)
        if order_type == "LMT":
            limit = self.limit_price
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit <= 0:
                raise ValueError(f"BrokerOrder {ref}: a LMT order needs a limit_price > 0, got {limit!r}")
        elif self.limit_price is not None:
            raise ValueError(f"BrokerOrder {ref}: a MKT order takes no limit_price, got {self.limit_price!r}")
        tif = str(self.tif).strip().upper()
        if tif not in TIFS:
            raise ValueError(f"BrokerOrder {ref}: tif must be one of {TIFS}, got {self.tif!r}")
        object.__setattr__(self, "tif", tif)


@dataclass(frozen=True)
class BrokerOrderState:
    """An order as IB reports it. ``reason`` is IB's error text when IB rejected or cancelled it."""

    order_ref: str
    broker_order_id: int
    perm_id: int
    symbol: str
    side: str
    quantity: float
    filled: float
    remaining: float
    avg_fill_price: float
    status: str
    order_type: str
    limit_price: float | None
    reason: str = ""

    @property
    def is_open(self) -> bool:
        """Still working at IB (may fill or be cancelled); unknown states count as open."""
        return self.status not in DONE_STATUSES


@dataclass(frozen=True)
class BrokerExecution:
    exec_id: str
    order_ref: str
    broker_order_id: int
    symbol: str
    side: str
    shares: float
    price: float
    time: pd.Timestamp
    commission: float | None

    def __post_init__(self) -> None:
        if not self.shares > 0:
            raise ValueError(f"BrokerExecution {self.exec_id}: shares must be > 0, got {self.shares!r}")


@dataclass(frozen=True)
class RealtimeBar:
    symbol: str
    start: pd.Timestamp  # the bar covers [start, start + 5 s)
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass
class Submission:
    """One order of ``TradingClient.submit``: the Trade handed to the IB client, or the error
    that kept it from being sent; neither when it rounded to zero lots."""

    order: BrokerOrder
    deadline: float  # event-loop time by which IB must acknowledge it
    trade: Trade | None = None
    error: Exception | None = None


class BrokerRequestFailed(RuntimeError):
    """A reconciliation or order request failed, timed out, lost its connection or could not be
    sent. Never a valid empty answer: the caller knows nothing new and must ask again.
    ``code`` is IB's error code when IB refused the request."""

    def __init__(self, request: str, reason: str, code: int | None = None) -> None:
        super().__init__(f"{request} failed: {reason}")
        self.request, self.reason, self.code = request, reason, code


class UnknownSymbol(LookupError):
    """IB has no (or no unique) US stock for these symbols (``reasons``: symbol -> why)."""

    def __init__(self, reasons: dict[str, str]) -> None:
        self.reasons = dict(reasons)
        listed = "; ".join(f"{s}: {why}" for s, why in sorted(self.reasons.items()))
        super().__init__(f"IB does not know {len(self.reasons)} symbol(s): {listed}")


@dataclass
class _BarStream:
    symbol: str
    bars: RealTimeBarList
    generation: int
    handler: Callable[..., None]  # kept here: eventkit holds listeners weakly
    lost: bool = False


def _consume(future: asyncio.Future) -> None:
    # an abandoned request's late failure is expected; retrieve it so asyncio does not complain
    if not future.cancelled():
        future.exception()


# the client -----------------------------------------------------------------------------------


class IBTrading:
    """Orders, fills, reconciliation and real-time bars of one IB client id (asyncio API).

    ``request_timeout`` bounds every request and order acknowledgement (seconds);
    ``connect_timeout`` bounds one connection attempt; ``retry`` sets ``reconnect``'s back-off.
    ``commission_wait`` is how long a fill waits for its commission report before
    ``on_execution`` gets it without one (seconds).
    ``account`` picks the account orders go to; None uses the login's only account (a login
    that manages several needs it).
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        account: str | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retry: ConnectRetry | None = None,
        commission_wait: float = 1.0,
    ) -> None:
        if not request_timeout > 0 or not connect_timeout > 0:
            raise ValueError(
                f"request_timeout and connect_timeout must be > 0, got {request_timeout!r} and {connect_timeout!r}"
            )
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.account = account or None
        ACCOUNT_REDACTOR.add(self.account)
        self.request_timeout = float(request_timeout)
        self.connect_timeout = float(connect_timeout)
        self.retry = retry or ConnectRetry()
        self.commission_wait = max(0.0, float(commission_wait))
        self.on_execution: Callable[[BrokerExecution], Any] | None = None
        self.on_order_status: Callable[[BrokerOrderState], Any] | None = None
        self.on_disconnected: Callable[[], Any] | None = None
        self.on_connectivity: Callable[[int, str], Any] | None = None
        self.on_realtime_bar: Callable[[RealtimeBar], Any] | None = None
        self.connections = 0  # successful connects
        self.realtime_bar_errors: dict[str, str] = {}  # symbol -> IB's last error for its bars

        self._ib = IB()
        self._ib.RaiseRequestErrors = True  # an error answer must raise, not end as an empty list
        self._ib.client.apiStart += self._learn_accounts
        self._ib.disconnectedEvent += self._on_disconnected
        self._ib.errorEvent += self._on_error
        self._ib.orderStatusEvent += self._on_order_status
        self._ib.execDetailsEvent += self._on_exec_details
        self._ib.commissionReportEvent += self._on_commission_report
        self._up = False  # connected and not yet seen to drop
        self._closing = False
        self._generation = 0
        self._lost: asyncio.Future | None = None  # resolves when this connection ends
        self._client_id_rejected: asyncio.Future | None = None
        self._outstanding: dict[str, asyncio.Future] = {}  # timed-out open-orders/positions requests
        self._locks: dict[str, asyncio.Lock] = {}
        self._sent_refs: set[str] = set()
        self._trades_seen = 0  # how many of ib_insync's trades _sent_refs already holds
        self._reported: dict[str, bool] = {}  # exec_id -> delivered with its commission
        self._pending_fills: dict[str, tuple[Any, asyncio.TimerHandle]] = {}  # waiting for commissions
        self._rules: dict[str, ContractRules] = {}
        self._wanted_bars: dict[str, None] = {}  # ordered set of subscribed symbols
        self._bars: dict[str, _BarStream] = {}
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected() else "not connected"
        return f"IBTrading({self.host}:{self.port}, client_id={self.client_id}, {state})"

    # connection -------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"IB at {self.host}:{self.port} as client {self.client_id}"

    def is_connected(self) -> bool:
        return self._ib.isConnected()

    @property
    def account_id(self) -> str | None:
        """The trading account's id (a secret: hash it before it is stored or shown), or None
        when several accounts are managed and none was chosen."""
        if self.account:
            return self.account
        accounts = self._ib.managedAccounts()
        return accounts[0] if len(accounts) == 1 else None

    @property
    def account_label(self) -> str:
        """The trading account, masked ("DU…4567"); "N accounts" when several and none chosen."""
        if self.account:
            return mask_account(self.account)
        accounts = self._ib.managedAccounts()
        if len(accounts) == 1:
            return mask_account(accounts[0])
        return f"{len(accounts)} accounts" if accounts else "(not connected)"

    async def connect(self) -> None:
        """One connection attempt (no-op when connected). Raises ``ConnectionError`` naming the
        gateway when it is unreachable or silent, ``IBClientIdInUse`` when the client id is
        taken, ``ValueError`` when ``account`` is not an account of this login."""
        if self.is_connected():
            return
        self._closing = False
        loop = asyncio.get_running_loop()
        self._client_id_rejected = rejected = loop.create_future()
        connecting = asyncio.ensure_future(
            self._ib.connectAsync(
                self.host, self.port, self.client_id, timeout=self.connect_timeout,
                readonly=False, account=self.account or "",
            )
        )
        failure: BaseException | None = None
        try:
            done, _ = await asyncio.wait(
                {connecting, rejected}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if rejected in done:
                failure = IBClientIdInUse(f"{self.where}: IB refused the client id: {rejected.result()}")
            elif connecting not in done:
                failure = IBConnectionLost(
                    f"cannot connect to {self.where}: no answer within {self.connect_timeout:g} s"
                )
            elif connecting.exception() is not None:
                exc = connecting.exception()
                failure = IBConnectionLost(f"cannot connect to {self.where}: {type(exc).__name__}: {_redact(str(exc))}")
                failure.__cause__ = exc
        finally:
            self._client_id_rejected = None
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)  # ib_insync closes the socket
        if failure is not None:
            self._drop_socket()
            raise failure
        accounts = self._ib.managedAccounts()
        for account in accounts:
            ACCOUNT_REDACTOR.add(account)
        if self.account and self.account not in accounts:
            self._drop_socket()
            raise ValueError(
                f"{self.where}: account {mask_account(self.account)} is not among the "
                f"{len(accounts)} account(s) this login manages"
            )
        self._generation += 1
        self._outstanding.clear()
        self._lost = loop.create_future()
        self._up = True
        self.connections += 1
        log.info("connected to %s (account %s)", self.where, self.account_label)

    def disconnect(self) -> None:
        """Close the connection; requests in flight fail with ``BrokerRequestFailed``."""
        self._closing = True
        self._mark_lost("disconnected by the caller")
        self._drop_socket()

    def _drop_socket(self) -> None:
        try:
            self._ib.disconnect()
        except ConnectionError:  # ib_insync's statistics fail on a half-open connection
            self._ib.client.disconnect()

    async def reconnect(self) -> None:
        """Connect again with exponential back-off (``retry``), then ``resubscribe()``.

        The caller reconciles afterwards (open orders, executions, positions). A taken client id
        is retried too: after a drop the gateway may hold the old session for a moment.
        """
        if self.is_connected():
            self.disconnect()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            retry=retry_if_exception_type(ConnectionError),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.connect()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise IBConnectionLost(
                f"cannot reconnect to {self.where} after {self.retry.attempts} attempts: {last}"
            ) from last
        await self.resubscribe()

    def _learn_accounts(self) -> None:
        # runs as soon as IB names the login's accounts, before ib_insync logs its sync answers
        for account in self._ib.client.getAccounts():
            ACCOUNT_REDACTOR.add(account)

    def _mark_lost(self, reason: str) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    # events -----------------------------------------------------------------------------------

    def _notify(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
        except Exception:
            log.exception("IBTrading callback %s failed", getattr(callback, "__name__", callback))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("IBTrading callback failed", exc_info=task.exception())

    def _on_disconnected(self) -> None:
        if not self._up:
            return  # a failed connection attempt, not a lost connection
        self._up = False
        self._mark_lost("connection to IB lost")
        self._deliver_pending()  # a fill is never held back for a commission that cannot come now
        if self._closing:
            log.info("disconnected from %s", self.where)
            return
        log.warning("connection to %s lost", self.where)
        self._notify(self.on_disconnected)

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == 326 and self._client_id_rejected is not None and not self._client_id_rejected.done():
            self._client_id_rejected.set_result(f"error {code}: {message}")
        if code in CONNECTIVITY_CODES:
            log.warning("IB connectivity %d: %s", code, _redact(message))
            if code == 1101:  # IB dropped every market-data subscription
                for stream in self._bars.values():
                    stream.lost = True
                self._restart_streams()
            self._notify(self.on_connectivity, code, _redact(message))
            return
        for stream in self._bars.values():
            if stream.bars.reqId == req_id:
                self.realtime_bar_errors[stream.symbol] = f"error {code}: {_redact(message)}"
                log.warning("real-time bars of %s: IB error %d: %s", stream.symbol, code, _redact(message))
                return

    def _on_order_status(self, trade: Trade) -> None:
        self._notify(self.on_order_status, self._state(trade))

    def _on_exec_details(self, trade: Trade, fill: Any) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._reported or exec_id in self._pending_fills:
            return
        commission = self._commission(exec_id)
        if commission is not None or self.commission_wait <= 0:
            self._deliver(fill, commission)
            return
        # IB sends the commission report right after the fill: wait for it, a little
        timer = asyncio.get_running_loop().call_later(self.commission_wait, self._deliver_pending, exec_id)
        self._pending_fills[exec_id] = (fill, timer)

    def _on_commission_report(self, trade: Trade, fill: Any, report: Any) -> None:
        exec_id = fill.execution.execId
        pending = self._pending_fills.pop(exec_id, None)
        if pending is not None:
            pending[1].cancel()
            self._deliver(pending[0], float(report.commission))
        elif self._reported.get(exec_id) is False:  # delivered without it: deliver it again, complete
            self._deliver(fill, float(report.commission))

    def _deliver_pending(self, exec_id: str | None = None) -> None:
        """Deliver a fill still waiting for its commission (all of them when ``exec_id`` is None)."""
        for key in [exec_id] if exec_id is not None else list(self._pending_fills):
            pending = self._pending_fills.pop(key, None)
            if pending is not None:
                pending[1].cancel()
                self._deliver(pending[0], self._commission(key))

    def _deliver(self, fill: Any, commission: float | None) -> None:
        self._reported[fill.execution.execId] = commission is not None
        self._notify(self.on_execution, self._execution(fill, commission))

    # conversions ------------------------------------------------------------------------------

    @staticmethod
    def _reason(trade: Trade) -> str:
        errors = [entry for entry in trade.log if entry.errorCode]
        return _redact(errors[-1].message) if errors else ""

    def _state(self, trade: Trade) -> BrokerOrderState:
        order, status = trade.order, trade.orderStatus
        filled = float(status.filled or 0.0)
        remaining = float(status.remaining or 0.0)
        if not filled and not remaining and status.status not in DONE_STATUSES:
            remaining = float(order.totalQuantity)  # no orderStatus yet: nothing has filled
        return BrokerOrderState(
            order_ref=order.orderRef,
            broker_order_id=int(order.orderId),
            perm_id=int(order.permId or status.permId or 0),
            symbol=trade.contract.symbol,
            side=order.action,
            quantity=float(order.totalQuantity),
            filled=filled,
            remaining=remaining,
            avg_fill_price=float(status.avgFillPrice or 0.0),
            status=status.status,
            order_type=order.orderType,
            limit_price=_price(order.lmtPrice) if order.orderType == "LMT" else None,
            reason=self._reason(trade),
        )

    def _commission(self, exec_id: str) -> float | None:
        fill = self._ib.wrapper.fills.get(exec_id)
        if fill is None or fill.commissionReport.execId != exec_id:
            return None  # IB has not sent the commission report yet
        return float(fill.commissionReport.commission)

    @staticmethod
    def _execution(fill: Any, commission: float | None) -> BrokerExecution:
        ex = fill.execution
        return BrokerExecution(
            exec_id=ex.execId,
            order_ref=ex.orderRef,
            broker_order_id=int(ex.orderId),
            symbol=fill.contract.symbol,
            side="BUY" if ex.side == "BOT" else "SELL",
            shares=float(ex.shares),
            price=float(ex.price),
            time=_utc(ex.time),
            commission=commission,
        )

    # requests ---------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.request_timeout

    def _require(self, request: str) -> None:
        if not self.is_connected():
            raise BrokerRequestFailed(request, f"not connected to {self.where} (connect() or reconnect() first)")

    def _send(self, request: str, start: Callable[[], Any]) -> Any:
        self._require(request)
        try:
            return start()
        except ConnectionError as exc:
            raise BrokerRequestFailed(request, f"could not be sent: {exc}") from exc

    async def _answer(self, request: str, awaitable: Awaitable, deadline: float) -> Any:
        """The answer to a sent request, or ``BrokerRequestFailed``; the request is never
        cancelled (a late answer must still be read by ib_insync, not misrouted)."""
        future = asyncio.ensure_future(awaitable)
        future.add_done_callback(_consume)
        waiters = {future}
        lost = self._lost
        if lost is not None:
            waiters.add(lost)
        remaining = deadline - asyncio.get_running_loop().time()
        done = (await asyncio.wait(waiters, timeout=max(remaining, 0.0), return_when=asyncio.FIRST_COMPLETED))[0]
        if future in done:
            if future.cancelled():
                raise BrokerRequestFailed(request, "the request was cancelled")
            exc = future.exception()
            if exc is None:
                return future.result()
            if isinstance(exc, RequestError):
                raise BrokerRequestFailed(request, f"IB error {exc.code}: {_redact(exc.message)}", exc.code) from None
            if isinstance(exc, ConnectionError):
                raise BrokerRequestFailed(request, f"connection lost: {exc}") from None
            raise BrokerRequestFailed(request, f"{type(exc).__name__}: {_redact(str(exc))}") from exc
        if lost is not None and lost in done:
            raise BrokerRequestFailed(request, lost.result())
        raise BrokerRequestFailed(request, f"no answer within {self.request_timeout:g} s")

    def _lock(self, key: str) -> asyncio.Lock:
        if key not in self._locks:
            self._locks[key] = asyncio.Lock()
        return self._locks[key]

    async def _keyed(self, request: str, key: str, start: Callable[[], Awaitable], deadline: float) -> Any:
        """A request whose answer carries no request id (ib_insync keys it by ``key``): one at a
        time, and never while the answer to a timed-out one may still arrive."""
        lock = self._lock(key)
        try:
            await asyncio.wait_for(lock.acquire(), max(deadline - asyncio.get_running_loop().time(), 0.0))
        except TimeoutError:
            raise BrokerRequestFailed(
                request, f"another {request} did not finish within {self.request_timeout:g} s"
            ) from None
        try:
            self._require(request)
            stale = self._outstanding.get(key)
            if stale is not None and not stale.done():
                try:
                    await self._answer(request, stale, deadline)  # the late answer: not ours, dropped
                except BrokerRequestFailed as exc:
                    raise BrokerRequestFailed(
                        request, f"IB has not answered the previous {request} either ({exc.reason})", exc.code
                    ) from None
            self._outstanding.pop(key, None)
            future = asyncio.ensure_future(self._send(request, start))
            try:
                return await self._answer(request, future, deadline)
            except BrokerRequestFailed:
                if not future.done():
                    self._outstanding[key] = future
                raise
        finally:
            lock.release()

    # contracts --------------------------------------------------------------------------------

    async def server_time(self) -> pd.Timestamp:
        """The gateway's clock (``reqCurrentTime``), UTC; BrokerRequestFailed when it does not answer."""
        self._require("reqCurrentTime")
        try:
            stamp = await asyncio.wait_for(self._ib.reqCurrentTimeAsync(), self.request_timeout)
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise BrokerRequestFailed("reqCurrentTime", str(exc) or type(exc).__name__) from None
        return pd.Timestamp(stamp).tz_convert("UTC") if pd.Timestamp(stamp).tzinfo else pd.Timestamp(stamp, tz="UTC")

    async def contract_rules(self, symbols: Iterable[str], *, fractional: bool = False) -> dict[str, ContractRules]:
        """Tick and lot of each US stock (SMART, USD) from its contract details.

        The lot is IB's ``sizeIncrement`` (else ``minSize``, else 1); unless ``fractional``,
        at least one whole share, since most accounts cannot send fractional orders through the
        API. The tick is IB's ``minTick`` (price-dependent market rules are not applied).
        Raises ``UnknownSymbol`` naming every symbol IB does not know, ``BrokerRequestFailed``
        when a request fails or times out.
        """
        wanted = list(dict.fromkeys(self._symbol(s) for s in symbols))
        if not wanted:
            return {}
        self._require("reqContractDetails")
        deadline = self._deadline()
        answers = await asyncio.gather(
            *(self._details(s, deadline) for s in wanted), return_exceptions=True
        )
        failures = [a for a in answers if isinstance(a, BaseException)]
        if failures:
            raise failures[0]
        unknown = {s: a for s, a in zip(wanted, answers) if isinstance(a, str)}
        if unknown:
            raise UnknownSymbol(unknown)
        rules = {}
        for symbol, details in zip(wanted, answers):
            rules[symbol] = self._rules_of(symbol, details, fractional)
        self._rules.update(rules)
        return rules

    @staticmethod
    def _symbol(symbol: str) -> str:
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"a symbol must be a non-empty string, got {symbol!r}")
        return symbol.strip().upper()

    async def _details(self, symbol: str, deadline: float) -> Any:
        """The one ContractDetails of ``symbol``, or the reason it is unknown (a str)."""
        request = f"reqContractDetails {symbol}"
        contract = Stock(symbol, "SMART", "USD")
        future = self._send(request, lambda: self._ib.reqContractDetailsAsync(contract))
        try:
            details = await self._answer(request, future, deadline)
        except BrokerRequestFailed as exc:
            if exc.code == 200:
                return "no security definition (error 200)"
            raise
        if not details:
            return "IB returned no contract details"
        if len(details) > 1:
            venues = sorted({d.contract.primaryExchange for d in details})
            return f"ambiguous: {len(details)} contracts (primary exchanges {venues})"
        return details[0]

    @staticmethod
    def _rules_of(symbol: str, details: Any, fractional: bool) -> ContractRules:
        def given(value: float) -> bool:
            return bool(value) and 0 < value < UNSET_DOUBLE

        if not given(details.minTick):
            raise BrokerRequestFailed(f"reqContractDetails {symbol}", f"IB gave no minTick ({details.minTick!r})")
        lot = 1.0
        if given(details.sizeIncrement):
            lot = float(details.sizeIncrement)
        elif given(details.minSize):
            lot = float(details.minSize)
        if not fractional:
            lot = max(lot, 1.0)
        return ContractRules(symbol, int(details.contract.conId), float(details.minTick), lot)

    @staticmethod
    def _contract(rules: ContractRules) -> Contract:
        return Contract(conId=rules.con_id, symbol=rules.symbol, secType="STK", exchange="SMART", currency="USD")

    # orders -----------------------------------------------------------------------------------

    def _order_account(self) -> str:
        if self.account:
            return self.account
        accounts = self._ib.managedAccounts()
        if len(accounts) > 1:
            raise ValueError(f"{self.where}: the login manages {len(accounts)} accounts; pass account=")
        return accounts[0] if accounts else ""

    def _ref_sent(self, order_ref: str) -> bool:
        if order_ref in self._sent_refs:
            return True
        trades = self._ib.wrapper.trades
        if len(trades) != self._trades_seen:  # refs IB told us of (other clients, before a restart)
            self._trades_seen = len(trades)
            self._sent_refs.update(t.order.orderRef for t in trades.values() if t.order.orderRef)
        return order_ref in self._sent_refs

    def _hand_to_client(self, contract: Contract, ib_order: Order) -> Trade:
        """ib_insync's ``IB.placeOrder`` for a new order, minus its info line: that line formats
        the whole Trade eagerly, logged or not, which costs as much as the send itself -- per
        order, on the path from bar close to orders. The Trade is registered as ib_insync
        registers it, so its order messages move it."""
        ib, wrapper = self._ib, self._ib.wrapper
        in_sync = len(wrapper.trades) == self._trades_seen
        order_id = ib.client.getReqId()
        ib.client.placeOrder(order_id, contract, ib_order)
        ib_order.clientId = wrapper.clientId
        ib_order.orderId = order_id
        status = OrderStatus(orderId=order_id, status=OrderStatus.PendingSubmit)
        trade = Trade(contract, ib_order, status, [], [TradeLogEntry(datetime.now(UTC), status.status)])
        wrapper.trades[wrapper.orderKey(wrapper.clientId, order_id, ib_order.permId)] = trade
        if in_sync:  # the one trade added is this one: _ref_sent need not rescan for it
            self._trades_seen = len(wrapper.trades)
        ib.newOrderEvent.emit(trade)
        return trade

    def submit(self, orders: Iterable[tuple[BrokerOrder, ContractRules]]) -> list[Submission]:
        """Hand each order to the IB client (quantity in whole lots toward zero, limit on the
        tick grid, BUY down / SELL up) without waiting for IB: all of them go out before the
        first answer is read. Per order, a ``Submission``: its Trade, or the error that kept
        it from being sent (``ValueError`` for a ref already sent or rules of another symbol,
        ``BrokerRequestFailed`` when not connected), or neither when the quantity rounds to
        zero lots (nothing sent). ``acknowledged`` then waits for IB's answers."""
        deadline = self._deadline()
        account: str | None = None
        submissions = []
        for order, rules in orders:
            try:
                if rules.symbol != order.symbol:
                    raise ValueError(f"order {order.order_ref} is for {order.symbol} but the rules are for {rules.symbol}")
                request = f"placeOrder {order.order_ref}"
                quantity = round_quantity(order.quantity, rules.lot_size)
                if quantity <= 0:
                    log.info("order %s: %g %s rounds to 0 lots of %g: not sent", order.order_ref, order.quantity,
                             order.symbol, rules.lot_size)
                    submissions.append(Submission(order, deadline))
                    continue
                self._require(request)
                if self._ref_sent(order.order_ref):
                    raise ValueError(f"order_ref {order.order_ref!r} was already sent to IB; a new order needs a new ref")
                if account is None:
                    account = self._order_account()
                ib_order = Order(action=order.side, totalQuantity=quantity, orderType=order.order_type, tif=order.tif,
                                 orderRef=order.order_ref, account=account, transmit=True)
                if order.order_type == "LMT":
                    ib_order.lmtPrice = round_limit_price(order.limit_price, rules.min_tick, order.side)
                trade = self._send(request, lambda r=rules, o=ib_order: self._hand_to_client(self._contract(r), o))
            except (ValueError, BrokerRequestFailed) as exc:
                submissions.append(Submission(order, deadline, error=exc))
                continue
            self._sent_refs.add(order.order_ref)
            log.info("order %s sent: %s %g %s %s%s %s", order.order_ref, order.side, quantity, order.symbol,
                     order.order_type, f" {ib_order.lmtPrice:g}" if order.order_type == "LMT" else "", order.tif)
            submissions.append(Submission(order, deadline, trade=trade))
        return submissions

    async def acknowledged(self, submissions: list[Submission]) -> list[BrokerOrderState | None | Exception]:
        """Wait for IB's first acknowledgement of every order ``submit`` sent; per submission,
        the order's state then (it may already be filled, or cancelled with IB's ``reason``),
        None when nothing was sent, or the error: the one that kept it from being sent, or
        ``BrokerRequestFailed`` when no acknowledgement came in time (the order may still be
        live: reconcile before placing the decision again, with the same ref)."""
        trades = [s.trade for s in submissions if s.trade is not None]
        failure: BrokerRequestFailed | None = None
        if trades:
            request = f"placeOrder {trades[0].order.orderRef}" if len(trades) == 1 else f"placeOrder ({len(trades)} orders)"
            try:
                await self._until(request, trades, self._acknowledged, min(s.deadline for s in submissions))
            except BrokerRequestFailed as exc:
                failure = exc
        results: list[BrokerOrderState | None | Exception] = []
        for submission in submissions:
            if submission.error is not None:
                results.append(submission.error)
            elif submission.trade is None:
                results.append(None)
            elif failure is not None and not self._acknowledged(submission.trade):
                results.append(BrokerRequestFailed(
                    f"placeOrder {submission.order.order_ref}",
                    f"{failure.reason}; the order may still reach IB: reconcile with open_orders() and executions()"))
            else:
                results.append(self._state(submission.trade))
        return results

    async def place(self, order: BrokerOrder, rules: ContractRules) -> BrokerOrderState | None:
        """Send one order and wait for IB's first acknowledgement (``submit`` and
        ``acknowledged`` for one): its state, None when it rounds to zero lots; raises what
        ``acknowledged`` would return as the error."""
        (result,) = await self.acknowledged(self.submit([(order, rules)]))
        if isinstance(result, Exception):
            raise result
        return result

    @staticmethod
    def _acknowledged(trade: Trade) -> bool:
        return trade.orderStatus.status != "PendingSubmit" or bool(trade.order.permId)

    @staticmethod
    def _done(trade: Trade) -> bool:
        return trade.orderStatus.status in DONE_STATUSES

    async def _until(
        self, request: str, trades: list[Trade], condition: Callable[[Trade], bool], deadline: float
    ) -> None:
        """Wait until ``condition`` holds for every trade (IB's order messages move them)."""
        if all(condition(t) for t in trades):
            return
        reached = asyncio.get_running_loop().create_future()

        def check(*_: Any) -> None:
            if not reached.done() and all(condition(t) for t in trades):
                reached.set_result(None)

        for trade in trades:
            trade.statusEvent += check
        self._ib.openOrderEvent += check
        try:
            await self._answer(request, reached, deadline)
        finally:
            for trade in trades:
                trade.statusEvent -= check
            self._ib.openOrderEvent -= check

    def _open_trades(self, order_ref: str | None = None) -> list[Trade]:
        """This client's open orders as ib_insync knows them (IB lets a client cancel only its own)."""
        return [
            t
            for t in self._ib.trades()
            if t.order.clientId == self.client_id
            and not self._done(t)
            and (order_ref is None or t.order.orderRef == order_ref)
        ]

    async def cancel(self, order_ref: str) -> None:
        """Cancel this client's open order(s) with ``order_ref`` and wait until IB reports them
        done (Cancelled, or Filled if the fill won). Returns quietly when IB has no open order
        with that ref; ``ValueError`` when only another client id's order has it (IB lets only
        that client cancel it). ``BrokerRequestFailed`` when not connected or not confirmed in
        time."""
        request = f"cancelOrder {order_ref}"
        self._require(request)
        deadline = self._deadline()
        trades = self._open_trades(order_ref)
        if not trades:  # the local view may be stale after a reconnect: ask IB
            await self._keyed(request, "openOrders", self._ib.reqOpenOrdersAsync, deadline)
            trades = self._open_trades(order_ref)
        if not trades:
            others = sorted({t.order.clientId for t in self._ib.trades()
                             if t.order.orderRef == order_ref and not self._done(t)})
            if others:
                raise ValueError(f"{request}: the order belongs to client id(s) {others}; only they can cancel it")
            log.info("cancel %s: no open order with that ref", order_ref)
            return
        await self._cancel_trades(request, trades, deadline)

    async def _cancel_trades(self, request: str, trades: list[Trade], deadline: float) -> None:
        for trade in trades:
            self._send(request, lambda t=trade: self._ib.cancelOrder(t.order))
        await self._until(request, trades, self._done, deadline)

    async def cancel_all(self) -> int:
        """Cancel every open order of this client id (as IB lists them, whatever their ref) and
        wait until all are done; the number cancelled. Orders of other client ids and of TWS
        are left alone (unlike reqGlobalCancel, which would cancel the whole account's)."""
        request = "cancel_all"
        deadline = self._deadline()
        trades = await self._keyed("reqOpenOrders", "openOrders", self._ib.reqOpenOrdersAsync, deadline)
        mine = list({id(t): t for t in trades if t.order.clientId == self.client_id and not self._done(t)}.values())
        if mine:
            await self._cancel_trades(request, mine, deadline)
        log.info("cancel_all: %d open order(s) of client %d cancelled", len(mine), self.client_id)
        return len(mine)

    # reconciliation ---------------------------------------------------------------------------

    async def open_orders(self) -> list[BrokerOrderState]:
        """Every open order of the account, of all client ids (reqAllOpenOrders), as IB states
        them now. Raises ``BrokerRequestFailed`` rather than answer incompletely."""
        trades = await self._keyed("reqAllOpenOrders", "openOrders", self._ib.reqAllOpenOrdersAsync, self._deadline())
        unique: dict[Any, Trade] = {}
        for trade in trades:
            unique[trade.order.permId or (trade.order.clientId, trade.order.orderId)] = trade
        return [self._state(t) for t in unique.values()]

    async def executions(self) -> list[BrokerExecution]:
        """This client's executions IB still reports (reqExecutions: the current day, as the
        gateway keeps them), with their orderRef; ``commission`` None when IB's report did not
        follow within ``commission_wait``. Raises ``BrokerRequestFailed`` rather than answer
        incompletely."""
        request = "reqExecutions"
        future = self._send(request, self._ib.reqExecutionsAsync)
        deadline = self._deadline()
        fills = await self._answer(request, future, deadline)
        unique = {f.execution.execId: f for f in fills}
        # IB follows the executions with their commission reports: give them a moment
        loop = asyncio.get_running_loop()
        until = min(deadline, loop.time() + self.commission_wait)
        while (
            any(self._commission(e) is None for e in unique) and loop.time() < until and self.is_connected()
        ):
            await asyncio.sleep(0.01)
        return [self._execution(f, self._commission(exec_id)) for exec_id, f in unique.items()]

    async def positions(self) -> dict[str, float]:
        """Shares held per US stock symbol (non-zero only) in the trading account (all accounts
        when several and none chosen). Raises ``BrokerRequestFailed`` rather than answer
        incompletely."""
        answer = await self._keyed("reqPositions", "positions", self._ib.reqPositionsAsync, self._deadline())
        latest = {(p.account, p.contract.conId): p for p in answer}  # later messages are newer
        accounts = self._ib.managedAccounts()
        account = self.account or (accounts[0] if len(accounts) == 1 else None)
        held: dict[str, float] = {}
        for position in latest.values():
            if account and position.account != account:
                continue
            if position.contract.secType != "STK":
                continue
            symbol = position.contract.symbol
            held[symbol] = held.get(symbol, 0.0) + float(position.position)
        return {s: q for s, q in sorted(held.items()) if q != 0}

    # real-time bars ---------------------------------------------------------------------------

    async def subscribe_realtime_bars(self, symbols: Iterable[str]) -> None:
        """5-second TRADES bars (all hours) of ``symbols`` through ``on_realtime_bar``.

        The symbols are remembered first, so after a failure (``BrokerRequestFailed`` when not
        connected) or a reconnect ``resubscribe()`` requests them. IB's errors for a stream
        are logged and kept in ``realtime_bar_errors``.
        """
        wanted = list(dict.fromkeys(self._symbol(s) for s in symbols))
        for symbol in wanted:
            self._wanted_bars[symbol] = None
        self._require(f"reqRealTimeBars {','.join(wanted)}")
        for symbol in wanted:
            if not self._live(symbol):
                self._start_bars(symbol)

    async def unsubscribe_realtime_bars(self, symbols: Iterable[str]) -> None:
        for symbol in (self._symbol(s) for s in symbols):
            self._wanted_bars.pop(symbol, None)
            stream = self._bars.pop(symbol, None)
            if stream is not None:
                self._retire(stream, cancel=self._live_stream(stream) and self.is_connected())

    async def resubscribe(self) -> int:
        """Request again every subscribed stream this connection does not carry (IB forgets
        subscriptions when the connection drops); the number requested."""
        if not self._wanted_bars:
            return 0
        self._require("resubscribe reqRealTimeBars")
        return self._restart_streams()

    def _restart_streams(self) -> int:
        restarted = 0
        for symbol in list(self._wanted_bars):
            if not self._live(symbol):
                try:
                    self._start_bars(symbol)
                except BrokerRequestFailed as exc:
                    log.warning("%s", exc)
                    continue
                restarted += 1
        if restarted:
            log.info("requested real-time bars again for %d symbol(s)", restarted)
        return restarted

    def _live_stream(self, stream: _BarStream) -> bool:
        return stream.generation == self._generation and not stream.lost

    def _live(self, symbol: str) -> bool:
        stream = self._bars.get(symbol)
        return stream is not None and self._live_stream(stream) and self.is_connected()

    def _start_bars(self, symbol: str) -> None:
        old = self._bars.pop(symbol, None)
        if old is not None:
            self._retire(old, cancel=False)  # IB no longer carries it
        rules = self._rules.get(symbol)
        contract = self._contract(rules) if rules else Stock(symbol, "SMART", "USD")
        bars = self._send(
            f"reqRealTimeBars {symbol}",
            lambda: self._ib.reqRealTimeBars(contract, REALTIME_BAR_SECONDS, "TRADES", False),
        )

        def on_update(updated: RealTimeBarList, has_new_bar: bool) -> None:
            self._on_bar(symbol, updated, has_new_bar)

        bars.updateEvent += on_update
        self._bars[symbol] = _BarStream(symbol, bars, self._generation, on_update)
        self.realtime_bar_errors.pop(symbol, None)

    def _retire(self, stream: _BarStream, cancel: bool) -> None:
        stream.bars.updateEvent -= stream.handler
        if cancel:
            try:
                self._ib.cancelRealTimeBars(stream.bars)
                return
            except ConnectionError:  # no socket to send the cancel on: just end it locally
                pass
        self._ib.wrapper.endSubscription(stream.bars)

    def _on_bar(self, symbol: str, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if not has_new_bar or not bars:
            return
        b = bars[-1]
        bar = RealtimeBar(symbol, _utc(b.time), float(b.open_), float(b.high), float(b.low), float(b.close),
                          float(b.volume))
        if len(bars) > _KEEP_BARS:
            del bars[:-1]
        self._notify(self.on_realtime_bar, bar)
