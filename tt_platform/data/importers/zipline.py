"""zipline ``csvdir`` bundles: one ``<SYMBOL>.csv[.gz]`` per asset with
``date,open,high,low,close,volume,dividend,split``.

The OHLCV is split-adjusted as of the file's end; the dividend and split columns are event facts
on their ex-dates (dividends before a later split are stated in post-split terms). The bars
therefore come out as stored; ``tt_platform.data.corporate_actions`` turns the event columns into
raw-terms actions and can undo the split adjustment.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, session_stamps, stem
from tt_platform.data.importers._header import OHLCV_ALIASES, map_header, read_header
from tt_platform.data.importers._table import parse_timestamps, read_table

ZIPLINE_TABLE_COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume", "dividend", "split"]


def read_zipline_csvdir_table(path: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """All columns, sorted by date: ``symbol, ts, open..volume, dividend, split``."""
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path), path)
    names = map_header(
        path, read_header(path),
        {"date": ("date",), **OHLCV_ALIASES, "dividend": ("dividend", "dividends"), "split": ("split", "splits")},
        line=1,
    )
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(
        path, names, floats=["open", "high", "low", "close", "volume", "dividend", "split"], optional=optional, skip_lines=1
    )
    frame = table.frame
    table.fail_first(frame["dividend"].to_numpy() < 0, "negative dividend")
    table.fail_first(frame["split"].to_numpy() <= 0, "split ratio <= 0 (no split is 1.0)")
    ts = session_stamps(parse_timestamps(table, "date", "%Y-%m-%d", shape=r"\d{4}-\d{2}-\d{2}"))
    bars = build_bars(table, ts, symbol)  # validates rows and sorts; events follow by timestamp
    events = pd.DataFrame({"ts": ts.array, "dividend": frame["dividend"].to_numpy(), "split": frame["split"].to_numpy()})
    out = bars.merge(events, on="ts", how="left", validate="one_to_one")
    return out[ZIPLINE_TABLE_COLUMNS]


def read_zipline_csvdir(path: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """Canonical bars as stored (split-adjusted as of the file's end)."""
    table = read_zipline_csvdir_table(path, symbol)
    return table[["symbol", "ts", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
