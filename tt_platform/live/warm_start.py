"""History before the first live decision: the stored bars, topped up from IB for what the store
does not have yet (the bars since the last nightly backfill)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, empty_bars, normalize_bars
from tt_platform.pipeline.features import CALENDAR_DAYS_PER_BAR

log = logging.getLogger(__name__)

# IB history for one symbol: (symbol, start, end, interval) -> canonical bars
HistoryFetch = Callable[[str, pd.Timestamp, pd.Timestamp, str], Awaitable[pd.DataFrame]]


def lookback_start(now: pd.Timestamp, bars: int, interval: str) -> pd.Timestamp:
    """Far enough back that ``bars`` bars of ``interval`` fit, weekends and holidays included."""
    days = int(bars * CALENDAR_DAYS_PER_BAR.get(interval, 1.6) * 1.5) + 5
    return now - pd.Timedelta(days=days)


async def warm_start_bars(*, symbols: Sequence[str], interval: str, adjusted: bool, bars: int, now: pd.Timestamp,
                          read_stored: Callable[[list[str], pd.Timestamp, pd.Timestamp], pd.DataFrame] | None,
                          fetch: HistoryFetch | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The last ``bars`` bars per symbol closed before ``now``: stored bars first, then IB's for
    the span after each symbol's last stored bar. Returns the bars and how many of them came from
    IB, per symbol IB answered for. A symbol IB cannot serve keeps its stored bars (logged)."""
    start = lookback_start(now, bars, interval)
    stored = read_stored(list(symbols), start, now) if read_stored is not None else empty_bars()
    stored = stored[BAR_COLUMNS] if not stored.empty else empty_bars()
    frames = [stored] if not stored.empty else []
    # symbol -> IB's bars are those after this stamp (None: all of the symbol's bars)
    ib_after: dict[str, pd.Timestamp | None] = {}
    if fetch is not None:
        for symbol in symbols:
            held = stored.loc[stored["symbol"] == symbol, "ts"]
            since = held.max() if len(held) else start
            try:
                fetched = await fetch(symbol, pd.Timestamp(since), now, interval)
            except Exception as exc:  # noqa: BLE001 - history from IB tops up, the store is the base
                log.warning("warm start: IB history for %s failed (%s); using stored bars only", symbol, exc)
                continue
            ib_after[symbol] = pd.Timestamp(since) if len(held) else None
            if fetched is not None and not fetched.empty:
                fetched = fetched[(fetched["ts"] < now) & (fetched["ts"] > since if len(held) else True)]
                frames.append(fetched[BAR_COLUMNS])
    if not frames:
        return empty_bars(), dict.fromkeys(ib_after, 0)
    merged = pd.concat(frames, ignore_index=True).drop_duplicates(["symbol", "ts"], keep="last")
    merged = normalize_bars(merged, origin="warm start")
    # only bars closed by now (an intraday bar is stamped with its start)
    step = pd.Timedelta(0) if interval == "1d" else pd.Timedelta(interval)
    merged = merged[merged["ts"] + step <= now] if step else merged[merged["ts"] < now]
    stamps = merged["ts"].drop_duplicates().sort_values()
    if len(stamps) > bars:
        merged = merged[merged["ts"] >= stamps.iloc[-bars]]
    merged = merged.reset_index(drop=True)
    # counted on what is returned: bars IB sent that were not closed yet, or too old, are not
    from_ib = {}
    for symbol, after in ib_after.items():
        mine = merged.loc[merged["symbol"] == symbol, "ts"]
        from_ib[symbol] = int(len(mine) if after is None else (mine > after).sum())
    return merged, from_ib
