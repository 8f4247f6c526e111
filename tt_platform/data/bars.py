"""The canonical in-memory bar frame every source produces and every consumer reads.

One shape everywhere keeps importers, the IB client, the store and the feature library
interchangeable: columns ``BAR_COLUMNS``, ``ts`` tz-aware UTC, prices and volume float64,
sorted by (symbol, ts), unique per (symbol, ts). Daily bars are stamped 00:00 UTC of the
session date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]


class BarValidationError(ValueError):
    """Bars that break the canonical contract; the message names the origin and the problem."""


def empty_bars() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    frame["symbol"] = frame["symbol"].astype("object")
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame[BAR_COLUMNS]


def normalize_bars(frame: pd.DataFrame, origin: str = "bars") -> pd.DataFrame:
    """Coerce dtypes, sort, and check the contract. ``origin`` names the source in errors."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise BarValidationError(f"{origin}: missing columns {missing}")
    out = frame[BAR_COLUMNS].copy()
    out["symbol"] = out["symbol"].astype(str).str.upper()
    ts = pd.to_datetime(out["ts"], utc=True)
    out["ts"] = ts.astype("datetime64[ns, UTC]")
    for column in PRICE_COLUMNS + ["volume"]:
        out[column] = pd.to_numeric(out[column], errors="raise").astype("float64")
    out = out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    validate_bars(out, origin)
    return out


def validate_bars(frame: pd.DataFrame, origin: str = "bars") -> None:
    """Raise BarValidationError naming the first offending row class."""
    if frame.empty:
        return
    values = frame[PRICE_COLUMNS + ["volume"]].to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        bad = frame.index[~np.isfinite(values).all(axis=1)][0]
        raise BarValidationError(f"{origin}: non-finite price or volume at row {bad}")
    if (frame[PRICE_COLUMNS].to_numpy() <= 0).any():
        bad = frame.index[(frame[PRICE_COLUMNS] <= 0).any(axis=1)][0]
        raise BarValidationError(f"{origin}: price <= 0 at row {bad}")
    if frame.duplicated(["symbol", "ts"]).any():
        dup = frame.loc[frame.duplicated(["symbol", "ts"]), ["symbol", "ts"]].iloc[0]
        raise BarValidationError(f"{origin}: duplicate bar for {dup['symbol']} at {dup['ts']}")
