"""Which reader fits a file: ``detect_format(path)`` sniffs the name and first lines,
``read_any(path)`` dispatches. Every format is listed in ``FORMATS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from tt_platform.data.importers._header import normalise_name
from tt_platform.data.importers._table import head_lines, split_header
from tt_platform.data.importers.crypto_ticks import read_bitstamp_trades, read_mtgox_trades
from tt_platform.data.importers.cryptodatadownload import read_cryptodatadownload_csv
from tt_platform.data.importers.errors import ImportFormatError
from tt_platform.data.importers.lean import (
    parse_lean_file_name,
    read_lean_daily,
    read_lean_quote_bars,
    read_lean_quote_ticks,
    read_lean_trade_bars,
    read_lean_trade_ticks,
)
from tt_platform.data.importers.lumibot import read_lumibot_csv
from tt_platform.data.importers.mplfinance import read_mplfinance_intraday
from tt_platform.data.importers.ninjatrader import read_ninjatrader_minute
from tt_platform.data.importers.plain import read_pandas_ta_csv, read_plain_csv
from tt_platform.data.importers.quandl import read_quandl_wiki
from tt_platform.data.importers.yahoo import read_yahoo_csv
from tt_platform.data.importers.zipline import read_zipline_csvdir

Output = Literal["bars", "trade_ticks", "quote_ticks", "quote_bars"]


@dataclass(frozen=True)
class FileFormat:
    name: str
    reader: Callable[..., pd.DataFrame]
    output: Output
    description: str


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat("plain", read_plain_csv, "bars", "date,open,high,low,close,volume"),
        FileFormat("pandas_ta", read_pandas_ta_csv, "bars", ",date,open,high,low,close,volume (saved index first)"),
        FileFormat("yahoo", read_yahoo_csv, "bars", "Yahoo Date,Open,High,Low,Close,Adj Close,Volume"),
        FileFormat("lean_daily", read_lean_daily, "bars", "Lean raw vendor daily, no header, prices x1e4"),
        FileFormat("lean_trade_bars", read_lean_trade_bars, "bars", "Lean minute/second trade bars"),
        FileFormat("lean_quote_bars", read_lean_quote_bars, "quote_bars", "Lean minute/second quote bars"),
        FileFormat("lean_trade_ticks", read_lean_trade_ticks, "trade_ticks", "Lean trade ticks (zip)"),
        FileFormat("lean_quote_ticks", read_lean_quote_ticks, "quote_ticks", "Lean quote ticks (zip)"),
        FileFormat("ninjatrader", read_ninjatrader_minute, "bars", "NinjaTrader yyyymmdd HHMMSS;o;h;l;c;v (UTC)"),
        FileFormat("lumibot", read_lumibot_csv, "bars", "lumibot minute bars with ISO times and offsets"),
        FileFormat("mplfinance_intraday", read_mplfinance_intraday, "bars", "Date(m/d/Y H:M),Open,Close,High,Low,Volume"),
        FileFormat("cryptodatadownload", read_cryptodatadownload_csv, "bars", "CryptoDataDownload banner + descending bars"),
        FileFormat("bitstamp_trades", read_bitstamp_trades, "trade_ticks", "unix_seconds,price,amount"),
        FileFormat("mtgox_trades", read_mtgox_trades, "trade_ticks", "id(us epoch),price,amount,type"),
        FileFormat("zipline_csvdir", read_zipline_csvdir, "bars", "zipline csvdir with dividend/split columns"),
        FileFormat("quandl_wiki", read_quandl_wiki, "bars", "Quandl WIKI with ex-dividend/split and adj columns"),
    )
}

_LEAN_DAILY = re.compile(r"^\d{8} \d{2}:\d{2},")
_NINJATRADER = re.compile(r"^\d{8} \d{6};")
_BITSTAMP = re.compile(r"^\d{9,10},\d+(\.\d+)?,\d+(\.\d+)?$")
_US_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}")
_ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)$")


def detect_format(path: str | Path) -> str:
    """Name of the format in ``FORMATS``; ``ImportFormatError`` when nothing fits."""
    path = Path(path)
    lines = head_lines(path, 2)
    if not lines:
        raise ImportFormatError(path, None, "empty file")
    lean = parse_lean_file_name(path)
    if lean is not None:
        if lean.resolution == "tick":
            return "lean_trade_ticks" if lean.kind == "trade" else "lean_quote_ticks"
        return "lean_trade_bars" if lean.kind == "trade" else "lean_quote_bars"
    first = lines[0]
    if _LEAN_DAILY.match(first):
        return "lean_daily"
    if _NINJATRADER.match(first):
        return "ninjatrader"
    if _BITSTAMP.match(first):
        return "bitstamp_trades"
    header = [normalise_name(h) for h in split_header(first)]
    names = set(header)
    if not {"open", "close"} <= names and len(lines) > 1:
        second = {normalise_name(h) for h in split_header(lines[1])}
        if {"open", "close", "symbol"} <= second:
            return "cryptodatadownload"
    if {"id", "price", "amount"} <= names:
        return "mtgox_trades"
    if {"open", "close"} <= names:
        if names & {"ex-dividend", "ex dividend"} and names & {"split ratio"}:
            return "quandl_wiki"
        if {"dividend", "split"} <= names:
            return "zipline_csvdir"
        if names & {"adj close", "adjclose"}:
            return "yahoo"
        if header[0] == "" and "date" in names:
            return "pandas_ta"
        value = split_header(lines[1])[0] if len(lines) > 1 else ""
        if _US_DATE.match(value):
            return "mplfinance_intraday"
        if names & {"time", "datetime", "timestamp"} and _ISO_WITH_OFFSET.match(value):
            return "lumibot"
        if "date" in names or names & {"time", "datetime", "timestamp"}:
            return "plain"
    raise ImportFormatError(path, 1, f"unknown file format; first line is {first[:120]!r}")


def read_any(path: str | Path, *, format: str | None = None, **options) -> pd.DataFrame:
    """Read with the detected (or named) format's reader; options go to that reader."""
    name = format or detect_format(path)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; known: {sorted(FORMATS)}")
    return FORMATS[name].reader(path, **options)
