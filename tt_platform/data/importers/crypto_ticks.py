"""Crypto trade ticks from pyalgotrade's samples.

* Bitstamp: no header, ``unix_seconds,price,amount``.
* Mt.Gox: ``id,price,amount,type`` where ``id`` is the trade time in microseconds since the epoch
  and ``type`` the side Mt.Gox reports (``bid``/``ask``).

Output: ``symbol, ts, price, size`` (+ ``trade_id, side`` for Mt.Gox), in file order; several
trades in the same second are normal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.data.importers._bars import check_symbol
from tt_platform.data.importers._header import map_header, read_header
from tt_platform.data.importers._table import RawTable, read_table

# Plausible epoch range for exchange trades; outside it the column is not a time
_MIN_EPOCH_S, _MAX_EPOCH_S = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01


def _check_trades(table: RawTable) -> None:
    price = table.frame["price"].to_numpy()
    size = table.frame["size"].to_numpy()
    table.fail_first(~np.isfinite(price) | (price <= 0), "trade price <= 0 or not finite")
    table.fail_first(~np.isfinite(size) | (size < 0), "trade amount < 0 or not finite")


def read_bitstamp_trades(path: str | Path, symbol: str = "BTCUSD") -> pd.DataFrame:
    path = Path(path)
    symbol = check_symbol(symbol, path)
    table = read_table(path, ["unix", "price", "size"], floats=["price", "size"], ints=["unix"])
    seconds = table.frame["unix"].to_numpy()
    table.fail_first((seconds < _MIN_EPOCH_S) | (seconds > _MAX_EPOCH_S), "unix time (seconds) out of range")
    _check_trades(table)
    ts = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")
    return pd.DataFrame({"symbol": symbol, "ts": ts, "price": table.frame["price"], "size": table.frame["size"]})


def read_mtgox_trades(path: str | Path, symbol: str = "BTCUSD") -> pd.DataFrame:
    path = Path(path)
    symbol = check_symbol(symbol, path)
    names = map_header(path, read_header(path), {"id": ("id", "tid"), "price": ("price",), "size": ("amount", "size"), "side": ("type", "side")}, line=1)
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=["price", "size"], ints=["id"], optional=optional, skip_lines=1)
    micros = table.frame["id"].to_numpy()
    table.fail_first(
        (micros < _MIN_EPOCH_S * 1_000_000) | (micros > _MAX_EPOCH_S * 1_000_000), "trade id is not a microsecond epoch time"
    )
    _check_trades(table)
    side = table.frame["side"].str.lower()
    table.fail_first(~side.isin(["bid", "ask"]).to_numpy(), "type must be 'bid' or 'ask'")
    ts = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "price": table.frame["price"],
            "size": table.frame["size"],
            "trade_id": micros,
            "side": side.to_numpy(),
        }
    )
