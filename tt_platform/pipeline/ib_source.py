"""Bars from Interactive Brokers (a real gateway, or the bundled emulator) into tt_prices.

``ingest_from_ib`` fetches through ``tt_platform.data.sources.ib.IBBarSource`` (concurrent,
paced requests) and writes each answered slice of days on its own transaction as it arrives, so
a backfill killed half way keeps what it finished and a rerun rewrites the same rows: exactly
the rows of a clean run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.data.sources.base import BarRequest, SymbolBars
from tt_platform.data.sources.ib import IBBarSource, IBSourceConfig, day_window
from tt_platform.settings import PlatformSettings
from tt_platform.store.prices import replace_partition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IBIngestResult:
    rows: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    refused: tuple[str, ...]  # symbols IB refused or could not answer in full (see the log)
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
    config: IBSourceConfig | None = None,
) -> IBIngestResult:
    """Fetch [start, end] of ``symbols`` from IB (``config``, else the settings' IB_HOST/IB_PORT/
    IB_CLIENT_ID) and replace each answered slice of days in tt_prices."""
    rows = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    refused: set[str] = set()

    def store(answer: SymbolBars) -> None:
        nonlocal rows, first, last
        if answer.refused:
            refused.add(answer.symbol)
            log.warning("IB could not resolve %s: %s", answer.symbol, answer.refused)
            return
        lo, hi = day_window(answer.start, answer.end)
        rows += replace_partition(
            engine, answer.bars, symbols=answer.symbol, start=lo, end=hi,
            source="ib", interval=interval, adjusted=adjusted,
        )
        if len(answer.bars):
            ts = answer.bars["ts"]
            first = min(first, ts.min()) if first is not None else ts.min()
            last = max(last, ts.max()) if last is not None else ts.max()

    config = config or IBSourceConfig.from_settings(settings)
    with IBBarSource(config) as source:
        report = source.fetch(
            [BarRequest(s, start, end) for s in symbols], interval=interval, adjusted=adjusted, on_bars=store
        )
    for symbol, reason in sorted(report.failed.items()):
        log.warning("IB did not answer all of %s: %s", symbol, reason)
    return IBIngestResult(
        rows,
        first,
        last,
        tuple(sorted(refused | set(report.failed))),
        report.requests,
        report.pacing_violations,
        report.reconnects,
    )
