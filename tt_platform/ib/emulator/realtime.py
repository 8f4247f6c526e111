"""Five-second real-time bars derived from one-minute bars (pure).

The sources hold no ticks, so each minute is split into twelve 5-second bars along a path that
is consistent with the minute's OHLC: open -> low -> high -> close for a rising minute, open ->
high -> low -> close for a falling one (the extremes reached 20 s and 40 s into the minute),
straight lines in between, prices on the tick grid. The minute's volume is split evenly across
the twelve bars, so they add up to the minute exactly. A bar's time is its start, as IB sends it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tt_platform.ib.emulator.messages import BarRow
from tt_platform.ib.emulator.wire import round_to_tick

BAR_SECONDS = 5
PER_MINUTE = 60 // BAR_SECONDS
REALTIME_BAR = pd.Timedelta(seconds=BAR_SECONDS)
_ANCHOR_TIMES = np.array([0.0, 20.0, 40.0, 60.0])


@dataclass(frozen=True)
class RealTimeBar:
    start: pd.Timestamp
    row: BarRow

    @property
    def epoch_seconds(self) -> int:
        return int(self.start.timestamp())


def _path(open_: float, high: float, low: float, close: float) -> np.ndarray:
    """Prices at the 13 boundaries of the minute's 5-second bars."""
    first, second = (low, high) if close >= open_ else (high, low)
    times = np.arange(PER_MINUTE + 1) * BAR_SECONDS
    return np.interp(times, _ANCHOR_TIMES, [open_, first, second, close])


def _volumes(volume: float) -> list[float]:
    base = math.floor(max(volume, 0.0) / PER_MINUTE)
    parts = [float(base)] * PER_MINUTE
    rest = max(volume, 0.0) - base * PER_MINUTE
    for i in range(int(rest)):
        parts[i] += 1.0
    parts[-1] += rest - int(rest)  # a fractional remainder, if the source has one
    return parts


def split_minute(ts: pd.Timestamp, open_: float, high: float, low: float, close: float, volume: float,
                 tick: float) -> list[RealTimeBar]:
    """The twelve 5-second bars of one minute bar."""
    top, bottom = round_to_tick(high, tick), round_to_tick(low, tick)
    points = [min(top, max(bottom, round_to_tick(p, tick))) for p in _path(open_, high, low, close)]
    bars = []
    for k, volume_k in enumerate(_volumes(volume)):
        o, c = points[k], points[k + 1]
        h, lo = max(o, c), min(o, c)
        wap = round_to_tick((h + lo + c) / 3, tick / 100)
        count = 0 if volume_k <= 0 else max(1, int(volume_k // 100))
        bars.append(RealTimeBar(ts + k * REALTIME_BAR, BarRow("", o, h, lo, c, round(volume_k, 4), wap, count)))
    return bars


def realtime_bars(minutes: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp, tick: float) -> list[RealTimeBar]:
    """The 5-second bars starting in ``[lo, hi)`` derived from ``minutes`` (canonical 1-min bars)."""
    out: list[RealTimeBar] = []
    for bar in minutes.itertuples(index=False):
        if bar.ts + pd.Timedelta(minutes=1) <= lo or bar.ts >= hi:
            continue
        for five in split_minute(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, tick):
            if lo <= five.start < hi:
                out.append(five)
    return out


def bar_start(now: pd.Timestamp) -> pd.Timestamp:
    """Start of the 5-second bar that contains ``now``."""
    return now.floor(f"{BAR_SECONDS}s")
