"""Missing bars: find them against the expected sessions and, if asked, forward-fill them.

Policies:
* ``"skip"``: leave the bars as they are and only report what is missing;
* ``"ffill"``: add a bar for each missing expected stamp *between a symbol's first and last real
  bar* with open = high = low = close = the previous close and volume 0. Nothing is invented
  before the first real bar (before listing) or after the last (after delisting or the data end).

The output carries a boolean ``filled`` column (True for added rows) and is idempotent: filling
an already-filled frame adds nothing. The ``FillReport`` says what was done; callers log it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS

Policy = Literal["skip", "ffill"]


@dataclass(frozen=True)
class SymbolFill:
    symbol: str
    first_bar: pd.Timestamp
    last_bar: pd.Timestamp
    missing: tuple[pd.Timestamp, ...]
    filled: tuple[pd.Timestamp, ...]
    unexpected: int  # real bars on stamps the sessions do not list (kept as they are)


@dataclass(frozen=True)
class FillReport:
    policy: Policy
    symbols: dict[str, SymbolFill] = field(default_factory=dict)

    @property
    def n_missing(self) -> int:
        return sum(len(s.missing) for s in self.symbols.values())

    @property
    def n_filled(self) -> int:
        return sum(len(s.filled) for s in self.symbols.values())

    def summary(self) -> str:
        parts = []
        for s in self.symbols.values():
            if not s.missing and not s.unexpected:
                continue
            text = f"{s.symbol}: {len(s.missing)} missing, {len(s.filled)} filled"
            if s.missing:
                text += f" (first {s.missing[0]:%Y-%m-%d %H:%M}, last {s.missing[-1]:%Y-%m-%d %H:%M})"
            if s.unexpected:
                text += f", {s.unexpected} bar(s) off the calendar"
            parts.append(text)
        head = f"fill_missing policy={self.policy}: {self.n_missing} missing, {self.n_filled} filled"
        return head + ("; " + "; ".join(parts) if parts else "")


def fill_missing(
    bars: pd.DataFrame,
    sessions: pd.DatetimeIndex | Mapping[str, pd.DatetimeIndex],
    policy: Policy = "skip",
) -> tuple[pd.DataFrame, FillReport]:
    """Canonical bars (+ ``filled`` column) and a report; ``sessions`` is one index or one per symbol."""
    if policy not in ("skip", "ffill"):
        raise ValueError(f"policy must be 'skip' or 'ffill', not {policy!r}")
    missing_columns = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing_columns:
        raise ValueError(f"bars lack columns {missing_columns}")
    base = bars.copy()
    base["filled"] = base["filled"].astype(bool) if "filled" in base.columns else False
    base = base[BAR_COLUMNS + ["filled"]].sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    stamps = _ns(base["ts"])
    closes = base["close"].to_numpy()
    shared = None if isinstance(sessions, Mapping) else np.unique(_ns(sessions))
    report: dict[str, SymbolFill] = {}
    added_symbols, added_stamps, added_prices = [], [], []
    for symbol, rows in base.groupby("symbol", sort=True).indices.items():
        expected = shared if shared is not None else _sessions_for(sessions, str(symbol))
        present = stamps[rows]
        window = expected[np.searchsorted(expected, present[0], "left"): np.searchsorted(expected, present[-1], "right")]
        missing = window[~_isin_sorted(window, present)]
        unexpected = int((~_isin_sorted(present, expected)).sum())
        fill = policy == "ffill" and len(missing) > 0
        if fill:
            # missing stamps lie strictly inside [first, last]: a previous real bar always exists
            previous = np.searchsorted(present, missing, side="right") - 1
            added_symbols.append(np.full(len(missing), symbol, dtype=object))
            added_stamps.append(missing)
            added_prices.append(closes[rows][previous])
        missing_ts = tuple(pd.DatetimeIndex(missing).tz_localize("UTC"))
        report[str(symbol)] = SymbolFill(
            symbol=str(symbol),
            first_bar=pd.Timestamp(present[0], tz="UTC"),
            last_bar=pd.Timestamp(present[-1], tz="UTC"),
            missing=missing_ts,
            filled=missing_ts if fill else (),
            unexpected=unexpected,
        )
    out = base
    if added_stamps:
        price = np.concatenate(added_prices)
        added = pd.DataFrame(
            {
                "symbol": np.concatenate(added_symbols),
                "ts": pd.DatetimeIndex(np.concatenate(added_stamps)).tz_localize("UTC").astype("datetime64[ns, UTC]"),
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": 0.0,
                "filled": True,
            }
        )
        added["symbol"] = added["symbol"].astype(base["symbol"].dtype)
        out = pd.concat([base, added], ignore_index=True).sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    out["filled"] = out["filled"].astype(bool)
    return out, FillReport(policy, report)


def _isin_sorted(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    if len(sorted_pool) == 0:
        return np.zeros(len(values), dtype=bool)
    position = np.searchsorted(sorted_pool, values).clip(max=len(sorted_pool) - 1)
    return sorted_pool[position] == values


def _ns(values) -> np.ndarray:
    """Sorted-order-preserving UTC nanoseconds (avoids object arrays of Timestamps)."""
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8


def _sessions_for(sessions, symbol: str) -> np.ndarray:
    if symbol not in sessions:
        raise KeyError(f"no sessions given for symbol {symbol!r}")
    return np.unique(_ns(sessions[symbol]))
