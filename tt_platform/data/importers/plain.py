"""Plain ``date,open,high,low,close,volume`` CSVs (market-lab, Lean normalised, our own exports)
and pandas_ta's variant with a leading unnamed index column.

Dates without a time become daily bars at 00:00 UTC. Date-times with a UTC offset are converted
to UTC; naive date-times (intraday) are read in ``tz`` (default UTC).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, local_to_utc, session_stamps, stem
from tt_platform.data.importers._header import OHLCV_ALIASES, map_header, read_header
from tt_platform.data.importers._table import RawTable, parse_iso_timestamps, read_table

TIME_ALIASES = ("date", "datetime", "timestamp", "time")
PRICE_FIELDS = ["open", "high", "low", "close", "volume"]


def read_plain_csv(path: str | Path, symbol: str | None = None, *, tz: str = "UTC") -> pd.DataFrame:
    """Canonical bars from a plain OHLCV CSV; ``symbol`` defaults to the file name (``SPY.csv``)."""
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path), path)
    names = map_header(path, read_header(path), {"date": TIME_ALIASES, **OHLCV_ALIASES}, line=1)
    return _bars_from_rows(path, names, symbol, tz)


def read_pandas_ta_csv(path: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """pandas_ta's ``,date,open,high,low,close,volume`` (first column is the saved index).

    The symbol defaults to the part of the file name before ``_`` (``SPY_D.csv`` -> ``SPY``).
    """
    path = Path(path)
    symbol = check_symbol(symbol if symbol is not None else stem(path).split("_")[0], path)
    header = read_header(path)
    names = map_header(path, header, {"date": TIME_ALIASES, **OHLCV_ALIASES}, line=1)
    return _bars_from_rows(path, names, symbol, "UTC")


def _bars_from_rows(path: Path, names: list[str], symbol: str, tz: str) -> pd.DataFrame:
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=PRICE_FIELDS, optional=optional, skip_lines=1)
    return build_bars(table, to_utc(table, "date", tz), symbol)


def to_utc(table: RawTable, column: str, tz: str) -> pd.Series:
    """ISO dates -> session stamps; aware date-times -> UTC; naive date-times -> ``tz`` -> UTC."""
    parsed = parse_iso_timestamps(table, column)
    if parsed.dt.tz is not None:
        return parsed.dt.tz_convert("UTC")
    if not (pd.DatetimeIndex(parsed).as_unit("ns").asi8 % 86_400_000_000_000).any():  # dates only
        return session_stamps(parsed)
    return local_to_utc(table, parsed, tz)
