"""Backfill driver: fetch the request chunks of many symbols concurrently and hand each over.

The driver qualifies the symbols, plans each job's chunks and then runs every chunk as its own
task: the client's pacer keeps at most ``max_open_requests`` of them open at IB (50 at most) and
paces small bars, so a nightly update of hundreds of symbols takes seconds, not an hour. It
survives socket drops and gateway restarts (one reconnect per loss, however many requests were
in flight; then every interrupted chunk is asked again, never one already delivered) and reports
what IB refused. It stores nothing: ``on_chunk`` receives each completed chunk (on the event
loop's thread, one at a time) and the caller writes it wherever it belongs. A
``PacingEscalation`` or running out of reconnects ends the backfill; the exception carries the
report of what was done (``exc.report``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pandas as pd

from tt_platform.ib.chunking import Chunk, ChunkUnit
from tt_platform.ib.errors import IBConnectionLost, IBError
from tt_platform.ib.models import TIMEOUT_CODE, HistoricalResult, ResolvedContract, Unresolved
from tt_platform.ib.pacing import PacingEscalation

log = logging.getLogger(__name__)
T = TypeVar("T")


class HistoricalClient(Protocol):
    """What the driver needs from a client (``IBMarketData`` implements it)."""

    def is_connected(self) -> bool: ...

    async def connect_async(self) -> Any: ...

    def disconnect(self) -> None: ...

    def run(self, coro: Any) -> Any: ...

    async def qualify_async(self, symbols: Iterable[str]) -> dict[str, ResolvedContract | Unresolved]: ...

    async def plan_async(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str,
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> list[Chunk]: ...

    async def historical_chunk_async(
        self, symbol: str, chunk: Chunk, interval: str, adjusted: bool = False
    ) -> HistoricalResult: ...


@dataclass(frozen=True)
class BackfillJob:
    """Bars of ``symbol`` in ``[start, end)``; ``tag`` is the caller's (e.g. its request)."""

    symbol: str
    start: Any
    end: Any
    tag: Any = None


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
    job: BackfillJob | None = None


@dataclass
class BackfillReport:
    chunks_done: int = 0
    chunks_skipped: int = 0
    bars: int = 0
    requests: int = 0
    pacing_violations: int = 0
    reconnects: int = 0
    unresolved: dict[str, str] = field(default_factory=dict)
    unresolved_timeouts: set[str] = field(default_factory=set)  # unresolved only for lack of an answer
    refused: list[tuple[str, Chunk, list[IBError]]] = field(default_factory=list)
    no_data: list[tuple[str, Chunk]] = field(default_factory=list)
    # the chunks of every job, once planned (what "complete" is measured against)
    planned: dict[BackfillJob, list[Chunk]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every requested chunk of every resolved symbol was answered."""
        return not self.refused


class _Connection:
    """One (re)connect at a time for all tasks; counts each loss once, however many saw it."""

    def __init__(self, client: HistoricalClient, report: BackfillReport, max_reconnects: int) -> None:
        self.client, self.report, self.max_reconnects = client, report, max_reconnects
        # how many connections were made (an already open one counts: its loss is a reconnect)
        self.generation = 1 if client.is_connected() else 0
        self._lock = asyncio.Lock()

    async def ensure(self) -> int:
        async with self._lock:
            if not self.client.is_connected():
                if self.generation > 0:  # it was up before: a loss (socket drop, gateway restart)
                    self._count("the connection was closed")
                await self.client.connect_async()  # retries with back-off, raises when IB stays away
                self.generation += 1
            return self.generation

    def lost(self, generation: int, reason: object) -> None:
        """A call on connection ``generation`` failed with a connection loss."""
        log.warning("IB connection lost (%s)", reason)
        if generation == self.generation and self.client.is_connected():
            self.client.disconnect()  # half-open: make the next ensure() reconnect

    def _count(self, reason: object) -> None:
        if self.report.reconnects >= self.max_reconnects:
            raise IBConnectionLost(f"backfill gave up after {self.report.reconnects} reconnects: {reason}")
        self.report.reconnects += 1
        log.warning("reconnecting to IB (%d/%d)", self.report.reconnects, self.max_reconnects)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one client call, (re)connecting first; asked again after a connection loss."""
        while True:
            generation = await self.ensure()
            try:
                return await fn()
            except IBConnectionLost as exc:
                self.lost(generation, exc)


async def _run_all(coros: Sequence[Awaitable[Any]]) -> list[Any]:
    """Run concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if failed:
            raise failed[0].exception()
        return [t.result() for t in tasks]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def backfill_async(
    client: HistoricalClient,
    jobs: Iterable[BackfillJob],
    interval: str,
    on_chunk: Callable[[CompletedChunk], None],
    *,
    adjusted: bool = False,
    is_done: Callable[[str, Chunk], bool] | None = None,
    max_reconnects: int = 10,
    chunk_unit: ChunkUnit | None = None,
    report: BackfillReport | None = None,
) -> BackfillReport:
    """Fetch every job's chunks concurrently; ``on_chunk`` gets each completed chunk exactly once.

    ``is_done`` lets a caller skip chunks it already holds (resuming an earlier run). Connection
    losses are survived up to ``max_reconnects`` times in all. Pass ``report`` to keep what was
    done when the backfill raises.
    """
    jobs = [BackfillJob(j.symbol.strip().upper(), j.start, j.end, j.tag) for j in jobs]
    report = report if report is not None else BackfillReport()
    connection = _Connection(client, report, max_reconnects)
    symbols = list(dict.fromkeys(j.symbol for j in jobs))

    async def plan(job: BackfillJob) -> list[Chunk]:
        chunks = await connection.call(
            lambda: client.plan_async(job.symbol, job.start, job.end, interval, adjusted, chunk_unit)
        )
        report.planned[job] = chunks
        return chunks

    async def fetch(job: BackfillJob, chunk: Chunk) -> None:
        result = await connection.call(lambda: client.historical_chunk_async(job.symbol, chunk, interval, adjusted))
        report.requests += result.requests
        report.pacing_violations += result.pacing_violations
        if result.refused:
            report.refused.append((job.symbol, chunk, list(result.errors)))
            log.warning("backfill: %s %s refused: %s", job.symbol, chunk, "; ".join(map(str, result.errors)))
            return
        if result.bars.empty:
            report.no_data.append((job.symbol, chunk))
        on_chunk(CompletedChunk(job.symbol, interval, adjusted, chunk, result.bars, tuple(result.errors), job))
        report.chunks_done += 1
        report.bars += len(result.bars)

    try:
        resolutions = await connection.call(lambda: client.qualify_async(symbols)) if symbols else {}
        for symbol in symbols:
            resolution = resolutions[symbol]
            if isinstance(resolution, Unresolved):
                report.unresolved[symbol] = resolution.reason
                if resolution.code == TIMEOUT_CODE:
                    report.unresolved_timeouts.add(symbol)
                log.warning("backfill: %s unresolved: %s", symbol, resolution.reason)
        live = [j for j in jobs if j.symbol not in report.unresolved]
        plans = await _run_all([plan(j) for j in live])
        work = []
        for job, chunks in zip(live, plans):
            for chunk in chunks:
                if is_done is not None and is_done(job.symbol, chunk):
                    report.chunks_skipped += 1
                else:
                    work.append(fetch(job, chunk))
        await _run_all(work)
    except (PacingEscalation, IBConnectionLost) as exc:
        exc.report = report  # what was done before IB kept refusing or stayed away
        raise
    return report


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
    """Fetch ``[start, end)`` of ``interval`` bars for ``symbols`` (synchronous form).

    Chunks of all symbols run concurrently under the client's pacer; ``on_chunk`` gets each
    completed chunk exactly once (in no fixed order across chunks). See ``backfill_async``.
    """
    if on_chunk is None:
        raise ValueError("backfill needs on_chunk: the driver stores nothing itself")
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols))
    jobs = [BackfillJob(s, start, end) for s in wanted]
    return client.run(
        backfill_async(
            client,
            jobs,
            interval,
            on_chunk,
            adjusted=adjusted,
            is_done=is_done,
            max_reconnects=max_reconnects,
            chunk_unit=chunk_unit,
        )
    )
