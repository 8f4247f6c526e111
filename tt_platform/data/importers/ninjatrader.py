"""NinjaTrader minute exports as shipped with pyalgotrade: no header, ``;``-separated
``yyyymmdd HHMMSS;open;high;low;close;volume``, timestamps in UTC.

NinjaTrader stamps a bar with its *end* time (the 09:30-09:31 ET opening minute is written as
14:31 UTC in winter, which is where these files carry the opening volume spike). Canonical
intraday bars are stamped at the bar start, so ``bar_stamp="end"`` (the default) moves every
stamp back by ``bar_length``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, stem
from tt_platform.data.importers._table import parse_timestamps, read_table


def symbol_from_ninjatrader_name(path: Path) -> str:
    """``nt-spy-minute-2011-03`` -> SPY."""
    tokens = [t for t in re.split(r"[-_ ]", stem(path)) if t and t.lower() not in {"nt", "ninjatrader", "minute", "min"}]
    tokens = [t for t in tokens if not t.isdigit()]
    return tokens[0].upper() if tokens else stem(path).upper()


def read_ninjatrader_minute(
    path: str | Path,
    symbol: str | None = None,
    *,
    bar_stamp: Literal["end", "start"] = "end",
    bar_length: str | pd.Timedelta = "1min",
) -> pd.DataFrame:
    path = Path(path)
    if bar_stamp not in ("end", "start"):
        raise ValueError(f"bar_stamp must be 'end' or 'start', not {bar_stamp!r}")
    symbol = check_symbol(symbol if symbol is not None else symbol_from_ninjatrader_name(path), path)
    table = read_table(
        path, ["datetime", "open", "high", "low", "close", "volume"],
        floats=["open", "high", "low", "close", "volume"], sep=";",
    )
    stamps = parse_timestamps(table, "datetime", "%Y%m%d %H%M%S", what="NinjaTrader 'yyyymmdd HHMMSS'", shape=r"\d{8} \d{6}")
    if bar_stamp == "end":
        stamps = stamps - pd.Timedelta(bar_length)
    ts = stamps.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return build_bars(table, ts, symbol)
