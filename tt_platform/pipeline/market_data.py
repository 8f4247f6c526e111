"""Fetch bars from the configured source and write them to tt_prices, a partition at a time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import DataConfig
from tt_platform.data.bars import empty_bars, normalize_bars
from tt_platform.data.calendars import expected_timestamps, resolve_calendar
from tt_platform.data.corporate_actions import select_feed
from tt_platform.data.gaps import fill_missing
from tt_platform.data.synthetic import generate_bars
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.settings import PlatformSettings
from tt_platform.store.corporate_actions import read_corporate_actions
from tt_platform.store.prices import read_bars, replace_partition, write_bars

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSummary:
    symbols: tuple[str, ...]
    rows: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    source: str
    refused: tuple[str, ...] = ()

    def as_metadata(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "symbols": len(self.symbols),
            "first_ts": str(self.first_ts) if self.first_ts is not None else "",
            "last_ts": str(self.last_ts) if self.last_ts is not None else "",
            "source": self.source,
            "refused_symbols": ", ".join(self.refused),
        }


def _read_csv_source(csv_dir: Path, symbol: str) -> pd.DataFrame:
    from tt_platform.data.importers import read_plain_csv

    path = csv_dir / f"{symbol}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no CSV for {symbol} in {csv_dir}")
    return read_plain_csv(path, symbol=symbol)


def fetch_bars(data: DataConfig, symbols: list[str], start: date, end: date) -> pd.DataFrame:
    """Raw bars for ``symbols`` in [start, end] from a file or synthetic source (IB streams
    through ``ingest`` chunk by chunk instead)."""
    if data.source == "synthetic":
        return generate_bars(symbols, start, end, interval=data.interval, seed=data.seed)
    if data.source == "csv":
        frames = [_read_csv_source(Path(data.csv_dir), s) for s in symbols]
        bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        bars = bars[(bars["ts"] >= day_start(start)) & (bars["ts"] <= day_end(end))]
        return normalize_bars(bars, origin=str(data.csv_dir))
    raise ValueError(f"fetch_bars: source {data.source!r} is not a file or synthetic source")


def fill_stored_gaps(engine: Engine, data: DataConfig, symbol: str, start: date, end: date) -> str:
    """Forward-fill a stored slice: a flat bar with volume 0 at each missing session between the
    first and last real bar, never beyond them. Says what was found and done."""
    stored = read_bars(engine, [symbol], day_start(start), day_end(end), interval=data.interval, adjusted=data.adjusted)
    if stored.empty:
        return f"{symbol}: no bars stored in {start}..{end}"
    sessions = expected_timestamps(resolve_calendar(symbol), stored["ts"].min(), stored["ts"].max(), data.interval)
    filled, report = fill_missing(stored, sessions, policy="ffill")
    new_rows = filled[filled["filled"]]
    if len(new_rows):
        write_bars(engine, new_rows.drop(columns="filled"), source=f"{data.source}+ffill", interval=data.interval, adjusted=data.adjusted)
    return report.summary()


def rebuild_adjusted(engine: Engine, data: DataConfig, symbol: str) -> int:
    """Recompute a symbol's whole adjusted series from its stored raw bars and actions.

    Backward adjustment rescales all history before each event, so adjusting one window at a time
    would leave jumps at window edges; rebuilding the whole series keeps one basis throughout.
    """
    raw = read_bars(engine, [symbol], interval=data.interval, adjusted=False)
    if raw.empty:
        return 0
    adjusted = select_feed(raw, read_corporate_actions(engine, [symbol]), adjustment=True)
    return replace_partition(
        engine, adjusted, symbols=symbol, start=raw["ts"].min(), end=raw["ts"].max(),
        source=data.source, interval=data.interval, adjusted=True,
    )


def ingest(
    engine: Engine,
    data: DataConfig,
    symbols: list[str],
    start: date,
    end: date,
    settings: PlatformSettings,
) -> IngestSummary:
    """Fetch and store each symbol's bars for [start, end], replacing that slice transactionally.

    Replacing rather than appending makes a re-run idempotent and a shrunken source leaves no
    stale rows; each symbol's slice commits on its own, so a failure never half-writes one.
    IB serves adjusted bars itself; file and synthetic sources are stored raw, and with
    ``data.adjusted`` the adjusted series is rebuilt from the raw one and the stored actions.
    """
    if data.source == "ib":
        from tt_platform.pipeline.ib_source import ingest_from_ib

        result = ingest_from_ib(
            engine, symbols, start, end, interval=data.interval, adjusted=data.adjusted, settings=settings
        )
        summary = IngestSummary(tuple(symbols), result.rows, result.first_ts, result.last_ts, "ib", result.refused)
    else:
        summary = _ingest_raw_frames(engine, data, symbols, start, end)
        if data.adjusted:
            for symbol in symbols:
                rebuild_adjusted(engine, data, symbol)
    if data.missing_bars == "ffill":
        for symbol in symbols:
            if symbol not in summary.refused:
                log.info("missing bars: %s", fill_stored_gaps(engine, data, symbol, start, end))
    return summary


def _ingest_raw_frames(engine: Engine, data: DataConfig, symbols: list[str], start: date, end: date) -> IngestSummary:
    bars = fetch_bars(data, symbols, start, end)
    rows = 0
    for symbol in symbols:
        rows += replace_partition(
            engine, bars[bars["symbol"] == symbol], symbols=symbol, start=day_start(start), end=day_end(end),
            source=data.source, interval=data.interval, adjusted=False,
        )
    return IngestSummary(
        symbols=tuple(symbols),
        rows=rows,
        first_ts=bars["ts"].min() if len(bars) else None,
        last_ts=bars["ts"].max() if len(bars) else None,
        source=data.source,
    )
