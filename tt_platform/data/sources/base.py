"""One interface for every bar source (IB, the IB emulator, synthetic, CSV files).

The ingest pipeline asks a source for day windows per symbol and stores each answer as it
arrives; it never needs to know which source it talks to. Sources are built from explicit config
objects (no environment reads), so tests, the CLI and Dagster build the same thing.

Contract for ``fetch``:
- each ``BarRequest`` asks for the sessions of ``symbol`` whose dates lie in [start, end];
- ``on_bars`` is called one or more times per request with a ``SymbolBars`` whose [start, end]
  lies inside the request's; its ``bars`` are the source's complete answer for exactly those days
  (the caller replaces that slice of the store with them, in one transaction);
- a symbol the source cannot serve at all is answered once with ``refused`` set and no bars;
- a request that failed for a passing reason (connection lost for good, timeouts) is not
  answered; it is listed in ``FetchReport.failed`` with the reason, and the caller leaves its
  partitions unmaterialized so the next run fetches it again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd


@dataclass(frozen=True)
class BarRequest:
    symbol: str
    start: date  # first session date wanted (inclusive)
    end: date  # last session date wanted (inclusive)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"{self.symbol}: request end {self.end} is before start {self.start}")


@dataclass(frozen=True)
class SymbolBars:
    """The source's complete answer for ``symbol`` on the days [start, end]."""

    symbol: str
    start: date
    end: date
    bars: pd.DataFrame  # canonical bars (tt_platform.data.bars), session dates inside [start, end]
    # what the source knows of the symbol's life; None means "not known" (never "unlisted")
    listed_from: date | None = None  # first day the source has data for the symbol
    listed_until: date | None = None  # last day it has data for (delisted, or the file ends)
    refused: str | None = None  # why nothing can be served at all (unknown symbol, no permission)


@dataclass
class FetchReport:
    requests: int = 0  # requests sent to the source (IB requests; files read; 0 for synthetic)
    failed: dict[str, str] = field(default_factory=dict)  # symbol -> reason, not answered
    pacing_violations: int = 0
    reconnects: int = 0
    max_open_requests: int = 0  # the most requests that were open at once

    def as_metadata(self) -> dict[str, object]:
        return {
            "source_requests": self.requests,
            "pacing_violations": self.pacing_violations,
            "reconnects": self.reconnects,
            "max_open_requests": self.max_open_requests,
            "failed_symbols": ", ".join(sorted(self.failed)),
        }


OnBars = Callable[[SymbolBars], None]


class BarSource(ABC):
    """Where bars come from. ``name`` is recorded with every stored bar (tt_prices.source)."""

    name: str = "source"
    # True when the source itself serves split/dividend-adjusted bars (IB); otherwise the store
    # keeps raw bars and the adjusted series is rebuilt from them and the recorded actions
    serves_adjusted: bool = False

    @abstractmethod
    def fetch(
        self,
        requests: Sequence[BarRequest],
        *,
        interval: str,
        adjusted: bool,
        on_bars: OnBars,
    ) -> FetchReport:
        """Answer ``requests`` (see the module docstring for the contract)."""

    def close(self) -> None:
        """Release connections; sources without any keep the default."""

    def __enter__(self) -> "BarSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
