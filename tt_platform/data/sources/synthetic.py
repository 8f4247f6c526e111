"""Synthetic bars as a source: reproducible, correlated, any symbol, any range since 2000."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tt_platform.data.bars import empty_bars
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, OnBars, SymbolBars
from tt_platform.data.synthetic import EPOCH, generate_bars


@dataclass(frozen=True)
class SyntheticSourceConfig:
    seed: int = 7


class SyntheticBarSource(BarSource):
    name = "synthetic"

    def __init__(self, config: SyntheticSourceConfig | None = None) -> None:
        self.config = config or SyntheticSourceConfig()

    def fetch(self, requests: Sequence[BarRequest], *, interval: str, adjusted: bool, on_bars: OnBars) -> FetchReport:
        # the same window for many symbols is one generation (the market factor is shared)
        by_window: dict[tuple, list[str]] = defaultdict(list)
        for request in requests:
            by_window[(request.start, request.end)].append(request.symbol)
        first_day = EPOCH.date()
        for (start, end), symbols in by_window.items():
            lo = max(start, first_day)
            bars = generate_bars(symbols, lo, end, interval=interval, seed=self.config.seed) if lo <= end else empty_bars()
            by_symbol = {str(s): frame for s, frame in bars.groupby("symbol", sort=False)} if len(bars) else {}
            for symbol in symbols:
                mine = by_symbol.get(symbol.upper(), bars.iloc[0:0])
                on_bars(SymbolBars(symbol, start, end, mine.reset_index(drop=True), listed_from=first_day))
        return FetchReport()
