import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.features.matrix import FeatureMatrix
from tt_platform.store.feature_frames import LONG_COLUMNS, long_to_arrays, long_to_wide, wide_to_arrays, wide_to_long
from tt_platform.store.features import (
    FeatureStoreError,
    delete_features,
    feature_set_names,
    read_feature_matrix,
    read_features_long,
    read_features_wide,
    register_feature_set,
    write_feature_matrix,
    write_features_long,
    write_features_wide,
)
from tt_platform.store.query import read_frame
from tt_platform.store.schema import features_view


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


def as_stored(frame):
    """``frame`` as the store returns it: float32 precision, non-finite values NaN."""
    out = frame.copy()
    for column in ("ret_1d", "vol_20d"):
        values = out[column].to_numpy(dtype=np.float64)
        out[column] = np.where(np.isfinite(values), values.astype(np.float32).astype(np.float64), np.nan)
    return out


def random_matrix(n_t=40, symbols=("AAA", "BBB", "CCC"), names=("f0", "f1", "f2", "f3"), seed=0, set_hash="fsx"):
    """A matrix with awkward float32 bit patterns, invalid cells and cells without a bar."""
    rng = np.random.default_rng(seed)
    shape = (n_t, len(symbols), len(names))
    values = rng.normal(size=shape).astype(np.float32)
    values.reshape(-1)[:6] = [-0.0, np.float32(1e-45), np.finfo(np.float32).max, -np.finfo(np.float32).max,
                              np.finfo(np.float32).tiny, np.float32(1) / np.float32(3)]
    mask = rng.random(shape) > 0.2
    mask.reshape(-1)[:6] = True
    present = rng.random(shape[:2]) > 0.1
    present[0, :] = True
    mask &= present[:, :, None]
    values[~mask] = 0.0
    return FeatureMatrix(
        timestamps=pd.date_range("2020-01-01", periods=n_t, freq="D", tz="UTC"),
        symbols=list(symbols),
        feature_names=list(names),
        values=values,
        raw=np.full(shape, np.nan),
        mask=mask,
        feature_set_hash=set_hash,
        present=present,
    )


def assert_same_matrix(got, expected):
    assert got.timestamps.equals(expected.timestamps)
    assert got.symbols == expected.symbols and got.feature_names == expected.feature_names
    assert got.values.dtype == np.float32
    np.testing.assert_array_equal(got.values.view(np.uint32), expected.values.view(np.uint32))  # bit-identical
    np.testing.assert_array_equal(got.mask, expected.mask)
    np.testing.assert_array_equal(got.present, expected.present)


# -- pure conversions -----------------------------------------------------------------------


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


def test_wide_and_long_frames_give_the_same_arrays():
    wide = wide_to_arrays(wide_frame())
    long = long_to_arrays(wide_to_long(wide_frame(), "fs1"))
    assert wide.feature_names == long.feature_names == ["ret_1d", "vol_20d"]
    assert wide.values.dtype == np.float32 and int(wide.valid.sum()) == 9
    assert not wide.values[~wide.valid].any()  # 0 where not valid
    for name in ("symbol_codes", "ts_ns", "values", "valid"):
        np.testing.assert_array_equal(getattr(long, name), getattr(wide, name))


def test_frames_that_cannot_be_stored_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        wide_to_arrays(pd.concat([wide_frame(), wide_frame().head(1)]))
    with pytest.raises(ValueError, match="float32 range"):
        wide_to_arrays(wide_frame().assign(ret_1d=1e300))
    long = wide_to_long(wide_frame(), "fs1")
    with pytest.raises(ValueError, match="duplicate"):
        long_to_arrays(pd.concat([long, long.head(1)]))
    with pytest.raises(ValueError, match="marked valid are NaN"):
        long_to_arrays(long.assign(valid=True))


# -- frame writers ----------------------------------------------------------------------------


def test_features_round_trip_through_the_table(store_engine):
    assert write_features_wide(store_engine, wide_frame(), "fs1") == 8  # (symbol, ts) rows
    assert write_features_wide(store_engine, wide_frame(), "fs1") == 0  # idempotent
    write_features_wide(store_engine, wide_frame().assign(ret_1d=1.0), "fs2")
    long = read_features_long(store_engine, "fs1")
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 16 and set(long["feature_set_hash"]) == {"fs1"}
    assert long["valid"].dtype == bool and long["valid"].sum() == 9
    assert long["value"].isna().sum() == 7  # NaN and inf are stored as not valid, read as NaN
    assert long[["instrument", "ts", "feature"]].equals(
        long[["instrument", "ts", "feature"]].sort_values(["instrument", "ts", "feature"])
    )
    wide = read_features_wide(store_engine, "fs1")
    pd.testing.assert_frame_equal(wide, as_stored(wide_frame()), check_dtype=False)
    assert feature_set_names(store_engine, "fs1") == ["ret_1d", "vol_20d"]


def test_changed_rows_are_updated_and_counted(store_engine):
    write_features_wide(store_engine, wide_frame(), "fs1")
    changed = wide_frame()
    changed.loc[1, "ret_1d"] = 0.5
    changed = changed[["symbol", "ts", "vol_20d", "ret_1d"]]  # column order does not matter
    assert write_features_wide(store_engine, changed, "fs1") == 1
    assert read_features_wide(store_engine, "fs1").loc[1, "ret_1d"] == 0.5
    with pytest.raises(FeatureStoreError, match="has features"):
        write_features_wide(store_engine, wide_frame().drop(columns="vol_20d"), "fs1")


def test_feature_reads_filter_by_symbol_time_and_name(store_engine):
    write_features_wide(store_engine, wide_frame(), "fs1")
    out = read_features_long(store_engine, "fs1", symbols="bbb", start="2024-01-02", end="2024-01-03", names=["ret_1d"])
    assert out[["instrument", "feature"]].drop_duplicates().values.tolist() == [["BBB", "ret_1d"]]
    assert out["ts"].tolist() == list(pd.date_range("2024-01-02", periods=2, freq="D", tz="UTC"))
    assert out["value"].tolist() == [float(np.float32(0.03)), 0.0]
    wide = read_features_wide(store_engine, "fs1", symbols=["AAA"], names=["vol_20d"])
    assert list(wide.columns) == ["symbol", "ts", "vol_20d"] and len(wide) == 4
    assert read_features_long(store_engine, "nope").empty
    assert read_features_long(store_engine, "fs1", symbols="ZZZ").empty


def test_long_writes_default_valid_and_deletes_by_set(store_engine):
    long = wide_to_long(wide_frame(), "fs1").drop(columns="valid")
    assert write_features_long(store_engine, long) == 8
    assert read_features_long(store_engine, "fs1")["valid"].sum() == 9
    with pytest.raises(ValueError, match=r"missing columns \['feature'\]"):
        write_features_long(store_engine, long.drop(columns="feature"))
    assert delete_features(store_engine, "fs1", symbols="AAA") == 4
    assert set(read_features_long(store_engine, "fs1")["instrument"]) == {"BBB"}
    assert delete_features(store_engine, "fs1", start="2024-01-03") == 2
    assert len(read_features_wide(store_engine, "fs1")) == 2


# -- matrices -----------------------------------------------------------------------------------


def test_matrix_round_trip_is_bit_identical(store_engine):
    matrix = random_matrix()
    written = write_feature_matrix(store_engine, matrix)
    stored_cells = int(matrix.present.sum())
    assert (written.rows, written.values, written.symbols) == (stored_cells, stored_cells * 4, 3)
    assert written.rows_by_month == {
        "2020-01": int(matrix.present[:31].sum()),
        "2020-02": int(matrix.present[31:].sum()),
    }
    assert (written.first_ts, written.last_ts) == (matrix.timestamps[0], matrix.timestamps[-1])
    assert_same_matrix(read_feature_matrix(store_engine, "fsx", ["CCC", "AAA", "BBB"]), matrix)
    assert_same_matrix(read_feature_matrix(store_engine, "fsx"), matrix)  # all symbols
    # a feature subset in another order, a time range and some symbols
    part = read_feature_matrix(store_engine, "fsx", ["BBB"], "2020-01-05", "2020-01-20", feature_names=["f2", "f0"])
    rows = (matrix.timestamps >= "2020-01-05") & (matrix.timestamps <= "2020-01-20")
    expected = matrix.select_symbols(["BBB"])._take(rows=np.flatnonzero(rows & matrix.present[:, 1]))
    np.testing.assert_array_equal(part.values.view(np.uint32), expected.values[:, :, [2, 0]].view(np.uint32))
    np.testing.assert_array_equal(part.mask, expected.mask[:, :, [2, 0]])
    with pytest.raises(FeatureStoreError, match="no features"):
        read_feature_matrix(store_engine, "fsx", feature_names=["f9"])
    assert read_feature_matrix(store_engine, "unknown", ["AAA"]).shape == (0, 0, 0)


def test_the_view_shows_the_long_rows(store_engine):
    matrix = random_matrix(n_t=10)
    write_feature_matrix(store_engine, matrix)
    statement = sa.select(*features_view.c).order_by(
        features_view.c.instrument, features_view.c.ts, features_view.c.feature
    )
    from_view = read_frame(store_engine, statement)
    long = read_features_long(store_engine, "fsx")
    assert list(from_view.columns) == LONG_COLUMNS and len(from_view) == matrix.present.sum() * 4
    pd.testing.assert_frame_equal(from_view, long)
    assert from_view.loc[~from_view["valid"], "value"].isna().all()
    with store_engine.connect() as conn:
        one = conn.execute(
            sa.text("SELECT value FROM tt_features WHERE feature_set_hash = 'fsx' AND instrument = 'AAA' "
                    "AND ts = '2020-01-01' AND feature = 'f1'")
        ).scalar_one()
    assert one == float(matrix.values[0, 0, 1])


def test_a_window_write_replaces_only_that_window(store_engine):
    matrix = random_matrix()
    write_feature_matrix(store_engine, matrix)
    # recompute AAA and BBB on days 10..29 from a shorter history: days 25..29 vanished
    shorter = random_matrix(seed=1).slice_time(None, matrix.timestamps[24])
    written = write_feature_matrix(
        store_engine, shorter, symbols=["aaa", "BBB"], start=matrix.timestamps[10], end=matrix.timestamps[29]
    )
    assert written.deleted == int(matrix.present[10:30, :2].sum())
    assert written.rows == int(shorter.present[10:25, :2].sum())
    back = read_feature_matrix(store_engine, "fsx")
    for column, symbol in enumerate(matrix.symbols):
        got = back.select_symbols([symbol])
        stored_ts = set(got.timestamps[got.present[:, 0]])
        if symbol == "CCC":  # outside the window's symbols: untouched
            assert stored_ts == set(matrix.timestamps[matrix.present[:, 2]])
            continue
        keep = np.r_[np.arange(10), np.arange(30, 40)]
        expected_ts = set(matrix.timestamps[keep][matrix.present[keep, column]])
        expected_ts |= set(shorter.timestamps[10:25][shorter.present[10:25, column]])
        assert stored_ts == expected_ts  # nothing stale at days 25..29
        day = matrix.timestamps[12]
        if shorter.present[12, column]:
            t = got.timestamps.get_loc(day)
            np.testing.assert_array_equal(got.values[t, 0], shorter.values[12, column])


def test_invalid_batches_write_nothing(store_engine):
    matrix = random_matrix()
    write_feature_matrix(store_engine, matrix)
    broken_values = matrix.values.copy()
    t, s, f = np.argwhere(matrix.mask)[5]
    broken_values[t, s, f] = np.nan
    broken = FeatureMatrix(
        timestamps=matrix.timestamps, symbols=matrix.symbols, feature_names=matrix.feature_names,
        values=np.zeros_like(broken_values), raw=matrix.raw, mask=matrix.mask,
        feature_set_hash="fsx", present=matrix.present,
    )
    object.__setattr__(broken, "values", broken_values)  # past FeatureMatrix's own guard
    with pytest.raises(FeatureStoreError, match="marked valid are NaN or inf"):
        write_feature_matrix(store_engine, broken)
    renamed = random_matrix(names=("f0", "f1", "f2", "other"))
    with pytest.raises(FeatureStoreError, match="recorded with features"):
        write_feature_matrix(store_engine, renamed)
    assert_same_matrix(read_feature_matrix(store_engine, "fsx"), matrix)  # as before


def test_feature_sets_record_names_once(store_engine):
    assert register_feature_set(store_engine, "s1", ["a", "b"]) == ["a", "b"]
    assert register_feature_set(store_engine, "s1", ["a", "b"], definition={"name": "x"}) == ["a", "b"]
    with pytest.raises(FeatureStoreError, match="recorded with features"):
        register_feature_set(store_engine, "s1", ["b", "a"])
    with pytest.raises(FeatureStoreError, match="duplicate"):
        register_feature_set(store_engine, "s2", ["a", "a"])
    with store_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT definition FROM tt_feature_sets WHERE feature_set_hash = 's1'")).scalar() == {"name": "x"}


def test_rows_of_another_layout_are_refused(store_engine):
    register_feature_set(store_engine, "s1", ["a", "b", "c"])
    with pytest.raises(sa.exc.IntegrityError, match="arrays_shape"):
        with store_engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tt_feature_values VALUES ('s1', 'AAA', now(), '{1, NULL, 2}', '{t, t, t}')"))
    with store_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tt_feature_values VALUES ('s1', 'AAA', now(), '{1, 2}', '{t, t}')"))
    with pytest.raises(FeatureStoreError, match="do not all hold 3 features"):
        read_feature_matrix(store_engine, "s1")
