"""The mutable state of one episode, shared by the environment's components.

Components stay small: the action scheme only maps an action to target weights, this state
books them through the shared ``RiskGate`` and ``ExecutionCore``, advances the clock one bar and
marks the portfolio. Everything is indexed by position, so a step costs O(symbols x features x
window) whatever the episode length.
"""

from __future__ import annotations

import numpy as np

from tt_platform.core import CostModel, ExecutionCore, Portfolio, RiskGate, RiskLimits, StepFills
from tt_platform.core.risk import RiskBreach
from tt_platform.env.config import EnvConfig
from tt_platform.env.market import MarketData


class EpisodeOver(RuntimeError):
    """``step`` was called after the episode ended; call ``reset``."""


class EpisodeState:
    def __init__(self, market: MarketData, config: EnvConfig) -> None:
        if config.fill_at == "open" and market.open is None:
            raise ValueError("EnvConfig.fill_at='open' needs MarketData.open prices")
        min_bars = config.window_size + 1
        if market.n_steps < min_bars:
            raise ValueError(
                f"market has {market.n_steps} bars; window_size={config.window_size} needs at "
                f"least {min_bars}")
        self.market = market
        self.config = config
        self.n_symbols = market.n_symbols
        self.periods_per_year = float(config.periods_per_year or market.periods_per_year)
        self.portfolio = Portfolio(config.initial_cash, market.symbols)
        self.core = ExecutionCore(
            CostModel(config.commission_bps, config.slippage_bps, config.min_commission),
            fill_at=config.fill_at, min_order_value=config.min_order_value)
        self.gate = RiskGate(RiskLimits(
            leverage_cap=config.leverage_cap, per_symbol_cap=config.per_symbol_cap,
            long_only=config.long_only))
        # Valuation prices: the forward-filled close, with a neutral 1.0 before a symbol's first
        # bar (it cannot be held then, so the placeholder never reaches equity).
        self.mark_prices = np.where(np.isfinite(market.close), market.close, 1.0)
        if config.fill_at == "open":
            open_ = np.where(market.tradable, market.open, market.close)
            self.fill_prices = np.where(np.isfinite(open_), open_, 1.0)
        else:
            self.fill_prices = self.mark_prices
        self.tradable = market.tradable
        self.all_tradable = market.tradable.all(axis=1)
        self.first_start = config.window_size - 1
        self.reset(self.first_start, market.n_steps - 1)

    def reset(self, start: int, stop: int) -> None:
        """Start at bar ``start`` (the first decision) and end at bar ``stop`` at the latest."""
        if not self.first_start <= start < stop <= self.market.n_steps - 1:
            raise ValueError(
                f"episode bounds start={start}, stop={stop} must satisfy "
                f"{self.first_start} <= start < stop <= {self.market.n_steps - 1}")
        self.start = start
        self.stop = stop
        self.t = start
        self.steps = 0
        self.done = False
        self.portfolio.reset()
        self.core.mark(self.portfolio, self.mark_prices[start])
        n = self.n_symbols
        self.target_weights = np.zeros(n)
        self.weights = np.zeros(n)
        self.fills: StepFills | None = None
        self.breaches: tuple[RiskBreach, ...] = ()
        self.prev_equity = self.portfolio.equity
        self.prev_drawdown = 0.0

    @property
    def exhausted(self) -> bool:
        """No further bar to step into (end of data or of the episode window)."""
        return self.t >= self.stop

    def execute(self, target_weights: np.ndarray) -> None:
        """Gate and book ``target_weights`` at bar t, then advance to t+1 and mark."""
        if self.done or self.t >= self.stop:
            raise EpisodeOver("the episode is over; call reset() before step()")
        t = self.t
        portfolio = self.portfolio
        weights, self.breaches = self.gate.apply(target_weights)
        self.target_weights = weights
        # With fills at the next open, execution happens at bar t+1's open.
        fill_row = t + 1 if self.core.fill_at == "open" else t
        self.prev_equity = portfolio.equity
        self.prev_drawdown = portfolio.drawdown
        self.fills = self.core.rebalance(
            portfolio, weights, self.fill_prices[fill_row],
            None if self.all_tradable[fill_row] else self.tradable[fill_row])
        self.t = t + 1
        self.steps += 1
        prices = self.mark_prices[t + 1]
        equity = self.core.mark(portfolio, prices)
        self.weights = portfolio.positions * prices / equity if equity > 0.0 else np.zeros(self.n_symbols)
