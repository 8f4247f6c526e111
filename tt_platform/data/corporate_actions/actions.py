"""The corporate-actions table and its builders from vendor files.

One row per event: ``symbol, ex_date, action_type, value`` where ``ex_date`` is 00:00 UTC of the
ex-date (the stamp of that day's daily bar), ``action_type`` is ``split`` or ``cash_dividend``,
and ``value`` is the split ratio (new shares per old share: 7.0 for AAPL's 7:1, 0.05 for AIG's
1:20 reverse split) or the cash paid per share *outstanding on the ex-date*, in the raw price
terms of that day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

ACTION_COLUMNS = ["symbol", "ex_date", "action_type", "value"]
ACTION_TYPES = ("split", "cash_dividend")
ActionType = Literal["split", "cash_dividend"]


class CorporateActionError(ValueError):
    """An actions table or an adjustment request that cannot be honoured; names the event."""


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype="str"),
            "ex_date": pd.Series(dtype="datetime64[ns, UTC]"),
            "action_type": pd.Series(dtype="str"),
            "value": pd.Series(dtype="float64"),
        }
    )


def normalize_actions(frame: pd.DataFrame, origin: str = "actions") -> pd.DataFrame:
    """Coerce and validate an actions table; sorted by (symbol, ex_date, action_type)."""
    missing = [c for c in ACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise CorporateActionError(f"{origin}: missing columns {missing}")
    if frame.empty:
        return empty_actions()
    out = frame[ACTION_COLUMNS].copy()
    out["symbol"] = out["symbol"].astype(str).str.strip().str.upper()
    out["ex_date"] = _ex_dates(out["ex_date"], origin)
    out["action_type"] = out["action_type"].astype(str).str.strip().str.lower()
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype("float64")
    unknown = ~out["action_type"].isin(ACTION_TYPES)
    if unknown.any():
        row = out.loc[unknown].iloc[0]
        raise CorporateActionError(f"{origin}: unknown action_type {row['action_type']!r} ({row['symbol']} {_day(row['ex_date'])})")
    bad = ~np.isfinite(out["value"].to_numpy()) | (out["value"].to_numpy() <= 0)
    if bad.any():
        row = out.loc[bad].iloc[0]
        raise CorporateActionError(
            f"{origin}: {row['action_type']} value must be a positive number, got {row['value']} "
            f"({row['symbol']} {_day(row['ex_date'])})"
        )
    return out.sort_values(["symbol", "ex_date", "action_type"], kind="stable").reset_index(drop=True)


def _ex_dates(values: pd.Series, origin: str) -> pd.Series:
    """Ex-dates at 00:00 UTC; a missing one stays NaT (the caller decides), one that is not a date
    is an error naming it."""
    given = (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
    parsed = _in_range(pd.to_datetime(values, utc=True, errors="coerce"))
    if (parsed.isna().to_numpy() & given).any():
        # the format is inferred from the first entry: an ISO date after another spelling still counts
        parsed = parsed.fillna(_in_range(pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")))
    unreadable = parsed.isna().to_numpy() & given
    if unreadable.any():
        first = values[unreadable].iloc[0]
        raise CorporateActionError(f"{origin}: ex_date {first!r} is not a date ({int(unreadable.sum())} such row(s))")
    return parsed.dt.normalize().astype("datetime64[ns, UTC]")


def _in_range(stamps: pd.Series) -> pd.Series:
    """``stamps`` with those a nanosecond timestamp cannot hold (year -1, 99999) as NaT."""
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    return stamps.where(stamps.isna() | ((stamps >= low) & (stamps <= high)))


def _day(stamp: pd.Timestamp) -> str:
    return "no ex_date" if pd.isna(stamp) else f"{stamp:%Y-%m-%d}"


def consolidate_actions(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per (symbol, ex_date, action_type): same-day dividends summed, splits multiplied.

    Tables keyed that way (the store's) need it; the adjustment engine combines them the same way.
    """
    actions = normalize_actions(actions)
    if actions.empty:
        return actions
    key = ["symbol", "ex_date", "action_type"]
    dividends = actions[actions["action_type"] == "cash_dividend"].groupby(key, as_index=False)["value"].sum()
    splits = actions[actions["action_type"] == "split"].groupby(key, as_index=False)["value"].prod()
    return normalize_actions(pd.concat([dividends, splits], ignore_index=True))


def _events(symbols, dates, kinds, values) -> pd.DataFrame:
    return pd.DataFrame({"symbol": symbols, "ex_date": dates, "action_type": kinds, "value": values})


def actions_from_quandl_wiki(table: pd.DataFrame) -> pd.DataFrame:
    """Events from a WIKI table (``read_quandl_wiki_table``): ex-dividend > 0, split ratio != 1.

    WIKI states both in raw terms of the ex-date, which is what the actions table holds.
    """
    dividends = table[table["ex_dividend"] > 0]
    splits = table[table["split_ratio"] != 1.0]
    frame = pd.concat(
        [
            _events(dividends["symbol"], dividends["ts"], "cash_dividend", dividends["ex_dividend"]),
            _events(splits["symbol"], splits["ts"], "split", splits["split_ratio"]),
        ],
        ignore_index=True,
    )
    return normalize_actions(frame, "quandl wiki")


def actions_from_zipline_csvdir(table: pd.DataFrame) -> pd.DataFrame:
    """Events from a csvdir table (``read_zipline_csvdir_table``), dividends restated in raw terms.

    csvdir states a dividend in the split-adjusted terms of the file's end (AAPL 2012: 0.37857 =
    2.65 / 7); multiplying by the ratios of the file's later splits gives the cash actually paid
    per share outstanding on the ex-date.
    """
    pieces = []
    for symbol, group in table.sort_values("ts").groupby("symbol", sort=True):
        split = group["split"].to_numpy(dtype="float64")
        # product of split ratios strictly after each row
        later = np.concatenate([np.cumprod(split[::-1])[::-1][1:], [1.0]])
        paid = group["dividend"].to_numpy(dtype="float64") * later
        has_dividend = group["dividend"].to_numpy() > 0
        has_split = split != 1.0
        pieces.append(_events(symbol, group["ts"][has_dividend], "cash_dividend", paid[has_dividend]))
        pieces.append(_events(symbol, group["ts"][has_split], "split", split[has_split]))
    frame = pd.concat(pieces, ignore_index=True) if pieces else empty_actions()
    return normalize_actions(frame, "zipline csvdir")


def read_actions_csv(path: str | Path) -> pd.DataFrame:
    """An actions table stored as CSV (``symbol,ex_date,action_type|type,value,...``)."""
    # ex_date as text: 20140312 read as a number would be taken for nanoseconds after 1970
    frame = pd.read_csv(path, dtype={"ex_date": str})
    if "action_type" not in frame.columns and "type" in frame.columns:
        frame = frame.rename(columns={"type": "action_type"})
    return normalize_actions(frame, str(path))
