"""mplfinance's intraday sample: ``Date,Open,Close,High,Low,Volume`` (note the column order),
dates as ``m/d/Y H:M`` in New York time. Columns are matched by name, so the order is harmless.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, local_to_utc, stem
from tt_platform.data.importers._header import OHLCV_ALIASES, map_header, read_header
from tt_platform.data.importers._table import parse_timestamps, read_table

NEW_YORK = "America/New_York"


def read_mplfinance_intraday(path: str | Path, symbol: str | None = None, *, tz: str = NEW_YORK) -> pd.DataFrame:
    """Symbol defaults to the file name up to the first ``_`` (``SP500_NOV2019_IDay`` -> SP500)."""
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path).split("_")[0], path)
    names = map_header(path, read_header(path), {"date": ("date", "datetime"), **OHLCV_ALIASES}, line=1)
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=["open", "high", "low", "close", "volume"], optional=optional, skip_lines=1)
    local = parse_timestamps(table, "date", "%m/%d/%Y %H:%M", what="date/time 'm/d/Y H:M'")
    return build_bars(table, local_to_utc(table, local, tz).astype("datetime64[ns, UTC]"), symbol)
