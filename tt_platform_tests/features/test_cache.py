import numpy as np
import pytest

from tt_platform.features.cache import FeatureCache
from tt_platform.features.sets import basic_feature_set, full_feature_set

from .helpers import random_walk_bars


@pytest.fixture()
def bars():
    return random_walk_bars(["SPY", "AAA"], 150, seed=9)


def test_miss_then_hit_returns_identical_matrix(tmp_path, bars):
    cache = FeatureCache(tmp_path)
    first = cache.get_or_compute(bars, basic_feature_set())
    second = cache.get_or_compute(bars, basic_feature_set())
    assert (cache.misses, cache.hits) == (1, 1)
    for name in ("values", "raw", "mask", "present"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.timestamps.equals(first.timestamps)
    assert (second.symbols, second.feature_names, second.feature_set_hash) == (first.symbols, first.feature_names, first.feature_set_hash)
    assert not list(tmp_path.rglob("*.tmp"))


def test_other_feature_set_range_or_symbols_miss(tmp_path, bars):
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(bars, basic_feature_set())
    cache.get_or_compute(bars, full_feature_set())
    cache.get_or_compute(bars[bars["ts"] > bars["ts"].min()], basic_feature_set())
    cache.get_or_compute(bars[bars["symbol"] == "AAA"], basic_feature_set())
    assert (cache.misses, cache.hits) == (4, 0)
    assert len(list(tmp_path.rglob("*.npz"))) == 4


def test_changed_bars_for_the_same_key_invalidate_the_entry(tmp_path, bars):
    cache = FeatureCache(tmp_path)
    before = cache.get_or_compute(bars, basic_feature_set())
    corrected = bars.copy()
    corrected.loc[corrected.index[-1], ["close", "high"]] *= 1.5
    after = cache.get_or_compute(corrected, basic_feature_set())
    assert (cache.misses, cache.hits) == (2, 0)
    assert after.raw[-1, 1, 0] != before.raw[-1, 1, 0]
    assert len(list(tmp_path.rglob("*.npz"))) == 1  # replaced in place
    cache.get_or_compute(corrected, basic_feature_set())
    assert cache.hits == 1


def test_invalidate_and_corrupt_entries(tmp_path, bars):
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(bars, basic_feature_set())
    cache.get_or_compute(bars, full_feature_set())
    assert cache.invalidate(basic_feature_set().hash) == 1
    cache.get_or_compute(bars, basic_feature_set())
    assert cache.misses == 3
    for path in tmp_path.rglob("*.npz"):
        path.write_bytes(b"not a zip")
    again = cache.get_or_compute(bars, full_feature_set())
    assert cache.misses == 4 and not np.isnan(again.values).any()
    assert cache.invalidate() == 2
    assert not list(tmp_path.rglob("*.npz"))
