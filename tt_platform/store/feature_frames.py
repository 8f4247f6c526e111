"""Conversions between wide feature frames (one column per feature) and the long form of
``tt_features`` (one row per instrument, timestamp and feature). Pure pandas, no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

LONG_COLUMNS = ["instrument", "ts", "feature_set_hash", "feature", "value", "valid"]


def wide_to_long(
    wide: pd.DataFrame, feature_set_hash: str, *, symbol_column: str = "symbol", ts_column: str = "ts"
) -> pd.DataFrame:
    """Melt ``wide`` (symbol, ts, feature columns...) into the long form.

    A value is valid when it is finite; NaN (warm-up, missing inputs) is kept as an invalid row
    so that readers can tell "computed but undefined" from "never computed".
    """
    missing = [c for c in (symbol_column, ts_column) if c not in wide.columns]
    if missing:
        raise ValueError(f"wide feature frame lacks the id columns {missing}")
    if not feature_set_hash:
        raise ValueError("feature_set_hash must be non-empty")
    feature_columns = [c for c in wide.columns if c not in (symbol_column, ts_column)]
    if not feature_columns:
        raise ValueError("wide feature frame has no feature columns")
    long = wide.melt(
        id_vars=[symbol_column, ts_column], value_vars=feature_columns, var_name="feature", value_name="value"
    ).rename(columns={symbol_column: "instrument", ts_column: "ts"})
    long["value"] = pd.to_numeric(long["value"], errors="raise").astype("float64")
    long["feature"] = long["feature"].astype(str)
    long["feature_set_hash"] = feature_set_hash
    long["valid"] = np.isfinite(long["value"].to_numpy())
    return long[LONG_COLUMNS]


def long_to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long form back to (symbol, ts, feature columns...); invalid values become NaN."""
    if long.empty:
        return pd.DataFrame(columns=["symbol", "ts"])
    values = long["value"].where(long["valid"].astype(bool))
    wide = (
        long.assign(value=values)
        .pivot_table(index=["instrument", "ts"], columns="feature", values="value", aggfunc="first", dropna=False)
        .reset_index()
        .rename(columns={"instrument": "symbol"})
    )
    wide.columns.name = None
    features = sorted(c for c in wide.columns if c not in ("symbol", "ts"))
    return wide[["symbol", "ts", *features]].sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
