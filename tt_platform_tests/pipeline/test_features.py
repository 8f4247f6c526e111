from datetime import date

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.synthetic import generate_bars
from tt_platform.features.cache import FeatureCache
from tt_platform.features.compute import compute_features
from tt_platform.features.sets import basic_feature_set
from tt_platform.pipeline import features as pipeline_features
from tt_platform.pipeline.features import FeatureSummary, build_features, load_feature_matrix
from tt_platform.store.features import FeatureStoreError, read_feature_matrix
from tt_platform.store.prices import delete_bars, read_bars, write_bars

SYMBOLS = ["AAA", "BBB", "CCC"]
START, END = date(2021, 1, 4), date(2021, 3, 31)
DAILY = {"interval": "1d", "adjusted": False}


@pytest.fixture
def stored_bars(store_engine):
    bars = generate_bars(SYMBOLS, "2020-06-01", "2021-03-31", seed=3)
    write_bars(store_engine, bars, source="test", **DAILY)
    return bars


def build(engine, symbols=SYMBOLS, start=START, end=END, **kwargs):
    return build_features(engine, symbols, start, end, feature_set=basic_feature_set(), context_symbols=SYMBOLS,
                          **DAILY, **kwargs)


def expected_matrix(bars, start=START, end=END):
    """What the window should hold: features computed on all bars, cut to the window."""
    matrix = compute_features(bars, basic_feature_set())
    return matrix.slice_time(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"))


def test_build_stores_the_window_and_loads_it_back_exactly(store_engine, stored_bars, tmp_path):
    cache = FeatureCache(tmp_path)
    summary = build(store_engine, cache=cache)
    again = build(store_engine, cache=cache)
    assert (cache.misses, cache.hits) == (1, 1) and summary == again  # idempotent
    n_features = len(basic_feature_set().features)
    in_window = stored_bars[(stored_bars["ts"] >= "2021-01-04") & (stored_bars["ts"] <= "2021-03-31")]
    assert summary.rows == len(in_window) and summary.values == len(in_window) * n_features
    assert summary.symbols == 3 and summary.features == n_features
    assert summary.rows_by_month == in_window["ts"].dt.strftime("%Y-%m").value_counts().sort_index().to_dict()
    assert summary.first_ts == "2021-01-04 00:00:00+00:00" and summary.last_ts == "2021-03-31 00:00:00+00:00"

    loaded = load_feature_matrix(store_engine, SYMBOLS, START, END, basic_feature_set())
    expected = expected_matrix(stored_bars)
    assert loaded.timestamps.equals(expected.timestamps) and loaded.symbols == expected.symbols
    assert loaded.feature_names == expected.feature_names
    np.testing.assert_array_equal(loaded.values.view(np.uint32), expected.values.view(np.uint32))
    np.testing.assert_array_equal(loaded.mask, expected.mask)
    assert loaded.mask.all()  # the warmup came from bars before the window


def test_a_shorter_history_leaves_no_stale_rows(store_engine, stored_bars):
    before = build(store_engine)
    delete_bars(store_engine, "BBB", "2021-03-20", None, **DAILY)  # the vendor withdrew BBB's last days
    after = build(store_engine, symbols=["BBB"])
    removed = int(((stored_bars["symbol"] == "BBB") & (stored_bars["ts"] >= "2021-03-20")).sum())
    assert after.rows == before.rows // 3 - removed
    assert after.rows_by_month["2021-03"] == before.rows_by_month["2021-03"] // 3 - removed
    stored = read_feature_matrix(store_engine, basic_feature_set().hash, SYMBOLS)
    bbb = stored.select_symbols(["BBB"])
    assert bbb.timestamps[bbb.present[:, 0]].max() < pd.Timestamp("2021-03-20", tz="UTC")
    assert stored.present[:, [0, 2]].sum() == 2 * (before.rows // 3)  # AAA and CCC untouched


def test_a_window_without_bars_ends_up_empty(store_engine, stored_bars):
    build(store_engine)
    delete_bars(store_engine, "CCC", None, None, **DAILY)
    summary = build(store_engine, symbols=["CCC"], start=date(2021, 2, 1), end=END)
    assert (summary.rows, summary.symbols, summary.rows_by_month, summary.first_ts) == (0, 0, {}, "")
    stored = read_feature_matrix(store_engine, basic_feature_set().hash, ["CCC"])
    assert stored.timestamps.max() < pd.Timestamp("2021-02-01", tz="UTC")
    # no bars at all for the window's symbols: the window is emptied as well
    delete_bars(store_engine, SYMBOLS, None, None, **DAILY)
    assert build(store_engine, symbols=["AAA"]) == FeatureSummary(0, basic_feature_set().hash, summary.features, 0, "", "")


def test_an_invalid_batch_is_refused_and_the_store_keeps_its_rows(store_engine, stored_bars, monkeypatch):
    build(store_engine)
    kept = read_feature_matrix(store_engine, basic_feature_set().hash, SYMBOLS)

    def poisoned(bars, feature_set):
        matrix = compute_features(bars, feature_set)
        object.__setattr__(matrix, "values", matrix.values.copy())
        matrix.values[-1, 0, 0] = np.inf  # marked valid
        return matrix

    monkeypatch.setattr(pipeline_features, "compute_features", poisoned)
    with pytest.raises(FeatureStoreError, match="marked valid are NaN or inf"):
        build(store_engine)
    after = read_feature_matrix(store_engine, basic_feature_set().hash, SYMBOLS)
    np.testing.assert_array_equal(after.values, kept.values)
    np.testing.assert_array_equal(after.present, kept.present)


def test_loading_features_never_built_says_so(store_engine, stored_bars):
    with pytest.raises(LookupError, match="materialize the features asset"):
        load_feature_matrix(store_engine, SYMBOLS, START, END, basic_feature_set())
    assert len(read_bars(store_engine, ["AAA"])) > 0
