"""Lumibot minute CSVs: ``time|datetime|timestamp,open,high,low,close,volume[,trade_count,vwap]``
with ISO-8601 times carrying their UTC offset (``2021-07-01 12:56:00-04:00``).

Extra columns (trade_count, vwap) are not part of the canonical bar and are dropped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, stem
from tt_platform.data.importers._header import OHLCV_ALIASES, map_header, read_header
from tt_platform.data.importers._table import parse_iso_timestamps, read_table
from tt_platform.data.importers.plain import TIME_ALIASES


def read_lumibot_csv(path: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """Symbol defaults to the file name up to the first ``_`` (``BTC-USD_MINUTE_2021-01`` -> BTC-USD)."""
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path).split("_")[0], path)
    names = map_header(path, read_header(path), {"time": TIME_ALIASES, **OHLCV_ALIASES}, line=1)
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=["open", "high", "low", "close", "volume"], optional=optional, skip_lines=1)
    parsed = parse_iso_timestamps(table, "time")
    if parsed.dt.tz is None:
        table.fail(0, f"time has no UTC offset ({table.frame['time'].iloc[0]!r}); lumibot files carry one")
    return build_bars(table, parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"), symbol)
