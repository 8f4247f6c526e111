"""Trade ticks -> OHLCV bars, streaming (live loop) and vectorised (history), with identical output.

A tick belongs to the bar whose interval contains it, with intervals aligned to wall-clock time in
``tz`` (a 1h bar starts on the local hour, a 1d bar covers the local calendar date). Intraday bars
are stamped with the UTC instant of their start; daily bars with 00:00 UTC of the local date
(the canonical daily stamp of ``tt_platform.data.bars``). Intervals without a tick produce no bar.
Within a bar, open/close are the first/last tick in arrival order (same-timestamp prints keep
their order), high/low the extremes, volume the sum of sizes.

Both paths compute the bucket of every tick with the same integer arithmetic and the same UTC
offset table (one offset per 15-minute block; zone transitions fall on such boundaries), so
``aggregate_ticks`` over a tick array equals pushing the ticks one by one and flushing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

NS_PER_DAY = 86_400 * 10**9
OFFSET_BLOCK_NS = 15 * 60 * 10**9
OUTPUT_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


class TickError(ValueError):
    """A tick that cannot be aggregated (bad value, or earlier than a completed bar)."""


@dataclass(frozen=True)
class Bar:
    ts: pd.Timestamp  # bar start (intraday) or session date 00:00 (daily), UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str | None = None

    def as_dict(self) -> dict[str, object]:
        row: dict[str, object] = {} if self.symbol is None else {"symbol": self.symbol}
        row.update(ts=self.ts, open=self.open, high=self.high, low=self.low, close=self.close, volume=self.volume)
        return row


def parse_interval(interval: str | pd.Timedelta) -> int:
    """Interval in ns; intraday intervals must divide a day, and "1d" is the only longer one."""
    try:
        step = pd.Timedelta(interval)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"interval {interval!r} is not a duration such as '1min', '5min', '1h', '1d'") from exc
    ns = int(step.value)
    if ns <= 0 or ns > NS_PER_DAY or NS_PER_DAY % ns:
        raise ValueError(f"interval {interval!r} must be positive and divide one day (or be '1d')")
    return ns


def utc_offsets_ns(ts_ns: np.ndarray, tz: str) -> np.ndarray | int:
    """UTC offset (ns) of ``tz`` at each instant, looked up once per 15-minute block.

    Returns a plain int when the offset is the same over the whole span (no zone transition),
    which is the common case and saves a pass over the ticks.
    """
    if len(ts_ns) == 0:
        return 0
    first, last = int(ts_ns.min()) // OFFSET_BLOCK_NS, int(ts_ns.max()) // OFFSET_BLOCK_NS
    if last - first < 5_000_000:
        table = _block_offsets(np.arange(first, last + 1, dtype=np.int64), tz)
        if (table == table[0]).all():
            return int(table[0])
        return table[ts_ns // OFFSET_BLOCK_NS - first]
    blocks, inverse = np.unique(ts_ns // OFFSET_BLOCK_NS, return_inverse=True)
    return _block_offsets(blocks, tz)[inverse]


def _block_offsets(blocks: np.ndarray, tz: str) -> np.ndarray:
    starts = blocks * OFFSET_BLOCK_NS
    wall = pd.DatetimeIndex(starts.view("datetime64[ns]"), tz="UTC").tz_convert(tz).tz_localize(None)
    return wall.asi8 - starts


def bucket_keys(ts_ns: np.ndarray, interval_ns: int, tz: str) -> np.ndarray:
    """Bar stamp (ns, UTC) for every tick."""
    wall = ts_ns + utc_offsets_ns(ts_ns, tz)
    if interval_ns == NS_PER_DAY:
        return wall - wall % NS_PER_DAY
    return ts_ns - wall % interval_ns


def _validate_ticks(ts_ns: np.ndarray, price: np.ndarray, size: np.ndarray) -> None:
    if not (len(ts_ns) == len(price) == len(size)):
        raise TickError(f"ts, price and size differ in length: {len(ts_ns)}, {len(price)}, {len(size)}")
    bad_price = ~np.isfinite(price) | (price <= 0)
    if bad_price.any():
        i = int(np.flatnonzero(bad_price)[0])
        raise TickError(f"tick {i}: price {float(price[i])!r} is not a positive finite number")
    bad_size = ~np.isfinite(size) | (size < 0)
    if bad_size.any():
        i = int(np.flatnonzero(bad_size)[0])
        raise TickError(f"tick {i}: size {float(size[i])!r} is not a non-negative finite number")


def aggregate_ticks(
    ts_ns: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    interval: str = "1min",
    *,
    tz: str = "America/New_York",
    symbol: str | None = None,
) -> pd.DataFrame:
    """Vectorised aggregation of time-ordered ticks (``ts_ns``: int64 ns since the epoch, UTC).

    Returns ``ts, open, high, low, close, volume`` (and ``symbol`` first when given), one row per
    interval with at least one tick.
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    price = np.asarray(price, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64)
    _validate_ticks(ts_ns, price, size)
    interval_ns = parse_interval(interval)
    if len(ts_ns) == 0:
        return _frame(np.zeros(0, np.int64), *(np.zeros(0) for _ in range(5)), symbol=symbol)
    keys = bucket_keys(ts_ns, interval_ns, tz)
    steps = np.diff(keys)
    if (steps < 0).any():
        i = int(np.flatnonzero(steps < 0)[0]) + 1
        raise TickError(
            f"tick {i} at {pd.Timestamp(int(ts_ns[i]), tz='UTC')} is earlier than the bar of tick {i - 1}; "
            "ticks must be in time order"
        )
    starts = np.concatenate(([0], np.flatnonzero(steps) + 1))
    ends = np.concatenate((starts[1:], [len(keys)]))
    return _frame(
        keys[starts],
        price[starts],
        np.maximum.reduceat(price, starts),
        np.minimum.reduceat(price, starts),
        price[ends - 1],
        np.add.reduceat(size, starts),
        symbol=symbol,
    )


def _frame(
    keys: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    symbol: str | None,
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(keys.view("datetime64[ns]"), tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
    if symbol is not None:
        frame.insert(0, "symbol", symbol)
    return frame


def bars_to_frame(bars: list[Bar]) -> pd.DataFrame:
    """Completed streaming bars as the same frame ``aggregate_ticks`` returns."""
    symbol = bars[0].symbol if bars else None
    keys = np.array([b.ts.value for b in bars], dtype=np.int64)
    columns = [np.array([getattr(b, c) for b in bars], dtype=np.float64) for c in OUTPUT_COLUMNS[1:]]
    return _frame(keys, *columns, symbol=symbol)


class TickBarAggregator:
    """Streaming aggregation for the live loop: ``push`` each tick, get bars as they complete.

    A bar completes when the first tick of a later interval arrives (or on ``flush``). A tick for
    an interval that already completed is late: ``late="raise"`` raises ``TickError``,
    ``late="drop"`` ignores it and counts it in ``late_ticks``.
    """

    def __init__(
        self,
        interval: str = "1min",
        tz: str = "America/New_York",
        *,
        symbol: str | None = None,
        late: Literal["raise", "drop"] = "raise",
    ) -> None:
        if late not in ("raise", "drop"):
            raise ValueError(f"late must be 'raise' or 'drop', got {late!r}")
        self.interval_ns = parse_interval(interval)
        self.tz = tz
        self.symbol = symbol
        self.late = late
        self.late_ticks = 0
        self._offset_block: int | None = None
        self._offset_ns = 0
        self._key: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0.0

    def push(self, ts: int | pd.Timestamp | dt.datetime, price: float, size: float) -> list[Bar]:
        ts_ns = _to_ns(ts)
        price = float(price)
        size = float(size)
        if not (price > 0 and np.isfinite(price)):
            raise TickError(f"tick at {pd.Timestamp(ts_ns, tz='UTC')}: price {price!r} is not a positive finite number")
        if not (size >= 0 and np.isfinite(size)):
            raise TickError(f"tick at {pd.Timestamp(ts_ns, tz='UTC')}: size {size!r} is not a non-negative finite number")
        key = self._bucket(ts_ns)
        if self._key is None:
            self._start(key, price, size)
            return []
        if key == self._key:
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += size
            return []
        if key < self._key:
            if self.late == "drop":
                self.late_ticks += 1
                return []
            raise TickError(
                f"tick at {pd.Timestamp(ts_ns, tz='UTC')} belongs to the bar of "
                f"{pd.Timestamp(key, tz='UTC')}, earlier than the open bar {pd.Timestamp(self._key, tz='UTC')}"
            )
        completed = self._current_bar()
        self._start(key, price, size)
        return [completed]

    def flush(self) -> list[Bar]:
        """Complete and return the open bar (if any), e.g. at the end of a session."""
        if self._key is None:
            return []
        bar = self._current_bar()
        self._key = None
        return [bar]

    @property
    def open_bar(self) -> Bar | None:
        """The bar being built (not yet complete)."""
        return None if self._key is None else self._current_bar()

    def _bucket(self, ts_ns: int) -> int:
        block = ts_ns // OFFSET_BLOCK_NS
        if block != self._offset_block:
            self._offset_ns = int(_block_offsets(np.array([block], dtype=np.int64), self.tz)[0])
            self._offset_block = block
        wall = ts_ns + self._offset_ns
        if self.interval_ns == NS_PER_DAY:
            return wall - wall % NS_PER_DAY
        return ts_ns - wall % self.interval_ns

    def _start(self, key: int, price: float, size: float) -> None:
        self._key = key
        self._open = self._high = self._low = self._close = price
        self._volume = size

    def _current_bar(self) -> Bar:
        assert self._key is not None
        return Bar(
            ts=pd.Timestamp(self._key, tz="UTC"),
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            symbol=self.symbol,
        )


def _to_ns(ts: int | pd.Timestamp | dt.datetime | np.datetime64) -> int:
    if isinstance(ts, (int, np.integer)):
        return int(ts)
    stamp = pd.Timestamp(ts)
    if stamp.tz is None:
        raise TickError(f"tick timestamp {ts!r} has no time zone; pass UTC ns or a tz-aware timestamp")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)
