"""Bar builders for feature tests: hand-sized frames and real daily files from shared data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.data.bars import normalize_bars


def make_bars(
    symbol: str,
    close: Sequence[float],
    *,
    open_: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    volume: Sequence[float] | None = None,
    start: str = "2021-01-04",
    freq: str = "D",
    ts: Sequence[pd.Timestamp] | None = None,
) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    n = len(close)
    open_ = close if open_ is None else np.asarray(open_, dtype=float)
    high = np.maximum(close, open_) if high is None else np.asarray(high, dtype=float)
    low = np.minimum(close, open_) if low is None else np.asarray(low, dtype=float)
    volume = np.full(n, 1000.0) if volume is None else np.asarray(volume, dtype=float)
    stamps = pd.date_range(start, periods=n, freq=freq, tz="UTC") if ts is None else pd.DatetimeIndex(ts)
    frame = pd.DataFrame(
        {"symbol": symbol, "ts": stamps, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    return normalize_bars(frame, origin=f"test bars {symbol}")


def random_walk_bars(
    symbols: Sequence[str], n: int, *, seed: int = 0, start: str = "2020-01-01", freq: str = "D"
) -> pd.DataFrame:
    """Geometric random walks with consistent OHLC and lognormal volume."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        open_ = close * np.exp(rng.normal(0, 0.004, n))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
        volume = np.round(np.exp(rng.normal(13, 0.5, n)))
        frames.append(make_bars(symbol, close, open_=open_, high=high, low=low, volume=volume, start=start, freq=freq))
    return normalize_bars(pd.concat(frames, ignore_index=True), origin="random walk")


def load_market_lab(shared_data: Path, symbols: Sequence[str], start: str, end: str) -> pd.DataFrame:
    """Canonical daily bars from ``daily/market_lab_adjusted/<SYMBOL>.csv`` within [start, end]."""
    frames = []
    for symbol in symbols:
        raw = pd.read_csv(shared_data / "daily" / "market_lab_adjusted" / f"{symbol}.csv")
        raw["ts"] = pd.to_datetime(raw["date"], utc=True)
        raw = raw[(raw["ts"] >= pd.Timestamp(start, tz="UTC")) & (raw["ts"] <= pd.Timestamp(end, tz="UTC"))]
        raw["symbol"] = symbol
        frames.append(raw)
    return normalize_bars(pd.concat(frames, ignore_index=True), origin="market_lab_adjusted")


def load_lean_minute(shared_data: Path, day: str, symbol: str = "SPY") -> pd.DataFrame:
    """Canonical 1-minute bars from ``intraday/lean_spy_minute/<day>_spy_minute_trade.csv``."""
    path = shared_data / "intraday" / "lean_spy_minute" / f"{day}_{symbol.lower()}_minute_trade.csv"
    raw = pd.read_csv(path, header=None, names=["ms", "open", "high", "low", "close", "volume"])
    base = pd.Timestamp(day, tz="America/New_York")
    raw["ts"] = (base + pd.to_timedelta(raw["ms"], unit="ms")).dt.tz_convert("UTC")
    for column in ("open", "high", "low", "close"):
        raw[column] = raw[column] / 10_000
    raw["symbol"] = symbol
    return normalize_bars(raw, origin=str(path))
