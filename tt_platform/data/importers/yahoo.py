"""Yahoo Finance daily CSVs: ``Date,Open,High,Low,Close,Adj Close,Volume`` in any column order
(pyalgotrade's copies put ``Adj Close`` last), ascending or descending.

Yahoo's OHLC is split-adjusted as of the download and ``Adj Close`` is also dividend-adjusted.
``adjusted=True`` scales O/H/L/C by ``Adj Close / Close`` (volume unchanged), the usual way to
get a total-return series from such a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, session_stamps, stem
from tt_platform.data.importers._header import OHLCV_ALIASES, map_header, read_header
from tt_platform.data.importers._table import parse_timestamps, read_table

_NOISE = {"yahoofinance", "yahoo", "finance", "daily", "data", "prices", "quotes"}


def symbol_from_yahoo_name(path: Path) -> str:
    """``yahoofinance-SPY-20080101-20180101`` -> SPY, ``nvda-1999-2014`` -> NVDA, ``DIA-2009-yahoofinance`` -> DIA."""
    tokens = [t for t in re.split(r"[-_ ]", stem(path)) if t]
    for token in tokens:
        if token.lower() not in _NOISE and not token.isdigit():
            return token.upper()
    return stem(path).upper()


def read_yahoo_csv(path: str | Path, symbol: str | None = None, *, adjusted: bool = False) -> pd.DataFrame:
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else symbol_from_yahoo_name(path), path)
    names = map_header(
        path, read_header(path), {"date": ("date",), **OHLCV_ALIASES, "adj_close": ("adj close", "adjclose", "adj. close")}, line=1
    )
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=["open", "high", "low", "close", "volume", "adj_close"], optional=optional, skip_lines=1)
    ts = session_stamps(parse_timestamps(table, "date", "%Y-%m-%d", shape=r"\d{4}-\d{2}-\d{2}"))
    if adjusted:
        frame = table.frame
        adj = frame["adj_close"].to_numpy()
        table.fail_first(adj <= 0, "'Adj Close' <= 0")
        ratio = adj / frame["close"].to_numpy()
        for column in ("open", "high", "low", "close"):
            frame[column] = frame[column].to_numpy() * ratio
    return build_bars(table, ts, symbol)
