"""Paper broker of the emulator: orders filled from released bars, positions, cash (pure logic).

Fill model, without look-ahead. Quotes are made up around the last released close (see
``QuoteModel``). A market order fills at once at the ask (buys) or the bid (sells); a limit
order fills at once at that quote when the quote is at or through the limit, otherwise it
rests and fills on a later bar that trades through the limit, at the better of the bar's open
and the limit; a market order left over (partial fills) takes the next bar's open quote. With
``volume_share`` set, one bar fills at most that share of its volume (the rest stays working:
partial fills). Commissions follow IB's fixed US-stock pricing per order (USD 0.005 per share,
at least USD 1, at most 1 % of the trade value): each execution is charged what its shares add to
the order's total, so the executions of one order sum to that order's commission.

What-if orders (``what_if``) are priced the same way and change nothing.
"""

from __future__ import annotations

import itertools
import math
import secrets
from dataclasses import dataclass, field

from tt_platform.ib.emulator.quotes import QuoteModel
from tt_platform.ib.emulator.wire import round_to_tick

DONE_STATES = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}
# margin rate of the paper account (Reg T style, long and short alike)
MARGIN_RATE = 0.25


class OrderRejected(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CommissionModel:
    per_share: float = 0.005
    minimum: float = 1.0
    max_fraction: float = 0.01

    def commission(self, shares: float, price: float) -> float:
        fee = max(self.minimum, self.per_share * shares)
        return round(min(fee, self.max_fraction * shares * price) if shares * price > 0 else fee, 4)


@dataclass
class OrderTicket:
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str  # BUY / SELL
    quantity: float
    order_type: str  # MKT / LMT
    lmt_price: float | None
    aux_price: float | None = None
    tif: str = "DAY"
    account: str = ""
    order_ref: str = ""
    exchange: str = "SMART"
    outside_rth: bool = False
    parent_id: int = 0
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass
class Execution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    side: str  # BOT / SLD
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    account: str
    exchange: str
    time_text: str
    order_ref: str
    commission: float
    realized_pnl: float


@dataclass(frozen=True)
class WhatIf:
    """Margin and commission impact of an order that is not placed (IB's what-if OrderState)."""

    init_margin_before: float
    maint_margin_before: float
    equity_with_loan_before: float
    init_margin_change: float
    maint_margin_change: float
    equity_with_loan_change: float
    commission: float
    price: float

    @property
    def init_margin_after(self) -> float:
        return self.init_margin_before + self.init_margin_change

    @property
    def maint_margin_after(self) -> float:
        return self.maint_margin_before + self.maint_margin_change

    @property
    def equity_with_loan_after(self) -> float:
        return self.equity_with_loan_before + self.equity_with_loan_change


@dataclass
class Holding:
    quantity: float = 0.0
    avg_cost: float = 0.0  # per share, commissions included (as IB reports it)
    realized_pnl: float = 0.0


@dataclass
class Broker:
    account: str
    initial_cash: float = 1_000_000.0
    commission_model: CommissionModel = field(default_factory=CommissionModel)
    quotes: QuoteModel = field(default_factory=QuoteModel)
    volume_share: float | None = None  # most of a bar's volume one order fills per bar; None: all

    def __post_init__(self) -> None:
        if self.volume_share is not None and not 0 < self.volume_share <= 1:
            raise ValueError(f"volume_share must be in (0, 1] or None, got {self.volume_share!r}")
        self.cash = float(self.initial_cash)
        self.holdings: dict[str, Holding] = {}
        self.orders: dict[tuple[int, int], OrderTicket] = {}  # (client_id, order_id)
        self.executions: list[Execution] = []
        self.marks: dict[str, float] = {}
        self._perm_ids = itertools.count(1_000_001)
        self._exec_ids = itertools.count(1)
        # execution ids are unique across gateway runs, as IB's are (clients key fills by them)
        self._exec_prefix = f"{secrets.randbits(32):08x}"

    # orders -----------------------------------------------------------------------------------

    def next_perm_id(self) -> int:
        return next(self._perm_ids)

    def submit(self, ticket: OrderTicket) -> OrderTicket:
        """Accept a new order, or modify the working order with the same (client, order) id."""
        self.validate(ticket)
        key = (ticket.client_id, ticket.order_id)
        existing = self.orders.get(key)
        if existing is not None:
            if existing.is_done:
                raise OrderRejected(103, f"Duplicate order id {ticket.order_id}")
            if ticket.quantity < existing.filled:
                raise OrderRejected(
                    321, f"Error validating request: size {ticket.quantity} is below the filled {existing.filled}"
                )
            existing.quantity, existing.lmt_price, existing.order_type = (
                ticket.quantity,
                ticket.lmt_price,
                ticket.order_type,
            )
            ticket = existing
        else:
            self.orders[key] = ticket
        ticket.status = "Submitted"
        return ticket

    @staticmethod
    def validate(ticket: OrderTicket) -> None:
        """Reject what IB would reject on arrival (raises ``OrderRejected`` with IB's code)."""
        if ticket.action not in ("BUY", "SELL"):
            raise OrderRejected(321, f"Error validating request: action {ticket.action!r} must be BUY or SELL")
        if not ticket.quantity > 0:
            raise OrderRejected(321, f"Error validating request: order size {ticket.quantity} must be positive")
        if ticket.order_type not in ("MKT", "LMT"):
            raise OrderRejected(387, f"Unsupported order type {ticket.order_type!r} (emulator fills MKT and LMT)")
        if ticket.order_type == "LMT" and (ticket.lmt_price is None or not ticket.lmt_price > 0):
            raise OrderRejected(321, "Error validating request: a limit order needs a positive limit price")

    def match(
        self, ticket: OrderTicket, last_price: float | None, volume: float, tick: float, time_text: str
    ) -> Execution | None:
        """Fill ``ticket`` now if it is marketable against the quote around the last price."""
        if ticket.is_done or last_price is None:
            return None
        price = self._marketable_price(ticket, self.quotes.around(last_price, tick).taking(ticket.sign))
        return None if price is None else self._fill(ticket, round_to_tick(price, tick), volume, time_text)

    def cancel(self, client_id: int, order_id: int) -> OrderTicket:
        ticket = self.orders.get((client_id, order_id))
        if ticket is None:
            raise OrderRejected(10147, f"OrderId {order_id} that needs to be cancelled is not found.")
        if ticket.is_done:
            raise OrderRejected(
                161, f"Cancel attempted when order {order_id} is not in a cancellable state ({ticket.status})."
            )
        ticket.status = "Cancelled"
        return ticket

    def working(self, symbol: str | None = None) -> list[OrderTicket]:
        return [t for t in self.orders.values() if not t.is_done and (symbol is None or t.symbol == symbol)]

    def match_bar(
        self, ticket: OrderTicket, open_: float, high: float, low: float, volume: float, tick: float, time_text: str
    ) -> Execution | None:
        """A new bar was released: fill ``ticket`` if the bar trades through it."""
        if ticket.is_done:
            return None
        price = None
        if ticket.order_type == "MKT":
            price = self.quotes.around(open_, tick).taking(ticket.sign)
        elif ticket.sign > 0 and low <= ticket.lmt_price:
            price = min(open_, ticket.lmt_price)
        elif ticket.sign < 0 and high >= ticket.lmt_price:
            price = max(open_, ticket.lmt_price)
        return None if price is None else self._fill(ticket, round_to_tick(price, tick), volume, time_text)

    @staticmethod
    def _marketable_price(ticket: OrderTicket, quote: float) -> float | None:
        if ticket.order_type == "MKT":
            return quote
        if ticket.sign > 0:
            return quote if quote <= ticket.lmt_price else None
        return quote if quote >= ticket.lmt_price else None

    def _fillable(self, ticket: OrderTicket, volume: float) -> float:
        if self.volume_share is None:
            return ticket.remaining
        return min(ticket.remaining, float(math.floor(self.volume_share * max(volume, 0.0))))

    def _commission(self, ticket: OrderTicket, shares: float, price: float) -> float:
        """What ``shares`` more at ``price`` add to the order's commission (IB charges per order)."""
        model = self.commission_model
        before = model.commission(ticket.filled, ticket.avg_fill_price) if ticket.filled else 0.0
        total = ticket.filled + shares
        average = (ticket.avg_fill_price * ticket.filled + price * shares) / total
        return round(max(0.0, model.commission(total, average) - before), 4)

    def _fill(self, ticket: OrderTicket, price: float, volume: float, time_text: str) -> Execution | None:
        shares = self._fillable(ticket, volume)
        if shares <= 0:
            return None
        commission = self._commission(ticket, shares, price)
        realized = self._apply_to_holding(ticket.symbol, ticket.sign * shares, price, commission)
        self.cash -= ticket.sign * shares * price + commission
        previous = ticket.filled
        ticket.filled += shares
        # rounded: an average like 24.820000000000004 must not reach the wire
        ticket.avg_fill_price = round((ticket.avg_fill_price * previous + price * shares) / ticket.filled, 8)
        ticket.last_fill_price = price
        ticket.status = "Filled" if ticket.remaining <= 0 else "Submitted"
        execution = Execution(
            exec_id=f"{self._exec_prefix}.{next(self._exec_ids):08x}.01.01",
            order_id=ticket.order_id,
            client_id=ticket.client_id,
            perm_id=ticket.perm_id,
            symbol=ticket.symbol,
            side="BOT" if ticket.sign > 0 else "SLD",
            shares=shares,
            price=price,
            cum_qty=ticket.filled,
            avg_price=ticket.avg_fill_price,
            account=self.account,
            exchange="ISLAND" if ticket.exchange == "SMART" else ticket.exchange,
            time_text=time_text,
            order_ref=ticket.order_ref,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        self.marks.setdefault(ticket.symbol, price)
        return execution

    def _apply_to_holding(self, symbol: str, signed_qty: float, price: float, commission: float) -> float:
        """Update the position; return the realized P&L (commission of the closing part included)."""
        h = self.holdings.setdefault(symbol, Holding())
        q0, qty, side = h.quantity, abs(signed_qty), math.copysign(1, signed_qty)
        if q0 == 0 or math.copysign(1, q0) == side:
            new_q = q0 + signed_qty
            # commission raises a long's cost basis and lowers a short's entry price
            h.avg_cost = (abs(q0) * h.avg_cost + qty * price + side * commission) / abs(new_q)
            h.quantity = new_q
            return 0.0
        closing = min(qty, abs(q0))
        closing_fee = commission * closing / qty
        realized = closing * (price - h.avg_cost) * math.copysign(1, q0) - closing_fee
        opened = qty - closing
        if q0 + signed_qty == 0:
            h.avg_cost = 0.0
        elif opened > 0:  # the order flipped the position: the rest opens at this price
            h.avg_cost = (opened * price + side * (commission - closing_fee)) / opened
        h.quantity = q0 + signed_qty
        h.realized_pnl += realized
        return realized

    def what_if(self, ticket: OrderTicket, last_price: float | None, tick: float) -> WhatIf:
        """Margin and commission if ``ticket`` filled in full now; nothing changes."""
        if ticket.order_type == "LMT":
            price = ticket.lmt_price
        elif last_price is not None:
            price = self.quotes.around(last_price, tick).taking(ticket.sign)
        else:
            raise OrderRejected(10168, "Requested market data is not subscribed: no price to assess the order")
        price = round_to_tick(price, tick)
        commission = self.commission_model.commission(ticket.quantity, price)
        before = self.account_values()
        held = self.holdings.get(ticket.symbol, Holding())
        mark = self.marks.get(ticket.symbol, price)
        gross_after = (
            before["GrossPositionValue"]
            - abs(held.quantity * mark)
            + abs((held.quantity + ticket.sign * ticket.quantity) * mark)
        )
        margin_change = MARGIN_RATE * (gross_after - before["GrossPositionValue"])
        # cash pays the price, the position is worth the mark: the difference and the fee are lost
        equity_change = -ticket.sign * ticket.quantity * (price - mark) - commission
        return WhatIf(
            init_margin_before=before["InitMarginReq"],
            maint_margin_before=before["MaintMarginReq"],
            equity_with_loan_before=before["EquityWithLoanValue"],
            init_margin_change=margin_change,
            maint_margin_change=margin_change,
            equity_with_loan_change=equity_change,
            commission=commission,
            price=price,
        )

    # account ----------------------------------------------------------------------------------

    def mark(self, symbol: str, price: float) -> None:
        self.marks[symbol] = price

    def market_value(self, symbol: str) -> float:
        h = self.holdings.get(symbol, Holding())
        return h.quantity * self.marks.get(symbol, h.avg_cost)

    def unrealized_pnl(self, symbol: str) -> float:
        h = self.holdings.get(symbol, Holding())
        return h.quantity * (self.marks.get(symbol, h.avg_cost) - h.avg_cost)

    def account_values(self) -> dict[str, float]:
        gross = sum(abs(self.market_value(s)) for s in self.holdings)
        net = self.cash + sum(self.market_value(s) for s in self.holdings)
        available = net - MARGIN_RATE * gross
        return {
            "NetLiquidation": net,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "CashBalance": self.cash,
            "EquityWithLoanValue": net,
            "GrossPositionValue": gross,
            "InitMarginReq": MARGIN_RATE * gross,
            "MaintMarginReq": MARGIN_RATE * gross,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "BuyingPower": 4 * available,
            "UnrealizedPnL": sum(self.unrealized_pnl(s) for s in self.holdings),
            "RealizedPnL": sum(h.realized_pnl for h in self.holdings.values()),
        }
