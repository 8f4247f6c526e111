import numpy as np
import pandas as pd
import pytest

from tt_platform.features.compute import compute_features
from tt_platform.features.matrix import FeatureMatrix, FeatureMatrixError
from tt_platform.features.sets import basic_feature_set

from .helpers import random_walk_bars


@pytest.fixture(scope="module")
def matrix():
    bars = random_walk_bars(["SPY", "AAA", "BBB"], 120, seed=3)
    bars = bars.drop(bars.index[(bars["symbol"] == "BBB") & (bars.index % 7 == 0)]).reset_index(drop=True)
    return compute_features(bars, basic_feature_set())


def test_to_long_columns_rows_and_values(matrix):
    long = matrix.to_long()
    assert list(long.columns) == ["instrument", "ts", "feature", "value", "valid"]
    assert len(long) == int(matrix.present.sum()) * len(matrix.feature_names)
    row = long[(long["instrument"] == "AAA") & (long["feature"] == "ret_5")].iloc[100]
    t, n = matrix.timestamps.get_loc(row["ts"]), matrix.symbols.index("AAA")
    assert row["value"] == pytest.approx(float(matrix.values[t, n, 1]))
    assert row["valid"] == matrix.mask[t, n, 1]
    assert str(long["ts"].dt.tz) == "UTC"


def test_long_round_trip_with_and_without_raw(matrix):
    back = FeatureMatrix.from_long(matrix.to_long(include_raw=True), matrix.feature_set_hash, feature_names=matrix.feature_names)
    assert back.timestamps.equals(matrix.timestamps) and back.symbols == matrix.symbols
    np.testing.assert_array_equal(back.values, matrix.values)
    np.testing.assert_array_equal(back.mask, matrix.mask)
    np.testing.assert_array_equal(back.raw, matrix.raw)
    np.testing.assert_array_equal(back.present, matrix.present)
    lean = FeatureMatrix.from_long(matrix.to_long(), matrix.feature_set_hash)
    np.testing.assert_array_equal(lean.values, matrix.values)
    assert np.isnan(lean.raw).all()


def test_from_long_rejects_duplicates_and_missing_columns(matrix):
    long = matrix.to_long()
    with pytest.raises(FeatureMatrixError, match="duplicate"):
        FeatureMatrix.from_long(pd.concat([long, long.iloc[:1]]), "h")
    with pytest.raises(FeatureMatrixError, match=r"missing columns \['valid'\]"):
        FeatureMatrix.from_long(long.drop(columns=["valid"]), "h")


def test_slice_time_is_inclusive_and_select_symbols_keeps_order(matrix):
    part = matrix.slice_time(matrix.timestamps[10], matrix.timestamps[19].tz_convert("America/New_York"))
    assert len(part.timestamps) == 10
    np.testing.assert_array_equal(part.values, matrix.values[10:20])
    assert len(matrix.slice_time(end=matrix.timestamps[4]).timestamps) == 5
    picked = matrix.select_symbols(["BBB", "SPY"])
    assert picked.symbols == ["BBB", "SPY"]
    np.testing.assert_array_equal(picked.raw[:, 0], matrix.raw[:, matrix.symbols.index("BBB")])
    with pytest.raises(KeyError, match="ZZZ"):
        matrix.select_symbols(["ZZZ"])


def test_matrix_refuses_nan_values_and_wrong_shapes(matrix):
    values = matrix.values.copy()
    values[0, 0, 0] = np.nan
    with pytest.raises(FeatureMatrixError, match="NaN"):
        FeatureMatrix(matrix.timestamps, matrix.symbols, matrix.feature_names, values, matrix.raw, matrix.mask, "h")
    with pytest.raises(FeatureMatrixError, match="shape"):
        FeatureMatrix(matrix.timestamps, matrix.symbols, matrix.feature_names, values[1:], matrix.raw, matrix.mask, "h")


def test_from_long_accepts_rows_as_the_store_returns_them(matrix):
    """Plain strings, alphabetical feature order, NULL values on invalid rows."""
    stored = matrix.to_long()
    stored["instrument"] = stored["instrument"].astype(str)
    stored["feature"] = stored["feature"].astype(str)
    stored["value"] = stored["value"].astype(object).where(stored["valid"], None)
    stored = stored.sort_values(["instrument", "ts", "feature"]).reset_index(drop=True)
    back = FeatureMatrix.from_long(stored, basic_feature_set())
    assert back.feature_names == basic_feature_set().feature_names
    assert back.feature_set_hash == basic_feature_set().hash
    np.testing.assert_array_equal(back.values, matrix.values)
    np.testing.assert_array_equal(back.mask, matrix.mask)
