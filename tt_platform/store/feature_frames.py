"""Conversions between feature frames and arrays. Pure pandas/numpy, no I/O.

- the wide frame: (symbol, ts, one column per feature);
- the long form of the ``tt_features`` view: one row per instrument, timestamp and feature;
- ``FeatureArrays``: what the store writes, one row per (symbol, ts) with a float32 value and a
  validity flag per feature, in one feature order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LONG_COLUMNS = ["instrument", "ts", "feature_set_hash", "feature", "value", "valid"]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FeatureArrays:
    """Rows of features: per row a symbol code, a timestamp and ``[F]`` values and flags."""

    symbols: list[str]  # labels of symbol_codes
    symbol_codes: np.ndarray  # int64 [n]
    ts_ns: np.ndarray  # int64 [n], nanoseconds since the Unix epoch, UTC
    feature_names: list[str]
    values: np.ndarray  # float32 [n, F], 0 where not valid
    valid: np.ndarray  # bool [n, F]

    def reordered(self, feature_names: Sequence[str]) -> FeatureArrays:
        """The same rows with the features in ``feature_names`` order (the same names)."""
        names = list(feature_names)
        if names == self.feature_names:
            return self
        if sorted(names) != sorted(self.feature_names):
            raise ValueError(f"cannot reorder features {self.feature_names} as {names}")
        order = [self.feature_names.index(n) for n in names]
        return FeatureArrays(
            self.symbols, self.symbol_codes, self.ts_ns, names, self.values[:, order], self.valid[:, order]
        )


def _float32_values(values: np.ndarray, valid: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 values (0 where not valid) and the flags; a valid value float32 cannot hold raises."""
    too_large = valid & (np.abs(np.where(valid, values, 0.0)) > FLOAT32_MAX)
    if too_large.any():
        raise ValueError(f"{what}: {int(too_large.sum())} values exceed the float32 range the store keeps")
    return np.where(valid, values, 0.0).astype(np.float32), valid


def _utc_ns(ts: pd.Series, what: str) -> np.ndarray:
    stamps = pd.to_datetime(ts, utc=True)
    if stamps.isna().any():
        raise ValueError(f"{what}: missing timestamps")
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _symbol_codes(symbols: pd.Series, what: str) -> tuple[np.ndarray, list[str]]:
    if symbols.isna().any():
        raise ValueError(f"{what}: missing symbols")
    codes, uniques = pd.factorize(symbols.astype(str).str.strip().str.upper(), sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def wide_to_arrays(
    wide: pd.DataFrame, *, symbol_column: str = "symbol", ts_column: str = "ts"
) -> FeatureArrays:
    """``FeatureArrays`` of a wide frame; a value is valid when it is finite."""
    feature_columns = _feature_columns(wide, symbol_column, ts_column)
    codes, symbols = _symbol_codes(wide[symbol_column], "wide feature frame")
    ts_ns = _utc_ns(wide[ts_column], "wide feature frame")
    keys = pd.DataFrame({"s": codes, "t": ts_ns})
    if keys.duplicated().any():
        example = wide.loc[keys.duplicated().to_numpy(), [symbol_column, ts_column]].head(1).to_dict("records")
        raise ValueError(f"wide feature frame: duplicate ({symbol_column}, {ts_column}) rows, e.g. {example}")
    raw = wide[feature_columns].apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    values, valid = _float32_values(raw, np.isfinite(raw), "wide feature frame")
    return FeatureArrays(symbols, codes, ts_ns, [str(c) for c in feature_columns], values, valid)


def long_to_arrays(long: pd.DataFrame) -> FeatureArrays:
    """``FeatureArrays`` of long rows (one feature set): one row per (instrument, ts).

    ``valid`` defaults to "value is finite"; a row marked valid must hold a finite value. A
    feature missing for some (instrument, ts) is not valid there. Features keep the order in
    which they first appear.
    """
    missing = [c for c in ("instrument", "ts", "feature", "value") if c not in long.columns]
    if missing:
        raise ValueError(f"long feature frame: missing columns {missing}")
    value = pd.to_numeric(long["value"], errors="raise").to_numpy(dtype=np.float64)
    finite = np.isfinite(value)
    if "valid" in long.columns:
        valid = long["valid"].to_numpy(dtype=bool)
        if (valid & ~finite).any():
            raise ValueError(f"long feature frame: {int((valid & ~finite).sum())} rows marked valid are NaN or inf")
    else:
        valid = finite
    codes, symbols = _symbol_codes(long["instrument"], "long feature frame")
    ts_ns = _utc_ns(long["ts"], "long feature frame")
    feature_codes, names = pd.factorize(long["feature"].astype(str), sort=False)
    row_codes, row_keys = pd.factorize(pd.MultiIndex.from_arrays([codes, ts_ns]), sort=True)
    n_rows, n_features = len(row_keys), len(names)
    cell = row_codes.astype(np.int64) * n_features + feature_codes
    if (np.bincount(cell, minlength=n_rows * n_features) > 1).any():
        raise ValueError("long feature frame: duplicate (instrument, ts, feature) rows")
    flat_values = np.zeros(n_rows * n_features)
    flat_valid = np.zeros(n_rows * n_features, dtype=bool)
    flat_values[cell] = np.where(valid, value, 0.0)
    flat_valid[cell] = valid
    values, flags = _float32_values(
        flat_values.reshape(n_rows, n_features), flat_valid.reshape(n_rows, n_features), "long feature frame"
    )
    return FeatureArrays(
        symbols,
        row_keys.get_level_values(0).to_numpy(dtype=np.int64),
        row_keys.get_level_values(1).to_numpy(dtype=np.int64),
        [str(n) for n in names],
        values,
        flags,
    )


def _feature_columns(wide: pd.DataFrame, symbol_column: str, ts_column: str) -> list:
    missing = [c for c in (symbol_column, ts_column) if c not in wide.columns]
    if missing:
        raise ValueError(f"wide feature frame lacks the id columns {missing}")
    feature_columns = [c for c in wide.columns if c not in (symbol_column, ts_column)]
    if not feature_columns:
        raise ValueError("wide feature frame has no feature columns")
    return feature_columns


def wide_to_long(
    wide: pd.DataFrame, feature_set_hash: str, *, symbol_column: str = "symbol", ts_column: str = "ts"
) -> pd.DataFrame:
    """Melt ``wide`` (symbol, ts, feature columns...) into the long form.

    A value is valid when it is finite; NaN (warm-up, missing inputs) is kept as an invalid row
    so that readers can tell "computed but undefined" from "never computed".
    """
    feature_columns = _feature_columns(wide, symbol_column, ts_column)
    if not feature_set_hash:
        raise ValueError("feature_set_hash must be non-empty")
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
