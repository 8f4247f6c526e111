"""Backward price adjustment for splits and cash dividends (CRSP / Quandl ratio method).

For every event with ex-date ``e``, all bars *before* ``e`` are multiplied by

* split of ratio ``r``: prices × 1/r, volume × r;
* cash dividend ``D``: prices × (1 − D / P), where ``P`` is the raw close of the last bar before
  ``e`` (restated per post-split share when a split shares the ex-date); volume unchanged.

Factors of later events compound. The basis is ``as_of`` (default: each symbol's last bar): the
bars from the last event on keep their raw values, events after ``as_of`` are ignored. This is
what vendors publish ("adjusted relative to the last row"), and ``as_of`` gives the point-in-time
series a backtest at that date could have seen: backward-adjusted *levels* depend on later
events, returns computed from them do not.

``mode`` is the adjusted/unadjusted toggle: ``"none"`` returns the raw bars, ``"split"`` applies
splits only, ``"split_dividend"`` both (total-return prices).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, PRICE_COLUMNS, normalize_bars
from tt_platform.data.corporate_actions.actions import CorporateActionError, normalize_actions

AdjustmentMode = Literal["none", "split", "split_dividend"]
MODES: tuple[str, ...] = ("none", "split", "split_dividend")


def adjustment_factors(
    raw_bars: pd.DataFrame,
    actions: pd.DataFrame,
    mode: AdjustmentMode = "split_dividend",
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Per bar (same order as the sorted canonical frame): ``price_factor`` and ``volume_factor``."""
    bars = normalize_bars(raw_bars, origin="raw bars")
    price, volume = _factors(bars, actions, mode, as_of)
    return pd.DataFrame({"symbol": bars["symbol"], "ts": bars["ts"], "price_factor": price, "volume_factor": volume})


def adjust_bars(
    raw_bars: pd.DataFrame,
    actions: pd.DataFrame,
    mode: AdjustmentMode = "split_dividend",
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Backward-adjusted canonical bars (see module docstring); ``mode="none"`` is a no-op copy."""
    bars = normalize_bars(raw_bars, origin="raw bars")
    price, volume = _factors(bars, actions, mode, as_of)
    out = bars.copy()
    for column in PRICE_COLUMNS:
        out[column] = bars[column].to_numpy() * price
    out["volume"] = bars["volume"].to_numpy() * volume
    return out[BAR_COLUMNS]


def _factors(bars: pd.DataFrame, actions: pd.DataFrame, mode: str, as_of) -> tuple[np.ndarray, np.ndarray]:
    """Price and volume factors for canonical (sorted) bars."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    price = np.ones(len(bars))
    volume = np.ones(len(bars))
    if mode == "none" or bars.empty:
        return price, volume
    events = _daily_events(normalize_actions(actions))
    if events.empty:
        return price, volume
    cutoff = _cutoff(as_of)
    stamps_all = _ns(bars["ts"])
    closes_all = bars["close"].to_numpy()
    by_symbol = events.groupby("symbol", sort=False).indices
    for symbol, rows in bars.groupby("symbol", sort=False).indices.items():
        if symbol not in by_symbol:
            continue
        chosen = events.iloc[by_symbol[symbol]]
        stamps = stamps_all[rows]
        limit = cutoff if cutoff is not None else int(stamps[-1])
        p, v = _symbol_factors(
            str(symbol), stamps, closes_all[rows], _ns(chosen["ex_date"]),
            chosen["split"].to_numpy(), chosen["cash_dividend"].to_numpy(), mode, limit,
        )
        price[rows], volume[rows] = p, v
    return price, volume


def _daily_events(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per (symbol, ex_date): ``split`` (product of ratios, 1 if none) and
    ``cash_dividend`` (sum, 0 if none), sorted by symbol and ex_date."""
    if actions.empty:
        return pd.DataFrame(columns=["symbol", "ex_date", "split", "cash_dividend"])
    key = ["symbol", "ex_date"]
    splits = actions[actions["action_type"] == "split"].groupby(key)["value"].prod().rename("split")
    dividends = actions[actions["action_type"] == "cash_dividend"].groupby(key)["value"].sum().rename("cash_dividend")
    daily = pd.concat([splits, dividends], axis=1)
    daily["split"] = daily["split"].fillna(1.0)
    daily["cash_dividend"] = daily["cash_dividend"].fillna(0.0)
    return daily.reset_index().sort_values(key, kind="stable").reset_index(drop=True)


def select_feed(
    raw_bars: pd.DataFrame,
    actions: pd.DataFrame,
    adjustment: AdjustmentMode | bool = "split_dividend",
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The adjusted/unadjusted toggle for callers: ``True`` = total-return prices, ``False`` = raw."""
    if isinstance(adjustment, bool):
        adjustment = "split_dividend" if adjustment else "none"
    return adjust_bars(raw_bars, actions, adjustment, as_of=as_of)


def undo_split_adjustment(adjusted_bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Raw bars from split-adjusted ones (e.g. zipline csvdir) whose basis is their last bar."""
    bars = normalize_bars(adjusted_bars, origin="split-adjusted bars")
    splits = normalize_actions(actions)
    splits = splits[splits["action_type"] == "split"]
    # split factors do not depend on prices, so the forward factors invert exactly
    factors = adjustment_factors(bars, splits, "split")
    out = bars.copy()
    for column in PRICE_COLUMNS:
        out[column] = bars[column].to_numpy() / factors["price_factor"].to_numpy()
    out["volume"] = bars["volume"].to_numpy() / factors["volume_factor"].to_numpy()
    return out[BAR_COLUMNS]


def _ns(values) -> np.ndarray:
    """UTC nanoseconds of a tz-aware column or index (avoids object arrays of Timestamps)."""
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8


def _cutoff(as_of) -> int | None:
    if as_of is None:
        return None
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.value


def _symbol_factors(symbol, stamps, closes, ex_dates, ratio, dividend, mode, limit) -> tuple[np.ndarray, np.ndarray]:
    """Factors for one symbol; times in UTC nanoseconds, one event row per ex-date (sorted)."""
    # events after the basis are ignored; events with no bar before them change nothing
    keep = (ex_dates <= limit) & (ex_dates > stamps[0])
    ex_dates, ratio, dividend = ex_dates[keep], ratio[keep], dividend[keep]
    if len(ex_dates) == 0:
        return np.ones(len(stamps)), np.ones(len(stamps))
    step = 1.0 / ratio
    if mode == "split_dividend" and dividend.any():
        previous = np.searchsorted(stamps, ex_dates, side="left") - 1  # last bar before the ex-date
        close_before = closes[previous] / ratio  # per post-split share when a split shares the date
        bad = dividend >= close_before
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CorporateActionError(
                f"{symbol} {pd.Timestamp(ex_dates[i], tz='UTC'):%Y-%m-%d}: dividend {dividend[i]} >= previous close {close_before[i]:.6g}"
            )
        step = step * (1.0 - dividend / close_before)
    # a bar's factor is the product of the steps of all events after it
    suffix = np.concatenate([np.cumprod(step[::-1])[::-1], [1.0]])
    volume_suffix = np.concatenate([np.cumprod(ratio[::-1])[::-1], [1.0]])
    position = np.searchsorted(ex_dates, stamps, side="right")  # first event with ex-date > bar
    return suffix[position], volume_suffix[position]
