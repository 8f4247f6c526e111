"""The emulator's market clock: a replay cursor over the bar source (no look-ahead).

Bars with ``ts < cursor`` are history; every ``step_seconds`` of the emulator clock the cursor
moves to just past the next bar of the symbols clients are watching, and those bars are
"released" to the live streams (real-time bars, keepUpToDate, ticks) and to resting orders.
Without a replay start there is no cursor: "now" is the wall clock at start-up moved on by the
emulator's clock (a scaled clock runs the market faster), history is every bar closed by then and
prices are the last closed bars of the source (minute bars when it has them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from tt_platform.data.bars import empty_bars
from tt_platform.ib.clock import Clock, SystemClock
from tt_platform.ib.emulator.market_hours import closed_bar_bound
from tt_platform.ib.emulator.sources import BarSource
from tt_platform.ib.limits import interval_spec

_BLOCK = {"1d": pd.Timedelta(days=366), "1h": pd.Timedelta(days=31), "1min": pd.Timedelta(days=4)}
_MAX_GAP = {"1d": pd.Timedelta(days=30), "1h": pd.Timedelta(days=30), "1min": pd.Timedelta(days=10)}
_LOOKBACK = {"1d": pd.Timedelta(days=40), "1h": pd.Timedelta(days=10), "1min": pd.Timedelta(days=5)}
_FAR_PAST = pd.Timestamp("1900-01-01", tz="UTC")
_FAR_FUTURE = pd.Timestamp("2200-01-01", tz="UTC")


@dataclass(frozen=True)
class ReplayConfig:
    start: pd.Timestamp | None = None  # data time at which live streams begin; None: no replay
    interval: str = "1d"  # bars the live streams replay
    step_seconds: float = 5.0  # emulator-clock seconds per released bar (IB's real-time bar size)

    def __post_init__(self) -> None:
        interval_spec(self.interval)
        if self.step_seconds <= 0:
            raise ValueError(f"ReplayConfig.step_seconds must be > 0, got {self.step_seconds}")
        if self.start is not None:
            start = pd.Timestamp(self.start)
            object.__setattr__(
                self, "start", start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
            )


class _Feed:
    """Bars of one symbol at the replay interval, loaded forward in blocks."""

    def __init__(self, source: BarSource, symbol: str, interval: str, start: pd.Timestamp) -> None:
        self.source, self.symbol, self.interval = source, symbol, interval
        self.loaded_until = start
        self.bars = empty_bars()

    def _load_until(self, horizon: pd.Timestamp) -> None:
        while self.loaded_until < horizon:
            block_end = self.loaded_until + _BLOCK[self.interval]
            more = self.source.bars(self.symbol, self.loaded_until, block_end, self.interval)
            if not more.empty:
                self.bars = pd.concat([self.bars, more], ignore_index=True) if not self.bars.empty else more
            self.loaded_until = block_end

    def next_ts(self, cursor: pd.Timestamp) -> pd.Timestamp | None:
        self._load_until(cursor + _MAX_GAP[self.interval])
        ts = self.bars["ts"]
        i = ts.searchsorted(cursor, side="left")
        return ts.iloc[i] if i < len(ts) else None

    def between(self, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
        self._load_until(hi)
        ts = self.bars["ts"]
        return self.bars.iloc[ts.searchsorted(lo, side="left") : ts.searchsorted(hi, side="left")]

    def drop_before(self, cursor: pd.Timestamp) -> None:
        # released bars are not needed again; keeps long replays small
        keep = self.bars["ts"] >= cursor
        if not keep.all():
            self.bars = self.bars.loc[keep].reset_index(drop=True)


class MarketReplay:
    def __init__(self, source: BarSource, config: ReplayConfig | None = None, clock: Clock | None = None) -> None:
        self.source = source
        self.clock = clock or SystemClock()
        self._wall_anchor = pd.Timestamp.now(tz="UTC")
        self._clock_anchor = self.clock.now()
        self.config = config or ReplayConfig()
        self.step = interval_spec(self.config.interval).step
        self.cursor: pd.Timestamp | None = self.config.start
        self._feeds: dict[str, _Feed] = {}
        self._last: dict[str, pd.Series] = {}

    @property
    def active(self) -> bool:
        return self.cursor is not None

    def now(self) -> pd.Timestamp:
        if self.cursor is not None:
            return self.cursor
        return self._wall_anchor + pd.Timedelta(seconds=self.clock.now() - self._clock_anchor)

    def history_end(self) -> pd.Timestamp | None:
        """The cursor (bars at or after it are not released yet), or None without replay.
        What a history request may see is narrower still: closed bars only (``market_hours``)."""
        return self.cursor

    def _feed(self, symbol: str) -> _Feed:
        if symbol not in self._feeds:
            self._feeds[symbol] = _Feed(self.source, symbol, self.config.interval, self.cursor)
        return self._feeds[symbol]

    def last_bar(self, symbol: str) -> pd.Series | None:
        """The latest closed bar a client may know of (the current 'market' for prices and fills)."""
        if symbol in self._last:
            return self._last[symbol]
        now = self.now()
        if self.cursor is None:
            for interval, lookback in (("1min", pd.Timedelta(days=5)), ("1d", None)):
                hi = closed_bar_bound(now, int(interval_spec(interval).step.total_seconds()))
                bars = self.source.bars(symbol, _FAR_PAST if lookback is None else hi - lookback, hi, interval)
                if not bars.empty:
                    return bars.iloc[-1]
            return None
        hi = min(self.cursor, closed_bar_bound(now, int(self.step.total_seconds())))
        lookback = _LOOKBACK[self.config.interval]
        bars = self.source.bars(symbol, hi - lookback, hi, self.config.interval)
        if bars.empty:
            bars = self.source.bars(symbol, _FAR_PAST, hi, self.config.interval)
        return None if bars.empty else bars.iloc[-1]

    def advance(self, interest: Iterable[str]) -> dict[str, pd.DataFrame]:
        """Move to just past the next bar of the watched symbols; return the released bars."""
        if self.cursor is None:
            return {}
        symbols = sorted(set(interest))
        nexts = [t for t in (self._feed(s).next_ts(self.cursor) for s in symbols) if t is not None]
        new_cursor = (min(nexts) if nexts else self.cursor) + self.step
        released = {}
        for symbol in symbols:
            feed = self._feed(symbol)
            bars = feed.between(self.cursor, new_cursor)
            if not bars.empty:
                released[symbol] = bars.reset_index(drop=True)
                self._last[symbol] = bars.iloc[-1]
            feed.drop_before(new_cursor)
        self.cursor = new_cursor
        return released
