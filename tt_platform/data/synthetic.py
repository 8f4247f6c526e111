"""Deterministic synthetic multi-asset bars: correlated, with market-wide volatility regimes.

Why this shape: one seed must give the same bar for a (symbol, session) whatever universe or date
range is asked for, so that per-partition ingestion and a full backfill agree. Every path is
therefore generated from a fixed epoch, the market factor depends on the seed only, and each
symbol's own noise on (seed, symbol).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, empty_bars, normalize_bars

EPOCH = pd.Timestamp("2000-01-03")
INTRADAY_STEPS = {"1h": pd.Timedelta(hours=1), "30min": pd.Timedelta(minutes=30), "5min": pd.Timedelta(minutes=5), "1min": pd.Timedelta(minutes=1)}


@dataclass(frozen=True)
class RegimeModel:
    """Market-wide daily volatility regimes (calm, normal, stressed) as a Markov chain."""

    vols: tuple[float, ...] = (0.007, 0.012, 0.028)
    drifts: tuple[float, ...] = (0.0006, 0.0003, -0.0012)
    # rows: from-regime, columns: to-regime
    transitions: tuple[tuple[float, ...], ...] = (
        (0.985, 0.015, 0.000),
        (0.010, 0.980, 0.010),
        (0.000, 0.040, 0.960),
    )


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _stream(*parts: object) -> np.random.Generator:
    """One generator per quantity: sequential draws make a shorter path a prefix of a longer
    one, so bars never depend on how far past them the request reaches."""
    return np.random.default_rng(_stable_seed(*parts))


@lru_cache(maxsize=4)
def _sessions(end: pd.Timestamp) -> pd.DatetimeIndex:
    calendar = xcals.get_calendar("XNYS", start=EPOCH.strftime("%Y-%m-%d"))
    return calendar.sessions_in_range(EPOCH, min(end, calendar.last_session))


@lru_cache(maxsize=8)
def _market_path(seed: int, n: int, model: RegimeModel) -> tuple[np.ndarray, np.ndarray]:
    transitions = np.asarray(model.transitions)
    regimes = np.empty(n, dtype=np.int8)
    state = 1
    draws = _stream("market-regime", seed).random(n)
    for i in range(n):
        regimes[i] = state
        state = int(np.searchsorted(np.cumsum(transitions[state]), draws[i]))
        state = min(state, len(model.vols) - 1)
    shocks = _stream("market-shock", seed).standard_normal(n)
    returns = np.asarray(model.drifts)[regimes] + np.asarray(model.vols)[regimes] * shocks
    return returns, regimes


def market_regimes(start: str | pd.Timestamp, end: str | pd.Timestamp, seed: int = 0) -> pd.Series:
    """The regime label (0 calm, 1 normal, 2 stressed) per session, for tests and demos."""
    sessions = _sessions(pd.Timestamp(end).tz_localize(None).normalize())
    _, regimes = _market_path(seed, len(sessions), RegimeModel())
    series = pd.Series(regimes, index=sessions.tz_localize("UTC"))
    return series.loc[pd.Timestamp(start, tz="UTC") : pd.Timestamp(end, tz="UTC")]


def _symbol_daily(symbol: str, seed: int, sessions: pd.DatetimeIndex, model: RegimeModel) -> pd.DataFrame:
    n = len(sessions)
    market, _ = _market_path(seed, n, model)
    params = _stream("symbol-params", seed, symbol)
    beta = params.uniform(0.6, 1.4)
    idio_vol = params.uniform(0.006, 0.018)
    alpha = params.normal(0.0, 0.0002)
    start_price = float(np.exp(params.uniform(np.log(20), np.log(400))))
    base_volume = params.uniform(2e5, 5e6)

    def noise(name: str) -> np.ndarray:
        return _stream(name, seed, symbol).standard_normal(n)

    log_ret = alpha + beta * market + idio_vol * noise("idio")
    close = start_price * np.exp(np.cumsum(log_ret))
    prev_close = np.concatenate([[start_price], close[:-1]])
    open_ = prev_close * np.exp(0.25 * idio_vol * noise("gap"))
    body = 0.4 * np.abs(log_ret) + 0.3 * idio_vol
    high = np.maximum(open_, close) * np.exp(np.abs(noise("upper-wick")) * body)
    low = np.minimum(open_, close) * np.exp(-np.abs(noise("lower-wick")) * body)
    volume = np.round(base_volume * np.exp(0.3 * noise("volume")) * (1 + 20 * np.abs(log_ret)))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": sessions.tz_localize("UTC"),
            "open": np.round(open_, 2),
            "high": np.round(high, 2),
            "low": np.round(low, 2),
            "close": np.round(close, 2),
            "volume": volume,
        }
    )


def _fix_ohlc(frame: pd.DataFrame) -> pd.DataFrame:
    # rounding to cents can push open/close a hair outside high/low
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    return frame


def _intraday_from_daily(daily: pd.DataFrame, step: pd.Timedelta, seed: int) -> pd.DataFrame:
    """Split each daily bar into regular-hours bars with a Brownian bridge from open to close."""
    calendar = xcals.get_calendar("XNYS", start=EPOCH.strftime("%Y-%m-%d"))
    pieces = []
    for row in daily.itertuples(index=False):
        session = row.ts.tz_localize(None)
        open_time = calendar.session_open(session)
        close_time = calendar.session_close(session)
        stamps = pd.date_range(open_time, close_time - step, freq=step)
        k = len(stamps)
        rng = np.random.default_rng(_stable_seed("intraday", seed, row.symbol, session.date()))
        walk = np.cumsum(rng.standard_normal(k + 1)) / np.sqrt(k + 1)
        walk -= np.linspace(0, 1, k + 1) * walk[-1]
        span = max(np.log(row.high / row.low), 1e-4)
        path = np.exp(np.log(row.open) + np.linspace(0, 1, k + 1) * np.log(row.close / row.open) + 0.25 * span * walk)
        o, c = path[:-1], path[1:]
        wick = np.abs(rng.standard_normal((2, k))) * 0.1 * span / np.sqrt(k)
        volume = np.round(row.volume * rng.dirichlet(np.ones(k)))
        pieces.append(
            pd.DataFrame(
                {
                    "symbol": row.symbol,
                    "ts": stamps,
                    "open": np.round(o, 2),
                    "high": np.round(np.maximum(o, c) * np.exp(wick[0]), 2),
                    "low": np.round(np.minimum(o, c) * np.exp(-wick[1]), 2),
                    "close": np.round(c, 2),
                    "volume": volume,
                }
            )
        )
    return pd.concat(pieces, ignore_index=True) if pieces else empty_bars()


def generate_bars(
    symbols: list[str] | tuple[str, ...],
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    interval: str = "1d",
    seed: int = 0,
) -> pd.DataFrame:
    """Bars for ``symbols`` on XNYS sessions in [start, end] (inclusive), canonical shape."""
    start_ts = pd.Timestamp(start).tz_localize(None) if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start).tz_convert(None)
    end_ts = pd.Timestamp(end).tz_localize(None) if pd.Timestamp(end).tzinfo is None else pd.Timestamp(end).tz_convert(None)
    if start_ts < EPOCH:
        raise ValueError(f"synthetic data starts at {EPOCH.date()}; asked for {start_ts.date()}")
    if end_ts < start_ts:
        raise ValueError(f"end {end_ts.date()} is before start {start_ts.date()}")
    if interval != "1d" and interval not in INTRADAY_STEPS:
        raise ValueError(f"unsupported interval {interval!r}; use 1d or one of {sorted(INTRADAY_STEPS)}")
    if not symbols:
        return empty_bars()
    sessions = _sessions(end_ts.normalize())
    model = RegimeModel()
    window = (sessions >= start_ts.normalize()) & (sessions <= end_ts.normalize())
    frames = []
    for symbol in dict.fromkeys(s.upper() for s in symbols):
        daily = _fix_ohlc(_symbol_daily(symbol, seed, sessions, model).loc[window])
        frames.append(daily if interval == "1d" else _fix_ohlc(_intraday_from_daily(daily, INTRADAY_STEPS[interval], seed)))
    bars = pd.concat(frames, ignore_index=True)[BAR_COLUMNS]
    return normalize_bars(bars, origin=f"synthetic(seed={seed})")
