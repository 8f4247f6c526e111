import json

import numpy as np
import pytest

from tt_platform.features.compute import compute_features
from tt_platform.features.drift import drift_report, feature_baseline, population_stability_index
from tt_platform.features.sets import basic_feature_set, full_feature_set

from .helpers import random_walk_bars


@pytest.fixture(scope="module")
def matrix():
    return compute_features(random_walk_bars(["SPY", "AAA", "BBB"], 600, seed=4), full_feature_set())


def test_baseline_is_json_and_describes_valid_raw_values(matrix):
    baseline = feature_baseline(matrix)
    restored = json.loads(json.dumps(baseline, allow_nan=False))
    stats = restored["features"]["ret_1"]
    f = matrix.feature_index("ret_1")
    valid = matrix.raw[:, :, f][matrix.mask[:, :, f]]
    assert stats["count"] == len(valid)
    assert stats["mean"] == pytest.approx(valid.mean())
    assert stats["std"] == pytest.approx(valid.std())
    assert sum(stats["bin_shares"]) == pytest.approx(1.0)
    assert len(stats["bin_shares"]) == len(stats["bin_edges"]) + 1
    assert restored["feature_set_hash"] == matrix.feature_set_hash


def test_same_data_shows_no_drift(matrix):
    report = drift_report(feature_baseline(matrix), matrix)
    assert list(report["feature"]) == matrix.feature_names
    assert not report["drift"].any()
    assert report["psi"].max() < 1e-9 and report["ks"].max() < 1e-12


def test_other_sample_of_same_process_does_not_drift():
    fs = basic_feature_set()
    a = compute_features(random_walk_bars(["AAA", "BBB", "CCC"], 1500, seed=1), fs)
    b = compute_features(random_walk_bars(["AAA", "BBB", "CCC"], 1500, seed=2), fs)
    report = drift_report(feature_baseline(a), b)
    assert not report["drift"].any(), report


def test_shifted_volatility_is_flagged():
    fs = basic_feature_set()
    calm = random_walk_bars(["AAA", "BBB"], 800, seed=1)
    wild = calm.copy()
    for symbol in ("AAA", "BBB"):
        rows = wild["symbol"] == symbol
        logret = np.diff(np.log(calm.loc[rows, "close"].to_numpy()), prepend=np.log(100))
        close = 100 * np.exp(np.cumsum(3 * logret))
        wild.loc[rows, ["open", "high", "low", "close"]] = np.repeat(close[:, None], 4, axis=1)
    report = drift_report(feature_baseline(compute_features(calm, fs)), compute_features(wild, fs)).set_index("feature")
    assert report.loc["vol_20", "drift"] and report.loc["vol_20", "psi"] > 1.0 and report.loc["vol_20", "ks"] > 0.5
    assert report.loc["ret_1", "drift"]


def test_psi_by_hand_and_mismatched_hash(matrix):
    assert population_stability_index([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * np.log(0.5) * -1 + 0.25 * np.log(1.5))
    baseline = feature_baseline(matrix)
    other = compute_features(random_walk_bars(["AAA"], 100, seed=1), basic_feature_set())
    with pytest.raises(ValueError, match="baseline is for feature set"):
        drift_report(baseline, other)
    with pytest.raises(ValueError, match="not a feature baseline"):
        drift_report({"features": {}}, matrix)


def test_matrix_rebuilt_from_long_form_uses_normalized_values(matrix):
    from tt_platform.features.matrix import FeatureMatrix

    stored = FeatureMatrix.from_long(matrix.to_long(), full_feature_set())
    assert stored.feature_names == matrix.feature_names
    baseline = feature_baseline(stored)
    assert baseline["source"] == "values" and baseline["features"]["ret_1"]["count"] > 0
    assert not drift_report(baseline, stored)["drift"].any()
    assert not drift_report(feature_baseline(matrix, source="values"), matrix)["drift"].any()
    with pytest.raises(ValueError, match="has none"):
        drift_report(feature_baseline(matrix), stored)
