"""Backfill driver: walk the request chunks of many symbols and hand each finished one over.

The driver owns the walk (symbols, then chunks oldest first), survives socket drops and gateway
restarts (reconnect, then ask again for the chunk that was interrupted, never for the ones already
delivered) and reports what IB refused. It does not store anything: ``on_chunk`` receives each
completed chunk and the caller writes it (transactionally) to wherever it belongs. Pacing and
pacing-violation retries happen in the client's pacer; a ``PacingEscalation`` ends the backfill.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import pandas as pd

from tt_platform.ib.chunking import Chunk, ChunkUnit
from tt_platform.ib.errors import IBConnectionLost, IBError
from tt_platform.ib.models import HistoricalResult, ResolvedContract, Unresolved
from tt_platform.ib.pacing import PacingEscalation

log = logging.getLogger(__name__)
T = TypeVar("T")


class HistoricalClient(Protocol):
    """What the driver needs from a client (``IBMarketData`` implements it)."""

    def connect(self) -> Any: ...

    def is_connected(self) -> bool: ...

    def qualify(self, symbols: Iterable[str]) -> dict[str, ResolvedContract | Unresolved]: ...

    def plan(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str,
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> list[Chunk]: ...

    def historical_chunk(
        self, symbol: str, chunk: Chunk, interval: str, adjusted: bool = False
    ) -> HistoricalResult: ...


@dataclass(frozen=True)
class CompletedChunk:
    """One answered request: canonical bars of ``symbol`` in ``[chunk.start, chunk.end)``.

    Empty ``bars`` means IB answered "no data" for that range (it is still done).
    """

    symbol: str
    interval: str
    adjusted: bool
    chunk: Chunk
    bars: pd.DataFrame
    errors: tuple[IBError, ...] = ()


@dataclass
class BackfillReport:
    chunks_done: int = 0
    chunks_skipped: int = 0
    bars: int = 0
    requests: int = 0
    pacing_violations: int = 0
    reconnects: int = 0
    unresolved: dict[str, str] = field(default_factory=dict)
    refused: list[tuple[str, Chunk, list[IBError]]] = field(default_factory=list)
    no_data: list[tuple[str, Chunk]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every requested chunk of every resolved symbol was answered."""
        return not self.refused


def backfill(
    client: HistoricalClient,
    symbols: Iterable[str],
    start: Any,
    end: Any,
    interval: str = "1d",
    on_chunk: Callable[[CompletedChunk], None] | None = None,
    *,
    adjusted: bool = False,
    is_done: Callable[[str, Chunk], bool] | None = None,
    max_reconnects: int = 10,
    chunk_unit: ChunkUnit | None = None,
) -> BackfillReport:
    """Fetch ``[start, end)`` of ``interval`` bars for ``symbols`` chunk by chunk.

    ``on_chunk`` gets every completed chunk exactly once, in order per symbol. ``is_done`` lets a
    caller skip chunks it already holds (resuming an earlier, interrupted run). Connection losses
    are survived up to ``max_reconnects`` times in all. ``chunk_unit`` makes requests smaller
    than IB's limit (see ``tt_platform.ib.chunking``).
    """
    if on_chunk is None:
        raise ValueError("backfill needs on_chunk: the driver stores nothing itself")
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols))
    report = BackfillReport()

    connected_once = False

    def note_reconnect(reason: object) -> None:
        if report.reconnects >= max_reconnects:
            raise IBConnectionLost(f"backfill gave up after {report.reconnects} reconnects: {reason}")
        report.reconnects += 1
        log.warning("IB connection lost (%s); reconnecting (%d/%d)", reason, report.reconnects, max_reconnects)

    def call(fn: Callable[[], T]) -> T:
        """Run one client call, reconnecting first if needed; retried after a connection loss.
        ``client.connect`` retries with back-off itself and raises when IB stays away."""
        nonlocal connected_once
        counted = False
        while True:
            if not client.is_connected():
                if connected_once and not counted:  # closed between two calls (a gateway restart)
                    note_reconnect("the connection was closed")
                client.connect()
                connected_once = True
            counted = False
            try:
                return fn()
            except IBConnectionLost as exc:
                note_reconnect(exc)
                counted = True

    try:
        resolutions = call(lambda: client.qualify(wanted))
        for symbol in wanted:
            resolution = resolutions[symbol]
            if isinstance(resolution, Unresolved):
                report.unresolved[symbol] = resolution.reason
                log.warning("backfill: %s unresolved: %s", symbol, resolution.reason)
                continue
            chunks = call(partial(client.plan, symbol, start, end, interval, adjusted, chunk_unit))
            for chunk in chunks:
                if is_done is not None and is_done(symbol, chunk):
                    report.chunks_skipped += 1
                    continue
                result = call(partial(client.historical_chunk, symbol, chunk, interval, adjusted))
                report.requests += result.requests
                report.pacing_violations += result.pacing_violations
                if result.refused:
                    report.refused.append((symbol, chunk, list(result.errors)))
                    log.warning("backfill: %s %s refused: %s", symbol, chunk, "; ".join(map(str, result.errors)))
                    continue
                if result.bars.empty:
                    report.no_data.append((symbol, chunk))
                on_chunk(CompletedChunk(symbol, interval, adjusted, chunk, result.bars, tuple(result.errors)))
                report.chunks_done += 1
                report.bars += len(result.bars)
    except PacingEscalation as exc:
        exc.report = report  # what was done before IB kept refusing
        raise
    return report
