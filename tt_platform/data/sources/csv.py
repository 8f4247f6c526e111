"""A folder of plain OHLCV files, one ``<SYMBOL>.csv`` per symbol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tt_platform.data.importers import read_plain_csv
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, OnBars, SymbolBars


@dataclass(frozen=True)
class CsvSourceConfig:
    folder: Path


class CsvBarSource(BarSource):
    """A file's first and last rows are the symbol's life as far as this source knows it, so
    months outside them are recorded as "not listed yet" or "no data after"."""

    name = "csv"

    def __init__(self, config: CsvSourceConfig) -> None:
        self.config = config

    def path_for(self, symbol: str) -> Path:
        return Path(self.config.folder) / f"{symbol}.csv"

    def fetch(self, requests: Sequence[BarRequest], *, interval: str, adjusted: bool, on_bars: OnBars) -> FetchReport:
        report = FetchReport()
        files: dict[str, pd.DataFrame] = {}
        for request in requests:
            path = self.path_for(request.symbol)
            if request.symbol not in files:
                if not path.is_file():
                    report.failed[request.symbol] = f"{path}: no CSV for {request.symbol} in {self.config.folder}"
                    continue
                files[request.symbol] = read_plain_csv(path, symbol=request.symbol)
                report.requests += 1
            bars = files[request.symbol]
            days = bars["ts"].dt.tz_convert("UTC").dt.date
            inside = bars[(days >= request.start) & (days <= request.end)].reset_index(drop=True)
            listed_from = days.min() if len(bars) else None
            listed_until = days.max() if len(bars) else None
            on_bars(SymbolBars(request.symbol, request.start, request.end, inside, listed_from=listed_from, listed_until=listed_until))
        return report
