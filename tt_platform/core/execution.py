"""Turning target weights into fills, and marking portfolios to market.

The same arithmetic serves training, backtests and the live loop, so a policy is judged on the
fills it would really get. Orders are share deltas; fills pay slippage against the order side and
commission on the fill notional. Fractional shares are allowed (sizing is by weight).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CostModel

FillAt = Literal["close", "open"]


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
    """Rebalances a ``Portfolio`` to target weights and marks it to market.

    ``fill_at`` names the price the caller passes to ``rebalance``: ``"close"`` (the decision
    bar's close) or ``"open"`` (the next bar's open). Orders smaller than ``min_order_value``
    (at the reference price) are not sent, which keeps minimum commissions from eating dust
    rebalances. Deterministic; cost per call is O(symbols).
    """

    def __init__(self, cost_model: CostModel, fill_at: FillAt = "close",
                 min_order_value: float = 0.0) -> None:
        if fill_at not in ("close", "open"):
            raise ValueError(f"ExecutionCore.fill_at must be 'close' or 'open', got {fill_at!r}")
        if not min_order_value >= 0.0:
            raise ValueError(f"ExecutionCore.min_order_value must be >= 0, got {min_order_value!r}")
        self.cost_model = cost_model
        self.fill_at = fill_at
        self.min_order_value = float(min_order_value)
        self._slippage_rate = cost_model.slippage_rate

    def rebalance(self, portfolio: Portfolio, target_weights: np.ndarray, prices: np.ndarray,
                  tradable: np.ndarray | None = None) -> StepFills:
        """Trade ``portfolio`` towards ``target_weights`` (fractions of equity) at ``prices``.

        ``prices`` must be finite and > 0 for every symbol (use the last known price for a
        symbol without a bar); symbols where ``tradable`` is False keep their position.
        """
        # min() is NaN when any price is NaN, so one reduction checks finite and positive.
        if not prices.min() > 0.0:
            bad = int(np.flatnonzero(~(prices > 0.0))[0])
            raise ValueError(
                f"rebalance: price for {portfolio.symbols[bad]!r} is {prices[bad]!r}; "
                "prices must be finite and > 0"
            )
        if target_weights.shape != portfolio.positions.shape:
            raise ValueError(
                f"rebalance: target_weights has shape {target_weights.shape}, "
                f"expected {portfolio.positions.shape} (one weight per symbol)"
            )
        positions = portfolio.positions
        equity = portfolio.cash + float(positions @ prices)
        if equity > 0.0:
            deltas = target_weights * equity / prices - positions
        else:
            # Nothing left to size against: close everything.
            deltas = -positions
        if tradable is not None:
            deltas = np.where(tradable, deltas, 0.0)
        if self.min_order_value > 0.0:
            dust = np.abs(deltas) * prices < self.min_order_value
            if dust.any():
                deltas = np.where(dust, 0.0, deltas)
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

    def mark(self, portfolio: Portfolio, prices: np.ndarray) -> float:
        """Value the portfolio at ``prices`` and update its peak and drawdown; returns equity."""
        equity = portfolio.cash + float(portfolio.positions @ prices)
        portfolio.record_mark(equity, prices)
        return equity
