"""Turning parsed rows into canonical bars, with row errors that point at the file line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.data.bars import PRICE_COLUMNS, normalize_bars
from tt_platform.data.importers._table import RawTable
from tt_platform.data.importers.errors import ImportFormatError

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._\-/^]{0,31}$")


def check_symbol(symbol: str, path: Path) -> str:
    cleaned = str(symbol).strip().upper()
    if not _SYMBOL.match(cleaned):
        raise ImportFormatError(path, None, f"invalid symbol {symbol!r}; pass symbol= explicitly")
    return cleaned


def stem(path: Path) -> str:
    """File name without compression and table suffixes: ``AAPL.csv.gz`` -> ``AAPL``."""
    name = path.name
    for suffix in (".gz", ".zip", ".bz2", ".xz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in (".csv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def session_stamps(dates: pd.Series) -> pd.Series:
    """Daily bars are stamped 00:00 UTC of the session date (the canonical contract)."""
    index = pd.DatetimeIndex(dates).as_unit("ns")
    if (index.asi8 % 86_400_000_000_000).any():
        index = index.normalize()
    return pd.Series(index.tz_localize("UTC"))


def local_to_utc(table: RawTable, naive: pd.Series, tz: str) -> pd.Series:
    """Exchange wall-clock times to UTC; a time that does not exist or is ambiguous is an error."""
    try:
        return naive.dt.tz_localize(tz, nonexistent="raise", ambiguous="raise").dt.tz_convert("UTC")
    except Exception:  # noqa: BLE001 - locate the offending row, then report it
        for position, value in enumerate(naive):
            try:
                pd.Timestamp(value).tz_localize(tz, nonexistent="raise", ambiguous="raise")
            except Exception as exc:  # noqa: BLE001
                table.fail(position, f"time {value} does not exist or is ambiguous in {tz}: {exc}")
        raise


def build_bars(
    table: RawTable, ts: pd.Series, symbol: str | pd.Series, *, price_scale: float = 1.0
) -> pd.DataFrame:
    """Check rows (finite, prices > 0, volume >= 0, one bar per symbol and timestamp) and normalise.

    ``table.frame`` must hold float columns open, high, low, close, volume; ``ts`` is tz-aware UTC;
    ``symbol`` is one symbol or one per row.
    """
    frame = table.frame
    prices = frame[PRICE_COLUMNS].to_numpy(dtype="float64")
    if price_scale != 1.0:
        prices = prices / price_scale  # division, not * 1e-4: keeps 973100 -> 97.31 exact
    volume = frame["volume"].to_numpy(dtype="float64")
    finite = np.isfinite(prices).all(axis=1) & np.isfinite(volume)
    table.fail_first(~finite, "price or volume is not a finite number")
    bad_price = (prices <= 0).any(axis=1)
    if bad_price.any():
        position = int(np.flatnonzero(bad_price)[0])
        values = dict(zip(PRICE_COLUMNS, frame.loc[position, PRICE_COLUMNS].tolist()))
        table.fail(position, f"price <= 0 ({values})")
    table.fail_first(volume < 0, "negative volume")
    per_row = not isinstance(symbol, str)
    reject_duplicate_stamps(table, ts, keys=symbol if per_row else None)
    out = pd.DataFrame(
        {
            "symbol": np.asarray(symbol) if per_row else symbol,
            "ts": ts.array,
            "open": prices[:, 0],
            "high": prices[:, 1],
            "low": prices[:, 2],
            "close": prices[:, 3],
            "volume": volume,
        }
    )
    return normalize_bars(out, origin=str(table.path))


def reject_duplicate_stamps(table: RawTable, ts: pd.Series, keys: pd.Series | None = None) -> None:
    stamps = pd.DatetimeIndex(ts).as_unit("ns").asi8
    if keys is None:
        duplicated = pd.Index(stamps).duplicated(keep="first")
    else:
        duplicated = pd.MultiIndex.from_arrays([np.asarray(keys), stamps]).duplicated(keep="first")
    if duplicated.any():
        frame = pd.DataFrame({"ts": stamps})
        if keys is not None:
            frame["key"] = np.asarray(keys)
        position = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero((frame == frame.iloc[position]).all(axis=1).to_numpy())[0])
        table.fail(
            position,
            f"duplicate timestamp {ts.iloc[position]} (first seen on line {int(table.lines[first])})",
        )
