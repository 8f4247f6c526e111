"""Orders and fills: the explicit step between what a policy wants to hold and what is traded.

A policy or rule-based strategy says what it wants to *hold* (target weights, fractions of
equity). ``orders_from_targets`` is the one place that decides what to *trade*: share
quantities per symbol, as ``Order``s. The execution core (backtest) or the broker (live loop)
answers each order with a ``Fill``. Compare qlib's ``qlib/backtest/decision.py`` (Order,
TradeDecision).

``target_share_deltas`` is the arithmetic both paths share: ``ExecutionCore.rebalance`` (the
training env's fast path, no Order objects) and ``orders_from_targets`` size trades with it, so
the env and the backtester cannot disagree on what a target means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import BPS


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class FillStatus(StrEnum):
    FILLED = "FILLED"
    PARTIAL = "PARTIAL"      # part filled; the rest is cancelled (the next decision sizes anew)
    UNFILLED = "UNFILLED"    # nothing filled; ``Fill.reason`` says why


@dataclass(frozen=True, slots=True)
class Order:
    """Trade ``quantity`` shares of ``symbol``: > 0 buys, < 0 sells.

    A LIMIT order buys at ``limit_price`` or lower (sells at it or higher). ``tag`` says why the
    order exists (``"rebalance"``, a strategy's name, ...) so logs can be read without the code.
    """

    symbol: str
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    tag: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity != 0.0):
            raise ValueError(f"Order {self.symbol}: quantity must be finite and non-zero, "
                             f"got {self.quantity!r}")
        if self.order_type == OrderType.LIMIT:
            if self.limit_price is None or not (math.isfinite(self.limit_price)
                                                and self.limit_price > 0):
                raise ValueError(f"Order {self.symbol}: a LIMIT order needs a limit_price > 0, "
                                 f"got {self.limit_price!r}")
        elif self.limit_price is not None:
            raise ValueError(f"Order {self.symbol}: a MARKET order takes no limit_price")

    @property
    def side(self) -> str:
        return "BUY" if self.quantity > 0 else "SELL"

    @property
    def sign(self) -> float:
        return 1.0 if self.quantity > 0 else -1.0


@dataclass(frozen=True, slots=True)
class Fill:
    """What became of one order.

    quantity: signed shares filled (0 when UNFILLED).
    price: per share paid or received, slippage included (NaN when UNFILLED).
    reference_price: the price before slippage (the bar's open or close, or the limit).
    commission, slippage: currency; slippage = |quantity| x |price - reference_price|.
    """

    order: Order
    quantity: float
    price: float
    reference_price: float
    commission: float
    slippage: float
    status: FillStatus
    reason: str = ""

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def remaining(self) -> float:
        """Signed shares of the order left unfilled."""
        return self.order.quantity - self.quantity

    @property
    def notional(self) -> float:
        """|shares| x reference price (what turnover counts)."""
        return abs(self.quantity) * self.reference_price if self.quantity else 0.0

    @classmethod
    def unfilled(cls, order: Order, reason: str) -> Fill:
        return cls(order, 0.0, math.nan, math.nan, 0.0, 0.0, FillStatus.UNFILLED, reason)


def target_share_deltas(portfolio: Portfolio, target_weights: np.ndarray, prices: np.ndarray,
                        tradable: np.ndarray | None = None, min_order_value: float = 0.0,
                        caller: str = "target_share_deltas") -> tuple[np.ndarray, float]:
    """Signed shares per symbol that move ``portfolio`` to ``target_weights`` at ``prices``,
    and the equity they were sized against.

    ``prices`` must be finite and > 0 for every symbol (errors name ``caller``). Symbols where
    ``tradable`` is False keep their position; trades worth less than ``min_order_value`` at
    ``prices`` are dropped (minimum commissions would eat them). With no equity left
    everything is closed.
    """
    # min() is NaN when any price is NaN, so one reduction checks finite and positive.
    if not prices.min() > 0.0:
        bad = int(np.flatnonzero(~(prices > 0.0))[0])
        raise ValueError(
            f"{caller}: price for {portfolio.symbols[bad]!r} is {prices[bad]!r}; "
            "prices must be finite and > 0"
        )
    positions = portfolio.positions
    if target_weights.shape != positions.shape:
        raise ValueError(
            f"{caller}: target_weights has shape {target_weights.shape}, "
            f"expected {positions.shape} (one weight per symbol)"
        )
    equity = portfolio.cash + float(positions @ prices)
    if equity > 0.0:
        deltas = target_weights * equity / prices - positions
    else:
        # Nothing left to size against: close everything.
        deltas = -positions
    if tradable is not None:
        deltas = np.where(tradable, deltas, 0.0)
    if min_order_value > 0.0:
        dust = np.abs(deltas) * prices < min_order_value
        if dust.any():
            deltas = np.where(dust, 0.0, deltas)
    return deltas, equity


def orders_from_targets(portfolio: Portfolio, target_weights: np.ndarray, prices: np.ndarray,
                        *, tradable: np.ndarray | None = None, min_order_value: float = 0.0,
                        order_type: OrderType | str = OrderType.MARKET,
                        limit_offset_bps: float = 0.0, tag: str = "rebalance") -> list[Order]:
    """The orders that move ``portfolio`` to ``target_weights``, sized at ``prices`` (the last
    prices known when deciding), one per symbol that trades, in the portfolio's symbol order.

    LIMIT orders are priced ``limit_offset_bps`` away from ``prices`` on the passive side (buys
    below, sells above); a negative offset makes them marketable.
    """
    prices = np.asarray(prices, dtype=np.float64)
    target_weights = np.asarray(target_weights, dtype=np.float64)
    order_type = OrderType(order_type)
    deltas, _ = target_share_deltas(portfolio, target_weights, prices, tradable, min_order_value,
                                    "orders_from_targets")
    offset = limit_offset_bps * BPS
    orders = []
    for i in np.flatnonzero(deltas):
        quantity = float(deltas[i])
        limit = None
        if order_type == OrderType.LIMIT:
            limit = float(prices[i]) * (1.0 - offset if quantity > 0 else 1.0 + offset)
        orders.append(Order(portfolio.symbols[i], quantity, order_type, limit, tag))
    return orders
