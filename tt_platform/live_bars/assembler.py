"""Real-time 5-second bars -> completed interval bars per symbol, and one "bar set" per interval.

Bars are built by ``tt_platform.data.aggregation`` itself, so live bars carry the same stamps and
values as history: each sub-bar is pushed into a ``TickBarAggregator`` as four prints at its
start (open, high, low, close, the volume on the close), and the bucket of a sub-bar is computed
with ``bucket_keys``. Aggregating sub-bars this way equals aggregating the underlying ticks.

Only sub-bars inside a regular session of the exchange calendar are used (the rest are counted
in ``outside_session`` and ignored). A symbol's bar completes as soon as it is known to be
whole: when a sub-bar reaches the bucket's end, when a sub-bar of a later bucket arrives, or when
``flush_due(now)`` sees the clock past the end plus ``settle`` (the time the last 5-second bar
needs to arrive). A bucket ends at ``start + interval`` or at the session close if that comes
first; a daily bucket ends at the session close, early closes included.

A ``BarSet`` is emitted per bucket once every symbol's bar for it is complete or the symbol has
moved past it, or, by ``flush_due``, when the clock passes the bucket's end plus ``grace``;
symbols with no bar are listed as missing. Buckets in which no symbol has a bar emit no set.

Sub-bar order, per symbol: an exact repeat of the last sub-bar is ignored (counted in
``duplicate_sub_bars``; feeds resend on reconnect). A sub-bar that starts at or before the last
one with other values, or that belongs to a bucket already completed, is late: ``late="raise"``
raises ``SubBarOrderError``, ``late="drop"`` ignores it and counts it in ``late_sub_bars``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from tt_platform.data.aggregation import NS_PER_DAY, Bar, TickBarAggregator, bucket_keys, parse_interval
from tt_platform.data.calendars import DEFAULT_CALENDAR, get_exchange_calendar

SUB_BAR = pd.Timedelta(seconds=5)
MINUTE_NS = 60 * 10**9


class SubBarOrderError(ValueError):
    """A sub-bar that arrives after a later one, or after its bucket completed."""


@dataclass(frozen=True)
class BarSet:
    """Every symbol's bar for one bucket: the unit the decision step consumes."""

    ts: pd.Timestamp  # bucket stamp, as on the bars
    end: pd.Timestamp  # when the bucket ended (UTC): start + interval, or the session close
    bars: Mapping[str, Bar]
    missing: tuple[str, ...]
    timed_out: bool  # emitted because end + grace passed, not because every symbol reported


@dataclass(frozen=True)
class AssemblerUpdate:
    bars: tuple[Bar, ...] = ()
    bar_sets: tuple[BarSet, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.bars or self.bar_sets)


@dataclass
class _OpenBucket:
    key: int
    end_ns: int


@dataclass
class _PendingSet:
    end_ns: int
    bars: dict[str, Bar] = field(default_factory=dict)


class IntervalBarAssembler:
    """Streams 5-second sub-bars of ``symbols`` into ``interval`` bars gated by ``calendar``."""

    def __init__(
        self,
        symbols: Iterable[str],
        interval: str = "1min",
        calendar: str = DEFAULT_CALENDAR,
        *,
        sub_bar: str | pd.Timedelta = SUB_BAR,
        settle: str | pd.Timedelta = pd.Timedelta(seconds=2),
        grace: str | pd.Timedelta = pd.Timedelta(seconds=10),
        late: Literal["raise", "drop"] = "raise",
    ) -> None:
        self.symbols = tuple(symbols)
        if not self.symbols or any(not isinstance(s, str) or not s.strip() for s in self.symbols):
            raise ValueError(f"symbols must be a non-empty list of non-empty strings, got {list(self.symbols)!r}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols contain duplicates: {list(self.symbols)!r}")
        if late not in ("raise", "drop"):
            raise ValueError(f"late must be 'raise' or 'drop', got {late!r}")
        self.interval_ns = parse_interval(interval)
        self.sub_bar_ns = _positive_ns(sub_bar, "sub_bar")
        if self.interval_ns % self.sub_bar_ns:
            raise ValueError(f"interval {interval!r} is not a whole number of {_seconds(self.sub_bar_ns)} sub-bars")
        self.settle_ns = _non_negative_ns(settle, "settle")
        self.grace_ns = _non_negative_ns(grace, "grace")
        if self.grace_ns < self.settle_ns:
            raise ValueError(f"grace ({_seconds(self.grace_ns)}) must be at least settle ({_seconds(self.settle_ns)})")
        if calendar not in xcals.get_calendar_names():
            raise ValueError(f"unknown exchange calendar {calendar!r} (an exchange_calendars name such as 'XNYS')")
        self.calendar = xcals.resolve_alias(calendar)
        self._exchange = get_exchange_calendar(self.calendar)
        self.tz = str(self._exchange.tz)
        self.interval = interval
        self.late = late
        self.late_sub_bars = 0
        self.duplicate_sub_bars = 0
        self.outside_session = 0

        self._aggregators = {s: TickBarAggregator(interval, self.tz, symbol=s, late="raise") for s in self.symbols}
        self._open: dict[str, _OpenBucket | None] = dict.fromkeys(self.symbols)
        self._last_sub_bar: dict[str, tuple[int, float, float, float, float, float] | None] = dict.fromkeys(self.symbols)
        # every bucket at or before this key is finished for the symbol (bar emitted or none coming)
        self._done_through: dict[str, int] = dict.fromkeys(self.symbols, -(2**62))
        self._pending: dict[int, _PendingSet] = {}
        self._session_minute: tuple[int, int | None] | None = None  # (minute ns, session close ns or None)

    def push(
        self,
        symbol: str,
        start: pd.Timestamp | dt.datetime | int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> AssemblerUpdate:
        """Add one sub-bar starting at ``start`` (tz-aware, or ns since the epoch UTC)."""
        if symbol not in self._open:
            raise ValueError(f"unknown symbol {symbol!r}; the assembler streams {list(self.symbols)!r}")
        start_ns = _to_ns(start)
        values = _checked_ohlcv(symbol, start_ns, open_, high, low, close, volume)
        if start_ns % self.sub_bar_ns:
            raise ValueError(f"{symbol} sub-bar at {_stamp(start_ns)} does not start on the {_seconds(self.sub_bar_ns)} grid")
        session_close = self._session_close_if_open(start_ns)
        if session_close is None:
            self.outside_session += 1
            return AssemblerUpdate()

        last = self._last_sub_bar[symbol]
        if last is not None and last == (start_ns, *values):
            self.duplicate_sub_bars += 1
            return AssemblerUpdate()
        key = int(bucket_keys(np.array([start_ns], dtype=np.int64), self.interval_ns, self.tz)[0])
        if last is not None and start_ns <= last[0]:
            return self._refuse(f"{symbol} sub-bar at {_stamp(start_ns)} is not after the previous one at {_stamp(last[0])}")
        if key <= self._done_through[symbol]:
            return self._refuse(f"{symbol} sub-bar at {_stamp(start_ns)} belongs to the bar of {_stamp(key)}, which already completed")

        self._last_sub_bar[symbol] = (start_ns, *values)
        self._done_through[symbol] = max(self._done_through[symbol], key - 1)
        completed: list[Bar] = []
        previous = self._open[symbol]
        o, h, lo, c, v = values
        for price, size in ((o, 0.0), (h, 0.0), (lo, 0.0), (c, v)):
            for bar in self._aggregators[symbol].push(start_ns, price, size):
                assert previous is not None  # the aggregator only completes a bar it was building
                completed.append(self._record(bar, previous.end_ns))
        bucket = _OpenBucket(key, self._bucket_end(key, session_close))
        self._open[symbol] = bucket
        if start_ns + self.sub_bar_ns >= bucket.end_ns:
            completed += self._complete(symbol)
        return AssemblerUpdate(tuple(completed), self._ready_sets(now_ns=None))

    def flush_due(self, now: pd.Timestamp | dt.datetime | int) -> AssemblerUpdate:
        """Complete the bars whose bucket ended at least ``settle`` before ``now``, then emit the bar
        sets whose bucket ended at least ``grace`` before it (missing symbols listed)."""
        now_ns = _to_ns(now)
        completed: list[Bar] = []
        for symbol in self.symbols:
            bucket = self._open[symbol]
            if bucket is not None and bucket.end_ns + self.settle_ns <= now_ns:
                completed += self._complete(symbol)
        return AssemblerUpdate(tuple(completed), self._ready_sets(now_ns=now_ns))

    def open_bar(self, symbol: str) -> Bar | None:
        """The symbol's bar being built, if any."""
        if symbol not in self._aggregators:
            raise ValueError(f"unknown symbol {symbol!r}; the assembler streams {list(self.symbols)!r}")
        return self._aggregators[symbol].open_bar

    @property
    def pending_buckets(self) -> tuple[pd.Timestamp, ...]:
        """Buckets with at least one completed bar whose set is not out yet."""
        return tuple(_stamp(key) for key in sorted(self._pending))

    def _refuse(self, message: str) -> AssemblerUpdate:
        if self.late == "drop":
            self.late_sub_bars += 1
            return AssemblerUpdate()
        raise SubBarOrderError(message)

    def _complete(self, symbol: str) -> list[Bar]:
        bucket = self._open[symbol]
        self._open[symbol] = None
        if bucket is None:
            return []
        return [self._record(bar, bucket.end_ns) for bar in self._aggregators[symbol].flush()]

    def _record(self, bar: Bar, end_ns: int) -> Bar:
        assert bar.symbol is not None
        key = int(bar.ts.value)
        self._pending.setdefault(key, _PendingSet(end_ns)).bars[bar.symbol] = bar
        self._done_through[bar.symbol] = max(self._done_through[bar.symbol], key)
        return bar

    def _ready_sets(self, now_ns: int | None) -> tuple[BarSet, ...]:
        ready = []
        for key in sorted(self._pending):
            pending = self._pending[key]
            all_done = all(self._done_through[s] >= key for s in self.symbols)
            timed_out = now_ns is not None and pending.end_ns + self.grace_ns <= now_ns
            if not (all_done or timed_out):
                continue
            del self._pending[key]
            # once a set is out its bucket is closed for everyone: a straggler is late, not a new bar
            for symbol in self.symbols:
                self._done_through[symbol] = max(self._done_through[symbol], key)
            ready.append(
                BarSet(
                    ts=_stamp(key),
                    end=_stamp(pending.end_ns),
                    bars={s: pending.bars[s] for s in self.symbols if s in pending.bars},
                    missing=tuple(s for s in self.symbols if s not in pending.bars),
                    timed_out=not all_done,
                )
            )
        return tuple(ready)

    def _bucket_end(self, key: int, session_close: int) -> int:
        if self.interval_ns == NS_PER_DAY:
            return session_close
        return min(key + self.interval_ns, session_close)

    def _session_close_if_open(self, ts_ns: int) -> int | None:
        """Close (ns) of the session whose regular hours contain ``ts_ns``, None outside them."""
        minute = ts_ns - ts_ns % MINUTE_NS
        if self._session_minute is not None and self._session_minute[0] == minute:
            return self._session_minute[1]
        stamp = _stamp(minute)
        close = None
        if self._exchange.first_minute <= stamp <= self._exchange.last_minute and self._exchange.is_open_on_minute(stamp):
            close = int(self._exchange.session_close(self._exchange.minute_to_session(stamp)).value)
        self._session_minute = (minute, close)
        return close


def _checked_ohlcv(symbol: str, start_ns: int, *values: float) -> tuple[float, float, float, float, float]:
    o, h, lo, c, v = (float(x) for x in values)
    where = f"{symbol} sub-bar at {_stamp(start_ns)}"
    for name, price in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"{where}: {name} {price!r} is not a positive finite number")
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{where}: volume {v!r} is not a non-negative finite number")
    if h < max(o, c, lo) or lo > min(o, c):
        raise ValueError(f"{where}: inconsistent prices open={o} high={h} low={lo} close={c}")
    return o, h, lo, c, v


def _to_ns(value: pd.Timestamp | dt.datetime | int) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, (dt.datetime, np.datetime64)):
        raise ValueError(f"time {value!r} is not a timestamp")
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone; pass a tz-aware timestamp or ns since the epoch (UTC)")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def _positive_ns(value: str | pd.Timedelta, name: str) -> int:
    ns = _non_negative_ns(value, name)
    if ns == 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return ns


def _non_negative_ns(value: str | pd.Timedelta, name: str) -> int:
    try:
        ns = int(pd.Timedelta(value).value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} {value!r} is not a duration such as '5s'") from exc
    if ns < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return ns


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:g}s"
