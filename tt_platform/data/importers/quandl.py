"""Quandl WIKI end-of-day prices, two layouts:

* the bulk table (zipline's sample): ``ticker,date,open,high,low,close,volume,ex-dividend,
  split_ratio,adj_open,adj_high,adj_low,adj_close,adj_volume`` (several tickers, ascending);
* per-ticker downloads (pyalgotrade's samples): ``Date,Open,High,Low,Close,Volume,Ex-Dividend,
  Split Ratio,Adj. Open,Adj. High,Adj. Low,Adj. Close,Adj. Volume`` (newest first), the symbol
  taken from the file name (``WIKI-AIG-2009-quandl.csv`` -> AIG).

O/H/L/C/V are raw traded values; ex-dividend and split ratio are the events on their ex-dates;
the ``adj_*`` columns are the vendor's backward-adjusted series (kept for cross-checks).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tt_platform.data.bars import normalize_bars
from tt_platform.data.importers._bars import build_bars, check_symbol, session_stamps, stem
from tt_platform.data.importers._header import map_header, normalise_name, read_header
from tt_platform.data.importers._table import parse_timestamps, read_table
from tt_platform.data.importers.errors import ImportFormatError

ADJUSTED_COLUMNS = ["adj_open", "adj_high", "adj_low", "adj_close", "adj_volume"]
WIKI_TABLE_COLUMNS = [
    "symbol", "ts", "open", "high", "low", "close", "volume", "ex_dividend", "split_ratio", *ADJUSTED_COLUMNS,
]
_ALIASES = {
    "date": ("date",),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
    "ex_dividend": ("ex-dividend", "ex dividend", "exdividend"),
    "split_ratio": ("split ratio", "split_ratio"),
    "adj_open": ("adj. open", "adj open"),
    "adj_high": ("adj. high", "adj high"),
    "adj_low": ("adj. low", "adj low"),
    "adj_close": ("adj. close", "adj close"),
    "adj_volume": ("adj. volume", "adj volume"),
}
_NUMERIC = ["open", "high", "low", "close", "volume", "ex_dividend", "split_ratio", *ADJUSTED_COLUMNS]


def symbol_from_wiki_name(path: Path) -> str:
    """``WIKI-AIG-2009-quandl`` -> AIG; otherwise the whole file stem."""
    tokens = [t for t in re.split(r"[-_ ]", stem(path)) if t]
    tokens = [t for t in tokens if t.lower() not in {"wiki", "quandl", "eod"} and not t.isdigit()]
    return tokens[0].upper() if tokens else stem(path).upper()


def read_quandl_wiki_table(path: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """All columns (``WIKI_TABLE_COLUMNS``), sorted by (symbol, ts)."""
    path = Path(path)
    header = read_header(path)
    has_ticker = any(normalise_name(h) in {"ticker", "symbol"} for h in header)
    wanted = dict(_ALIASES)
    if has_ticker:
        wanted["ticker"] = ("ticker", "symbol")
    names = map_header(path, header, wanted, line=1)
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=_NUMERIC, optional=optional, skip_lines=1)
    frame = table.frame
    if symbol is not None:
        symbols: str | pd.Series = check_symbol(symbol, path)
        if has_ticker and frame["ticker"].str.upper().nunique() > 1:
            raise ImportFormatError(path, None, "symbol= given but the table holds several tickers")
    elif has_ticker:
        symbols = frame["ticker"].str.strip().str.upper()
        table.fail_first((symbols == "").to_numpy(), "empty ticker")
    else:
        symbols = check_symbol(symbol_from_wiki_name(path), path)
    table.fail_first(frame["ex_dividend"].to_numpy() < 0, "negative ex-dividend")
    table.fail_first(frame["split_ratio"].to_numpy() <= 0, "split ratio <= 0 (no split is 1.0)")
    ts = session_stamps(parse_timestamps(table, "date", "%Y-%m-%d", shape=r"\d{4}-\d{2}-\d{2}"))
    bars = build_bars(table, ts, symbols)  # row checks + sort; the extra columns follow by key
    extra = frame[["ex_dividend", "split_ratio", *ADJUSTED_COLUMNS]].copy()
    extra["symbol"] = symbols if isinstance(symbols, str) else symbols.to_numpy()
    extra["ts"] = ts.array
    out = bars.merge(extra, on=["symbol", "ts"], how="left", validate="one_to_one")
    return out[WIKI_TABLE_COLUMNS]


def read_quandl_wiki(path: str | Path, symbol: str | None = None, *, adjusted: bool = False) -> pd.DataFrame:
    """Canonical bars: raw prices, or the vendor-adjusted ``adj_*`` columns when ``adjusted``."""
    table = read_quandl_wiki_table(path, symbol)
    if not adjusted:
        return table[["symbol", "ts", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    renamed = table[["symbol", "ts", *ADJUSTED_COLUMNS]].rename(columns=lambda c: c.removeprefix("adj_"))
    return normalize_bars(renamed, origin=str(path))
