"""Portfolio state: cash, share positions, marked equity and drawdown.

Every update is O(number of symbols): the running peak replaces any scan of past equity, so
step cost does not grow with the length of the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Portfolio:
    """Cash and positions in shares for a fixed list of symbols.

    ``equity`` is the value at the last mark (``ExecutionCore.mark``); ``peak_equity`` and
    ``drawdown`` follow from the marks only, so intra-step fills never create phantom peaks.
    """

    __slots__ = (
        "symbols", "initial_cash", "cash", "positions", "last_prices", "equity", "peak_equity",
        "drawdown", "max_drawdown", "total_commission", "total_slippage", "total_traded_value",
    )

    def __init__(self, initial_cash: float, symbols: Sequence[str]) -> None:
        if not math.isfinite(initial_cash) or initial_cash <= 0:
            raise ValueError(f"Portfolio.initial_cash must be a finite number > 0, got {initial_cash!r}")
        symbols = list(symbols)
        if not symbols:
            raise ValueError("Portfolio needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"Portfolio symbols must be unique, got {symbols}")
        self.symbols = symbols
        self.initial_cash = float(initial_cash)
        self.reset()

    def reset(self) -> None:
        n = len(self.symbols)
        self.cash = self.initial_cash
        self.positions = np.zeros(n, dtype=np.float64)
        self.last_prices = np.ones(n, dtype=np.float64)
        self.equity = self.initial_cash
        self.peak_equity = self.initial_cash
        self.drawdown = 0.0
        self.max_drawdown = 0.0
        self.total_commission = 0.0
        self.total_slippage = 0.0
        self.total_traded_value = 0.0

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def value(self, prices: np.ndarray) -> float:
        """Equity at ``prices`` without recording a mark."""
        return self.cash + float(self.positions @ prices)

    def weights(self, prices: np.ndarray | None = None) -> np.ndarray:
        """Position values as fractions of equity (at the last mark unless prices are given)."""
        if prices is None:
            prices, equity = self.last_prices, self.equity
        else:
            equity = self.value(prices)
        if equity <= 0.0:
            return np.zeros(self.n_symbols)
        return self.positions * prices / equity

    def gross_exposure(self) -> float:
        """Sum of absolute position values over equity, at the last mark."""
        if self.equity <= 0.0:
            return 0.0
        return float(np.abs(self.positions) @ self.last_prices) / self.equity

    def record_mark(self, equity: float, prices: np.ndarray) -> None:
        self.last_prices = prices
        self.equity = equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        self.drawdown = 1.0 - equity / self.peak_equity if self.peak_equity > 0 else 1.0
        if self.drawdown > self.max_drawdown:
            self.max_drawdown = self.drawdown

    def snapshot(self) -> dict[str, object]:
        """A copy of the state, fit for logs and tests."""
        return {
            "cash": self.cash,
            "positions": self.positions.copy(),
            "equity": self.equity,
            "peak_equity": self.peak_equity,
            "drawdown": self.drawdown,
            "max_drawdown": self.max_drawdown,
            "total_commission": self.total_commission,
            "total_slippage": self.total_slippage,
        }
