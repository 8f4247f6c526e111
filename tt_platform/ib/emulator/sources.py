"""Where the emulator's bars come from: the ``BarSource`` protocol and three implementations.

A source answers ``bars(symbol, start, end, interval)`` for the half-open range ``[start, end)``
in the canonical bar frame (``tt_platform.data.bars``). The emulator never asks for anything it
would not let a client see, so sources need no look-ahead guard of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from tt_platform.data.bars import BarValidationError, empty_bars, normalize_bars
from tt_platform.data.importers import ImportFormatError, read_plain_csv

INTERVALS = ("1d", "1h", "1min", "30s")


class BarSourceError(ValueError):
    """A bar source cannot serve its data (bad file, unknown interval); the message says where."""


@runtime_checkable
class BarSource(Protocol):
    def symbols(self) -> list[str]:
        """Symbols this source can serve (upper case)."""

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        """Canonical bars of ``symbol`` with ``start <= ts < end``; empty when there are none."""


def _slice(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    ts = frame["ts"]
    lo, hi = ts.searchsorted(start, side="left"), ts.searchsorted(end, side="left")
    return frame.iloc[lo:hi].reset_index(drop=True)


class FrameBarSource:
    """Bars held in memory: one canonical frame (of ``interval`` bars) or a mapping interval -> frame."""

    def __init__(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], interval: str = "1d") -> None:
        mapping = {interval: frames} if isinstance(frames, pd.DataFrame) else dict(frames)
        unknown = sorted(set(mapping) - set(INTERVALS))
        if unknown:
            raise BarSourceError(f"FrameBarSource: unsupported intervals {unknown}; use {list(INTERVALS)}")
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        names: set[str] = set()
        for iv, frame in mapping.items():
            canonical = normalize_bars(frame, origin=f"FrameBarSource[{iv}]")
            for symbol, part in canonical.groupby("symbol", sort=True):
                self._frames[(str(symbol), iv)] = part.reset_index(drop=True)
                names.add(str(symbol))
        self._symbols = sorted(names)

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        frame = self._frames.get((symbol.upper(), interval))
        return empty_bars() if frame is None else _slice(frame, start, end)


def read_plain_bar_csv(path: Path, symbol: str) -> pd.DataFrame:
    """A ``date,open,high,low,close,volume`` CSV as canonical daily bars; errors name file and line."""
    try:
        return read_plain_csv(path, symbol=symbol)
    except (ImportFormatError, BarValidationError) as exc:
        raise BarSourceError(str(exc)) from exc


class CsvDirectoryBarSource:
    """Daily bars from a folder of plain ``<SYMBOL>.csv`` files (read lazily, cached)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise BarSourceError(f"CsvDirectoryBarSource: {self.path} is not a directory")
        self._files = {p.stem.upper(): p for p in sorted(self.path.glob("*.csv"))}
        if not self._files:
            raise BarSourceError(f"CsvDirectoryBarSource: no *.csv files in {self.path}")
        self._cache: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def symbols(self) -> list[str]:
        return sorted(self._files)

    def frame(self, symbol: str) -> pd.DataFrame:
        symbol = symbol.upper()
        with self._lock:
            if symbol not in self._cache:
                path = self._files.get(symbol)
                self._cache[symbol] = empty_bars() if path is None else read_plain_bar_csv(path, symbol)
            return self._cache[symbol]

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        if interval != "1d":
            return empty_bars()
        return _slice(self.frame(symbol), start, end)


class SyntheticBarSource:
    """Deterministic synthetic bars (``tt_platform.data.synthetic.generate_bars``) per seed.

    ``symbols=None`` serves any symbol asked for (``serves_any_symbol``); the bars of a symbol
    depend only on the seed and the symbol, never on which others are served.
    """

    def __init__(
        self, symbols: Iterable[str] | None, seed: int = 0, last_session: str | pd.Timestamp | None = None
    ) -> None:
        from tt_platform.data import synthetic

        self._generate = synthetic.generate_bars
        self._intervals = {"1d", *synthetic.INTRADAY_STEPS}
        self.first_session = pd.Timestamp(synthetic.EPOCH, tz="UTC")
        self.serves_any_symbol = symbols is None
        self._symbols = sorted({s.upper() for s in symbols or ()})
        if not self._symbols and not self.serves_any_symbol:
            raise BarSourceError("SyntheticBarSource needs at least one symbol (or None for any symbol)")
        self.seed = seed
        # default horizon: up to today, so "now" has data like a live feed
        self.last_session = pd.Timestamp(last_session or pd.Timestamp.now(tz="UTC").normalize())
        if self.last_session.tzinfo is None:
            self.last_session = self.last_session.tz_localize("UTC")
        self._daily: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _daily_frame(self, symbol: str) -> pd.DataFrame:
        with self._lock:
            if symbol not in self._daily:
                self._daily[symbol] = self._generate([symbol], self.first_session, self.last_session, "1d", self.seed)
            return self._daily[symbol]

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        symbol = symbol.upper()
        if not (self.serves_any_symbol or symbol in self._symbols) or interval not in self._intervals:
            return empty_bars()
        if interval == "1d":
            return _slice(self._daily_frame(symbol), start, end)
        lo = max(start, self.first_session)
        hi = min(
            end - pd.Timedelta(microseconds=1), self.last_session + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        )
        if hi < lo:
            return empty_bars()
        frame = self._generate([symbol], lo.normalize(), hi.normalize(), interval, self.seed)
        return _slice(frame, start, end)


class StoreBarSource:
    """Bars from the platform's own store (tt_prices): replay what was ingested before.

    ``symbols`` are those with stored bars of any interval; reads go to the store per request.
    """

    def __init__(self, engine, *, adjusted: bool = False) -> None:
        from tt_platform.store.prices import bar_counts

        self._engine = engine
        self._adjusted = adjusted
        counts = bar_counts(engine, interval="1d", adjusted=adjusted)
        self._symbols = sorted(counts["symbol"].astype(str)) if len(counts) else []

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        from tt_platform.store.prices import read_bars

        frame = read_bars(self._engine, [symbol.upper()], start, end, interval=interval, adjusted=self._adjusted)
        return frame[frame["ts"] < end].reset_index(drop=True)
