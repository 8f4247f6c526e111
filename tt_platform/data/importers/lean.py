"""QuantConnect Lean's file formats (equity data by AlgoSeek, crypto by CryptoTick).

* Daily/hour raw vendor files: no header, ``yyyymmdd HH:MM,open*1e4,high*1e4,low*1e4,close*1e4,volume``.
* Minute/second bars: no header, ``ms_since_midnight,o,h,l,c,volume`` (trade) or
  ``ms,bidO,bidH,bidL,bidC,bidSize,askO,askH,askL,askC,askSize`` (quote); the date comes from
  the file name (``20131007_spy_minute_trade.csv``).
* Ticks (zip of one CSV): trade ``ms,price,size,exchange,sale_condition,suspicious`` and
  quote ``ms,bid,bid_size,ask,ask_size,exchange,condition,suspicious``; a zero price on one side
  of a quote means "no update on that side" and becomes NaN.

Equity prices are scaled by 10,000 and milliseconds count from midnight New York time; crypto
prices are plain and milliseconds count from midnight UTC. ``market="auto"`` picks crypto when
a folder or file name says so (crypto, coinbase, gdax, bitfinex, binance, kraken, ...).
Intraday bars are stamped at the bar start, as Lean writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tt_platform.data.importers._bars import (
    build_bars,
    check_symbol,
    local_to_utc,
    reject_duplicate_stamps,
    session_stamps,
    stem,
)
from tt_platform.data.importers._table import (
    EARLIEST,
    LATEST,
    RawTable,
    parse_timestamps,
    read_table,
    zip_member_name,
)
from tt_platform.data.importers.errors import ImportFormatError

EQUITY_PRICE_SCALE = 10_000.0
EQUITY_TZ = "America/New_York"
CRYPTO_HINTS = ("crypto", "coinbase", "gdax", "bitfinex", "binance", "kraken", "bitstamp", "ftx", "bybit")
MS_PER_DAY = 86_400_000

Market = Literal["auto", "equity", "crypto"]

# 20131007_spy_minute_trade.csv | 20131007_spy_trade_tick.zip | 20131007_spy_Trade_Tick.csv
_INTRADAY_NAME = re.compile(
    r"^(?P<date>\d{8})_(?P<symbol>[a-z0-9.\-]+?)_"
    r"(?:(?P<res>minute|second|tick)_(?P<kind>trade|quote|openinterest)|(?P<kind2>trade|quote|openinterest)_(?P<res2>tick|minute|second))$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LeanFileName:
    date: pd.Timestamp
    symbol: str
    resolution: str  # minute | second | tick
    kind: str        # trade | quote | openinterest


def parse_lean_file_name(path: str | Path) -> LeanFileName | None:
    """Date, symbol, resolution and kind from a Lean intraday file (or its zip member) name."""
    path = Path(path)
    candidates = [stem(path)]
    member = zip_member_name(path) if path.suffix.lower() == ".zip" and path.is_file() else None
    if member:
        candidates.append(stem(Path(member)))
    for name in candidates:
        match = _INTRADAY_NAME.match(name)
        if match:
            kind = (match["kind"] or match["kind2"]).lower()
            resolution = (match["res"] or match["res2"]).lower()
            date = pd.to_datetime(match["date"], format="%Y%m%d", errors="coerce")
            if pd.isna(date):
                return None
            return LeanFileName(date, match["symbol"].upper(), resolution, kind)
    return None


def is_crypto_path(path: Path) -> bool:
    text = str(path).lower()
    return any(hint in text for hint in CRYPTO_HINTS)


def _market(path: Path, market: Market) -> Literal["equity", "crypto"]:
    if market == "auto":
        return "crypto" if is_crypto_path(path) else "equity"
    if market not in ("equity", "crypto"):
        raise ValueError(f"market must be 'auto', 'equity' or 'crypto', not {market!r}")
    return market


def _intraday_file(
    path: str | Path, symbol: str | None, date: str | pd.Timestamp | None, market: Market
) -> tuple[Path, str, pd.Timestamp, Literal["equity", "crypto"]]:
    """Path, symbol, session day and market of an intraday file: from the arguments, else the
    file name (``20131007_spy_minute_trade.csv``)."""
    path = Path(path)
    name = None if (date is not None and symbol is not None) else _require_name(path)
    symbol = check_symbol(symbol if symbol is not None else name.symbol, path)
    day = pd.Timestamp(date) if date is not None else name.date
    if not EARLIEST <= day <= LATEST:
        raise ImportFormatError(path, None, f"date {day.date().isoformat()} is outside {EARLIEST:%Y-%m-%d} .. {LATEST:%Y-%m-%d}")
    return path, symbol, day, _market(path, market)


def _require_name(path: Path) -> LeanFileName:
    name = parse_lean_file_name(path)
    if name is None:
        raise ImportFormatError(
            path, None,
            "cannot take date and symbol from the file name; expected e.g. 20131007_spy_minute_trade.csv "
            "or 20131007_spy_trade_tick.zip (pass date= and symbol= to override)",
        )
    return name


def _intraday_stamps(table: RawTable, date: pd.Timestamp, tz: str) -> pd.Series:
    ms = table.frame["ms"].to_numpy()
    table.fail_first((ms < 0) | (ms > MS_PER_DAY), f"milliseconds since midnight outside 0..{MS_PER_DAY}")
    local = pd.Series(pd.Timestamp(date).normalize() + pd.to_timedelta(ms, unit="ms"))
    if tz == "UTC":
        return local.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    # ms count wall-clock time from local midnight (Lean's convention)
    return local_to_utc(table, local, tz).astype("datetime64[ns, UTC]")


def _check_integer_prices(table: RawTable, columns: list[str]) -> None:
    """Scaled equity prices are integers; decimals mean an unscaled (e.g. crypto) file."""
    values = table.frame[columns].to_numpy()
    fractional = (np.abs(values - np.round(values)) > 1e-9).any(axis=1)
    table.fail_first(
        fractional,
        "equity price with decimals: Lean equity prices are integers x10000 "
        "(for crypto/unscaled files pass market='crypto')",
    )


def read_lean_daily(path: str | Path, symbol: str | None = None, *, market: Market = "auto") -> pd.DataFrame:
    """Raw (unadjusted) daily (or hour) bars from a Lean vendor file (``spy.csv`` or ``spy.zip``)."""
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path), path)
    kind = _market(path, market)
    table = read_table(path, ["date", "open", "high", "low", "close", "volume"], floats=["open", "high", "low", "close", "volume"])
    if kind == "equity":
        _check_integer_prices(table, ["open", "high", "low", "close"])
    stamps = parse_timestamps(table, "date", "%Y%m%d %H:%M", what="Lean date 'yyyymmdd HH:MM'", shape=r"\d{8} \d{2}:\d{2}")
    if (stamps == stamps.dt.normalize()).all():
        ts = session_stamps(stamps)
    else:  # hour files: exchange wall-clock bar starts
        ts = local_to_utc(table, stamps, EQUITY_TZ) if kind == "equity" else stamps.dt.tz_localize("UTC")
    return build_bars(table, ts, symbol, price_scale=EQUITY_PRICE_SCALE if kind == "equity" else 1.0)


def read_lean_trade_bars(
    path: str | Path,
    symbol: str | None = None,
    *,
    date: str | pd.Timestamp | None = None,
    market: Market = "auto",
) -> pd.DataFrame:
    """Minute or second trade bars; date and symbol from the file name unless given."""
    path, symbol, day, kind = _intraday_file(path, symbol, date, market)
    table = read_table(path, ["ms", "open", "high", "low", "close", "volume"], floats=["open", "high", "low", "close", "volume"], ints=["ms"])
    if kind == "equity":
        _check_integer_prices(table, ["open", "high", "low", "close"])
    ts = _intraday_stamps(table, day, EQUITY_TZ if kind == "equity" else "UTC")
    return build_bars(table, ts, symbol, price_scale=EQUITY_PRICE_SCALE if kind == "equity" else 1.0)


QUOTE_BAR_COLUMNS = [
    "bid_open", "bid_high", "bid_low", "bid_close", "bid_size",
    "ask_open", "ask_high", "ask_low", "ask_close", "ask_size",
]


def read_lean_quote_bars(
    path: str | Path,
    symbol: str | None = None,
    *,
    date: str | pd.Timestamp | None = None,
    market: Market = "auto",
) -> pd.DataFrame:
    """Minute/second quote bars: ``symbol, ts`` + bid/ask OHLC and sizes (a missing side is NaN)."""
    path, symbol, day, kind = _intraday_file(path, symbol, date, market)
    table = read_table(path, ["ms", *QUOTE_BAR_COLUMNS], floats=QUOTE_BAR_COLUMNS, ints=["ms"], optional=QUOTE_BAR_COLUMNS)
    ts = _intraday_stamps(table, day, EQUITY_TZ if kind == "equity" else "UTC")
    reject_duplicate_stamps(table, ts)
    out = pd.DataFrame({"symbol": symbol, "ts": ts.array})
    scale = EQUITY_PRICE_SCALE if kind == "equity" else 1.0
    for side in ("bid", "ask"):
        prices = table.frame[[f"{side}_{p}" for p in ("open", "high", "low", "close")]].to_numpy(dtype="float64")
        table.fail_first((prices < 0).any(axis=1), f"negative {side} price")
        absent = (prices == 0).all(axis=1) | np.isnan(prices).all(axis=1)
        prices = np.where(absent[:, None], np.nan, prices / scale)
        for i, p in enumerate(("open", "high", "low", "close")):
            out[f"{side}_{p}"] = prices[:, i]
        out[f"{side}_size"] = np.where(absent, np.nan, table.frame[f"{side}_size"].to_numpy(dtype="float64"))
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


TRADE_TICK_COLUMNS = ["symbol", "ts", "price", "size", "exchange", "sale_condition", "suspicious"]
QUOTE_TICK_COLUMNS = ["symbol", "ts", "bid_price", "bid_size", "ask_price", "ask_size", "exchange", "condition", "suspicious"]


def read_lean_trade_ticks(
    path: str | Path,
    symbol: str | None = None,
    *,
    date: str | pd.Timestamp | None = None,
    market: Market = "auto",
) -> pd.DataFrame:
    """Trade ticks in file order (same-millisecond prints are normal and kept)."""
    path, symbol, day, kind = _intraday_file(path, symbol, date, market)
    table = read_table(
        path, ["ms", "price", "size", "exchange", "sale_condition", "suspicious"],
        floats=["price", "size"], ints=["ms", "suspicious"], optional=["exchange", "sale_condition"],
    )
    price = table.frame["price"].to_numpy(dtype="float64")
    size = table.frame["size"].to_numpy(dtype="float64")
    table.fail_first(~np.isfinite(price) | (price <= 0), "trade price <= 0 or not finite")
    table.fail_first(~np.isfinite(size) | (size < 0), "trade size < 0 or not finite")
    ts = _intraday_stamps(table, day, EQUITY_TZ if kind == "equity" else "UTC")
    scale = EQUITY_PRICE_SCALE if kind == "equity" else 1.0
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts.array,
            "price": price / scale,
            "size": size,
            "exchange": table.frame["exchange"].to_numpy(),
            "sale_condition": table.frame["sale_condition"].to_numpy(),
            "suspicious": table.frame["suspicious"].to_numpy().astype(bool),
        },
        columns=TRADE_TICK_COLUMNS,
    )


def read_lean_quote_ticks(
    path: str | Path,
    symbol: str | None = None,
    *,
    date: str | pd.Timestamp | None = None,
    market: Market = "auto",
) -> pd.DataFrame:
    """Quote ticks; each row usually updates one side, the other side is NaN."""
    path, symbol, day, kind = _intraday_file(path, symbol, date, market)
    table = read_table(
        path, ["ms", "bid_price", "bid_size", "ask_price", "ask_size", "exchange", "condition", "suspicious"],
        floats=["bid_price", "bid_size", "ask_price", "ask_size"], ints=["ms", "suspicious"],
        optional=["exchange", "condition"],
    )
    frame = table.frame
    ts = _intraday_stamps(table, day, EQUITY_TZ if kind == "equity" else "UTC")
    scale = EQUITY_PRICE_SCALE if kind == "equity" else 1.0
    out = pd.DataFrame({"symbol": symbol, "ts": ts.array})
    for side in ("bid", "ask"):
        price = frame[f"{side}_price"].to_numpy(dtype="float64")
        table.fail_first(price < 0, f"negative {side} price")
        absent = price == 0
        out[f"{side}_price"] = np.where(absent, np.nan, price / scale)
        out[f"{side}_size"] = np.where(absent, np.nan, frame[f"{side}_size"].to_numpy(dtype="float64"))
    table.fail_first(out["bid_price"].isna() & out["ask_price"].isna(), "quote with neither a bid nor an ask")
    out["exchange"] = frame["exchange"].to_numpy()
    out["condition"] = frame["condition"].to_numpy()
    out["suspicious"] = frame["suspicious"].to_numpy().astype(bool)
    return out[QUOTE_TICK_COLUMNS]
