"""Turning target weights or orders into fills, and marking portfolios to market.

The same arithmetic serves training, backtests and the live loop, so a policy is judged on the
fills it would really get. Two entry points book into the same ``Portfolio``:

* ``rebalance(portfolio, target_weights, prices)``: the training env's fast path. Sizes with
  ``target_share_deltas`` (as ``orders_from_targets`` does), fills every trade in full at the
  reference price with ``CostModel``'s bps slippage and commission. No Order objects.
* ``execute(portfolio, orders, bar)``: the order-level path of the backtester (and the model of
  the broker for the live loop): market and limit orders, any commission schedule and slippage
  model, partial fills capped by a share of the bar's volume. For market orders with the bps
  model and no volume cap it books what ``rebalance`` books (tested).

Fractional shares are allowed (sizing is by weight).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CommissionSchedule, CostModel, SlippageModel
from tt_platform.core.orders import (
    Fill,
    FillStatus,
    Order,
    OrderType,
    target_share_deltas,
)

FillAt = Literal["close", "open"]


@dataclass(frozen=True)
class Bar:
    """One bar for every symbol of a portfolio, arrays in the portfolio's symbol order.

    ``volume`` is needed only for a volume cap; ``bid``/``ask`` only for quote-based spread
    slippage; ``tradable`` False (or a NaN price) means the symbol has no bar: its orders go
    unfilled.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None
    tradable: np.ndarray | None = None

    @classmethod
    def from_prices(cls, prices: np.ndarray, **fields: np.ndarray | None) -> Bar:
        """A bar known by one price (open = high = low = close)."""
        prices = np.asarray(prices, dtype=np.float64)
        return cls(prices, prices, prices, prices, **fields)


@dataclass(frozen=True)
class ExecutionReport:
    """What one ``execute`` call did: a fill per order (in order) and the totals."""

    fills: tuple[Fill, ...]
    share_deltas: np.ndarray   # signed shares filled per symbol
    commission: float
    slippage: float
    traded_value: float        # sum of |shares filled| x reference price
    equity_before: float       # equity at the bar's reference prices, before the fills

    @property
    def cost(self) -> float:
        return self.commission + self.slippage

    @property
    def turnover(self) -> float:
        return self.traded_value / self.equity_before if self.equity_before > 0.0 else 0.0

    @property
    def shares_traded(self) -> float:
        """Sum of |shares filled| (what volume tiers count)."""
        return float(sum(abs(fill.quantity) for fill in self.fills))


class StepFills:
    """What one rebalance traded and what it cost.

    Per-order fill prices and commissions are derived on first access: the env needs only the
    totals, the live loop the per-order detail.
    """

    __slots__ = ("share_deltas", "reference_prices", "commission", "slippage", "traded_value",
                 "turnover", "equity_before", "_cost_model", "_commissions")

    def __init__(self, share_deltas: np.ndarray, reference_prices: np.ndarray, commission: float,
                 slippage: float, traded_value: float, turnover: float, equity_before: float,
                 cost_model: CostModel, commissions: np.ndarray | None = None) -> None:
        self.share_deltas = share_deltas          # signed shares per symbol (+ buy, - sell)
        self.reference_prices = reference_prices  # prices before slippage
        self.commission = commission              # total commission
        self.slippage = slippage                  # total slippage cost versus the reference
        self.traded_value = traded_value          # sum of |shares| x reference price
        self.turnover = turnover                  # traded_value / equity before the trade
        self.equity_before = equity_before        # equity at the reference prices
        self._cost_model = cost_model
        self._commissions = commissions

    @property
    def fill_prices(self) -> np.ndarray:
        """Price each order filled at, slippage included."""
        return self._cost_model.fill_prices(self.share_deltas, self.reference_prices)

    @property
    def commissions(self) -> np.ndarray:
        """Commission per symbol."""
        if self._commissions is None:
            self._commissions = self._cost_model.commissions(self.share_deltas, self.fill_prices)
        return self._commissions

    @property
    def cost(self) -> float:
        return self.commission + self.slippage

    @property
    def n_orders(self) -> int:
        return int(np.count_nonzero(self.share_deltas))

    def __repr__(self) -> str:
        return (f"StepFills(orders={self.n_orders}, traded_value={self.traded_value:.2f}, "
                f"commission={self.commission:.4f}, slippage={self.slippage:.4f}, "
                f"turnover={self.turnover:.4f})")


class ExecutionCore:
    """Books trades into a ``Portfolio`` and marks it to market.

    ``fill_at`` names the price trades fill at: ``"close"`` (the decision bar's close) or
    ``"open"`` (the next bar's open); ``rebalance`` is passed that price, ``execute`` the bar.
    Orders smaller than ``min_order_value`` (at the reference price) are not sent, which keeps
    minimum commissions from eating dust rebalances.

    ``execute`` charges ``commission`` and ``slippage`` (default: ``cost_model``'s bps, so both
    paths cost the same) and fills at most ``max_volume_share`` x the bar's volume per symbol
    (None: no cap). Deterministic; cost per call is O(symbols) or O(orders).
    """

    def __init__(self, cost_model: CostModel, fill_at: FillAt = "close",
                 min_order_value: float = 0.0, *, commission: CommissionSchedule | None = None,
                 slippage: SlippageModel | None = None,
                 max_volume_share: float | None = None) -> None:
        if fill_at not in ("close", "open"):
            raise ValueError(f"ExecutionCore.fill_at must be 'close' or 'open', got {fill_at!r}")
        if not min_order_value >= 0.0:
            raise ValueError(f"ExecutionCore.min_order_value must be >= 0, got {min_order_value!r}")
        if max_volume_share is not None and not 0.0 < max_volume_share <= 1.0:
            raise ValueError(
                f"ExecutionCore.max_volume_share must be in (0, 1], got {max_volume_share!r}")
        self.cost_model = cost_model
        self.fill_at = fill_at
        self.min_order_value = float(min_order_value)
        self.commission = commission if commission is not None else cost_model.commission_schedule()
        self.slippage = slippage if slippage is not None else cost_model.slippage_model()
        self.max_volume_share = max_volume_share
        self._slippage_rate = cost_model.slippage_rate

    def rebalance(self, portfolio: Portfolio, target_weights: np.ndarray, prices: np.ndarray,
                  tradable: np.ndarray | None = None) -> StepFills:
        """Trade ``portfolio`` towards ``target_weights`` (fractions of equity) at ``prices``.

        ``prices`` must be finite and > 0 for every symbol (use the last known price for a
        symbol without a bar); symbols where ``tradable`` is False keep their position.
        """
        positions = portfolio.positions
        deltas, equity = target_share_deltas(portfolio, target_weights, prices, tradable,
                                             self.min_order_value, "rebalance")
        cost_model = self.cost_model
        slip = self._slippage_rate
        traded_value = float(np.abs(deltas) @ prices)
        net_value = float(deltas @ prices)
        commissions = None
        if cost_model.min_commission > 0.0:
            commissions = cost_model.commissions(deltas, cost_model.fill_prices(deltas, prices))
            commission = float(commissions.sum())
        else:
            # sum |d| p (1 + s sign d) = traded_value + s (d . p): no per-order arrays needed.
            commission = cost_model.commission_rate * (traded_value + slip * net_value)
        slippage = traded_value * slip
        # Cash pays the reference value of net buys plus slippage and commission on every order.
        portfolio.cash -= net_value + slippage + commission
        portfolio.positions = positions + deltas
        portfolio.total_commission += commission
        portfolio.total_slippage += slippage
        portfolio.total_traded_value += traded_value
        return StepFills(deltas, prices, commission, slippage, traded_value,
                         traded_value / equity if equity > 0.0 else 0.0, equity, cost_model,
                         commissions)

    def execute(self, portfolio: Portfolio, orders: Sequence[Order], bar: Bar,
                *, at: FillAt | None = None, month_to_date_shares: float = 0.0
                ) -> ExecutionReport:
        """Fill ``orders`` against ``bar`` in the given order and book them into ``portfolio``.

        ``at`` (default ``fill_at``): ``"open"`` means the orders work through the whole bar
        from its open, ``"close"`` that they meet the bar's closing price only.

        * MARKET: fills at the reference price (open or close) moved against the order by the
          slippage model.
        * LIMIT (buy; sells mirror it): marketable when the reference price is at or below the
          limit -- it then fills like a market order, but never above the limit. Otherwise,
          with ``at="open"``, it fills at the limit when the bar trades down to it
          (``low <= limit``; a touch counts, queue position is not modelled) without
          slippage; it is UNFILLED when the bar never reaches the limit. With ``at="close"``
          only the close counts.
        * Volume cap: at most ``max_volume_share`` x the bar's volume per symbol (shared by
          that symbol's orders in this call); the order is PARTIAL and the rest cancelled.
        * No bar (``tradable`` False or no price): UNFILLED.

        Commission is charged per order on the filled shares at the fill price;
        ``month_to_date_shares`` feeds volume-tiered schedules (the caller resets it monthly).
        """
        at = self.fill_at if at is None else at
        if at not in ("close", "open"):
            raise ValueError(f"ExecutionCore.execute: at must be 'close' or 'open', got {at!r}")
        if self.max_volume_share is not None and bar.volume is None:
            raise ValueError("ExecutionCore.execute: max_volume_share needs bar.volume")
        reference = np.asarray(bar.open if at == "open" else bar.close, dtype=np.float64)
        valuation = np.where(np.isfinite(reference), reference, portfolio.last_prices)
        equity_before = portfolio.cash + float(portfolio.positions @ valuation)
        deltas = np.zeros(portfolio.n_symbols)
        index = {symbol: i for i, symbol in enumerate(portfolio.symbols)}
        volume_used: dict[int, float] = {}
        fills: list[Fill] = []
        cash_flow = commission = slippage = traded_value = 0.0
        month_shares = month_to_date_shares
        for order in orders:
            i = index.get(order.symbol)
            if i is None:
                raise ValueError(f"ExecutionCore.execute: order for {order.symbol!r}, which is "
                                 f"not in the portfolio {portfolio.symbols}")
            fill = self._fill(order, i, bar, at, float(reference[i]), volume_used, month_shares)
            fills.append(fill)
            if fill.quantity == 0.0:
                continue
            month_shares += abs(fill.quantity)
            deltas[i] += fill.quantity
            # Cash pays the reference value plus slippage and commission, as in rebalance.
            cash_flow += fill.quantity * fill.reference_price + fill.slippage + fill.commission
            commission += fill.commission
            slippage += fill.slippage
            traded_value += abs(fill.quantity) * fill.reference_price
        portfolio.cash -= cash_flow
        portfolio.positions = portfolio.positions + deltas
        portfolio.total_commission += commission
        portfolio.total_slippage += slippage
        portfolio.total_traded_value += traded_value
        return ExecutionReport(tuple(fills), deltas, commission, slippage, traded_value,
                               equity_before)

    def _fill(self, order: Order, i: int, bar: Bar, at: FillAt, reference: float,
              volume_used: dict[int, float], month_to_date_shares: float) -> Fill:
        if not (reference > 0.0 and math.isfinite(reference)) or (
                bar.tradable is not None and not bar.tradable[i]):
            return Fill.unfilled(order, f"no bar for {order.symbol}")
        sign = order.sign
        quote = {"high": _at(bar.high, i), "low": _at(bar.low, i), "bid": _at(bar.bid, i),
                 "ask": _at(bar.ask, i)}
        base = reference
        per_share = self.slippage.per_share(reference, **quote)
        if order.order_type == OrderType.LIMIT:
            limit = float(order.limit_price)  # type: ignore[arg-type]
            # The bar's extreme on the order's side: where a resting order could fill.
            extreme, extreme_name = (quote["low"], "low") if sign > 0 else (quote["high"], "high")
            if sign * (limit - reference) >= 0.0:
                # Marketable: trades like a market order, but never through the limit.
                per_share = min(per_share, sign * (limit - reference))
            elif at == "open" and sign * (limit - extreme) >= 0.0:  # False for a NaN extreme
                base, per_share = limit, 0.0  # resting order filled at its limit
            else:
                seen = (reference, "close") if at == "close" else (extreme, extreme_name)
                return Fill.unfilled(order, f"limit {limit:.6g} not reached "
                                            f"({seen[1]} {seen[0]:.6g})")
        shares = abs(order.quantity)
        status, reason = FillStatus.FILLED, ""
        if self.max_volume_share is not None:
            bar_volume = float(bar.volume[i])  # type: ignore[index]
            available = self.max_volume_share * bar_volume - volume_used.get(i, 0.0)
            if not available > 0.0:  # also False for NaN volume
                return Fill.unfilled(order, f"volume cap: no volume left "
                                            f"({self.max_volume_share:g} x bar volume "
                                            f"{bar_volume:g})")
            if shares > available:
                status = FillStatus.PARTIAL
                reason = (f"volume cap: {available:.6g} of {shares:.6g} shares "
                          f"({self.max_volume_share:g} x bar volume)")
                shares = available
            volume_used[i] = volume_used.get(i, 0.0) + shares
        price = base + sign * per_share
        fee = self.commission.order_commission(shares, price, month_to_date_shares)
        return Fill(order, sign * shares, price, base, fee, shares * per_share, status, reason)

    def mark(self, portfolio: Portfolio, prices: np.ndarray) -> float:
        """Value the portfolio at ``prices`` and update its peak and drawdown; returns equity."""
        equity = portfolio.cash + float(portfolio.positions @ prices)
        portfolio.record_mark(equity, prices)
        return equity


def _at(values: np.ndarray | None, i: int) -> float:
    return math.nan if values is None else float(values[i])


def book_fill(portfolio: Portfolio, symbol: str, quantity: float, price: float,
              commission: float = 0.0, reference_price: float | None = None) -> None:
    """Book one fill reported by a broker (``quantity`` signed shares at ``price``, commission
    in currency) into ``portfolio``: the same cash and position arithmetic as ``execute``, whose
    fills are priced by the model instead. ``reference_price`` (default ``price``) is what the
    slippage is measured against."""
    if symbol not in portfolio.symbols:
        raise ValueError(f"book_fill: {symbol!r} is not in the portfolio {portfolio.symbols}")
    if not (math.isfinite(quantity) and math.isfinite(price) and price > 0.0):
        raise ValueError(f"book_fill {symbol}: quantity {quantity!r} at price {price!r} is not a fill")
    if not (math.isfinite(commission) and commission >= 0.0):
        raise ValueError(f"book_fill {symbol}: commission must be >= 0, got {commission!r}")
    reference = price if reference_price is None else float(reference_price)
    i = portfolio.symbols.index(symbol)
    slippage = abs(quantity) * abs(price - reference)
    portfolio.cash -= quantity * price + commission
    positions = portfolio.positions.copy()
    positions[i] += quantity
    portfolio.positions = positions
    portfolio.total_commission += commission
    portfolio.total_slippage += slippage
    portfolio.total_traded_value += abs(quantity) * reference
