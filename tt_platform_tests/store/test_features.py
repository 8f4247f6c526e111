import numpy as np
import pandas as pd
import pytest

from tt_platform.store.feature_frames import LONG_COLUMNS, long_to_wide, wide_to_long
from tt_platform.store.features import (
    delete_features,
    read_features_long,
    read_features_wide,
    write_features_long,
    write_features_wide,
)


def wide_frame():
    ts = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": ["AAA"] * 4 + ["BBB"] * 4,
            "ts": list(ts) * 2,
            "ret_1d": [np.nan, 0.01, -0.02, 0.005, np.nan, 0.03, 0.0, -0.01],
            "vol_20d": [np.nan, np.nan, 0.2, 0.21, np.nan, np.nan, 0.3, np.inf],
        }
    )


def test_wide_to_long_marks_non_finite_values_invalid():
    long = wide_to_long(wide_frame(), "fs1")
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 16
    assert long["valid"].sum() == 6 + 3  # ret_1d: 6 finite values, vol_20d: 3 (inf is not finite)
    assert set(long["feature_set_hash"]) == {"fs1"}
    with pytest.raises(ValueError, match="id columns"):
        wide_to_long(wide_frame().drop(columns="ts"), "fs1")


def test_long_to_wide_inverts_wide_to_long():
    wide = wide_frame()
    back = long_to_wide(wide_to_long(wide, "fs1"))
    expected = wide.assign(vol_20d=wide["vol_20d"].replace(np.inf, np.nan))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_features_round_trip_through_the_table(store_engine):
    assert write_features_wide(store_engine, wide_frame(), "fs1") == 16
    assert write_features_wide(store_engine, wide_frame(), "fs1") == 0  # idempotent
    write_features_wide(store_engine, wide_frame().assign(ret_1d=1.0), "fs2")
    long = read_features_long(store_engine, "fs1")
    assert len(long) == 16 and set(long["feature_set_hash"]) == {"fs1"}
    assert long["valid"].dtype == bool and long["valid"].sum() == 9
    assert long["value"].isna().sum() == 6  # NaN is stored as NULL
    infinite = long[np.isinf(long["value"])]
    assert len(infinite) == 1 and not infinite["valid"].iloc[0]  # inf is kept, flagged invalid
    wide = read_features_wide(store_engine, "fs1")
    expected = wide_frame().assign(vol_20d=wide_frame()["vol_20d"].replace(np.inf, np.nan))
    pd.testing.assert_frame_equal(wide, expected, check_dtype=False)


def test_feature_reads_filter_by_symbol_time_and_name(store_engine):
    write_features_wide(store_engine, wide_frame(), "fs1")
    out = read_features_long(store_engine, "fs1", symbols="bbb", start="2024-01-02", end="2024-01-03", names=["ret_1d"])
    assert out[["instrument", "feature"]].drop_duplicates().values.tolist() == [["BBB", "ret_1d"]]
    assert out["ts"].tolist() == list(pd.date_range("2024-01-02", periods=2, freq="D", tz="UTC"))
    assert out["value"].tolist() == [0.03, 0.0]


def test_long_writes_default_valid_and_deletes_by_set(store_engine):
    long = wide_to_long(wide_frame(), "fs1").drop(columns="valid")
    write_features_long(store_engine, long)
    assert read_features_long(store_engine, "fs1")["valid"].sum() == 9
    with pytest.raises(ValueError, match=r"missing columns \['feature'\]"):
        write_features_long(store_engine, long.drop(columns="feature"))
    assert delete_features(store_engine, "fs1", symbols="AAA") == 8
    assert set(read_features_long(store_engine, "fs1")["instrument"]) == {"BBB"}
