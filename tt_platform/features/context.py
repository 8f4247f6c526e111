"""What a feature function receives: the bar panel plus a memo of shared intermediates.

Several features reuse the same building blocks (log returns, n-bar returns, ATR); the memo
computes each once per ``compute_features`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from tt_platform.features.panel import BarPanel, Layout


@dataclass
class FeatureContext:
    panel: BarPanel
    benchmark_symbol: str | None
    _memo: dict[Hashable, np.ndarray] = field(default_factory=dict)

    @property
    def layout(self) -> Layout:
        return self.panel.layout

    @property
    def n_bars(self) -> np.ndarray:
        return self.panel.layout.n_bars

    @property
    def open(self) -> np.ndarray:
        return self.panel.compact["open"]

    @property
    def high(self) -> np.ndarray:
        return self.panel.compact["high"]

    @property
    def low(self) -> np.ndarray:
        return self.panel.compact["low"]

    @property
    def close(self) -> np.ndarray:
        return self.panel.compact["close"]

    @property
    def volume(self) -> np.ndarray:
        return self.panel.compact["volume"]

    @property
    def benchmark_index(self) -> int | None:
        """Column of the benchmark symbol, or None when it is not in the universe."""
        if self.benchmark_symbol is None:
            return None
        try:
            return self.panel.symbols.index(self.benchmark_symbol)
        except ValueError:
            return None

    def memo(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]
