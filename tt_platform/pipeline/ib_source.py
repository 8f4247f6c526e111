"""Bars from Interactive Brokers (a real gateway, or the bundled emulator) into tt_prices.

Each answered chunk is written on its own transaction as it arrives, so a backfill killed half
way keeps what it finished and a rerun rewrites the same rows: exactly the rows of a clean run.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Iterator

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.ib.backfill import CompletedChunk, backfill
from tt_platform.ib.client import IBMarketData
from tt_platform.settings import PlatformSettings
from tt_platform.store.prices import replace_partition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IBIngestResult:
    rows: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    refused: tuple[str, ...]
    requests: int
    pacing_violations: int
    reconnects: int


def ingest_from_ib(
    engine: Engine,
    symbols: list[str],
    start: date,
    end: date,
    *,
    interval: str,
    adjusted: bool,
    settings: PlatformSettings,
) -> IBIngestResult:
    rows = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    def store_chunk(done: CompletedChunk) -> None:
        nonlocal rows, first, last
        chunk_end = done.chunk.end - pd.Timedelta(microseconds=1)
        rows += replace_partition(
            engine, done.bars, symbols=done.symbol, start=done.chunk.start, end=chunk_end,
            source="ib", interval=interval, adjusted=adjusted,
        )
        if len(done.bars):
            first = min(first, done.bars["ts"].min()) if first is not None else done.bars["ts"].min()
            last = max(last, done.bars["ts"].max()) if last is not None else done.bars["ts"].max()

    client = IBMarketData.from_settings(settings)
    try:
        report = backfill(
            client, symbols, pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1),
            interval, on_chunk=store_chunk, adjusted=adjusted,
        )
    finally:
        client.disconnect()
    refused = sorted(set(report.unresolved) | {symbol for symbol, _, _ in report.refused})
    for symbol, reason in report.unresolved.items():
        log.warning("IB could not resolve %s: %s", symbol, reason)
    return IBIngestResult(rows, first, last, tuple(refused), report.requests, report.pacing_violations, report.reconnects)


@contextmanager
def local_gateway(symbols: list[str], seed: int, settings: PlatformSettings) -> Iterator[PlatformSettings]:
    """Serve synthetic bars through the bundled IB Gateway emulator on a free loopback port,
    and yield settings pointing at it: the real ib_insync path with no gateway installed."""
    from tt_platform.ib.emulator.server import GatewayEmulator, serve_in_thread
    from tt_platform.ib.emulator.sources import SyntheticBarSource

    emulator = GatewayEmulator(SyntheticBarSource(symbols, seed=seed), host="127.0.0.1", port=0)
    with serve_in_thread(emulator) as gateway:
        log.info("IB Gateway emulator serving %d symbols on 127.0.0.1:%d", len(symbols), gateway.port)
        yield settings.model_copy(update={"ib_host": "127.0.0.1", "ib_port": gateway.port})
