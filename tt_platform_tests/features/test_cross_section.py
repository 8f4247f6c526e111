"""Cross-sectional features: hand-checked ranks (with ties), medians, benchmark and fallback."""

import logging

import numpy as np
import pandas as pd
import pytest

from tt_platform.features.compute import compute_features
from tt_platform.features.cross_section import EQUAL_WEIGHT_BENCHMARK
from tt_platform.features.spec import FeatureSet, FeatureSpec

from .helpers import make_bars


def feature_set(function, **params):
    return FeatureSet(name="x", version="1", normalize_window=2, features=(FeatureSpec(name="f", function=function, params=params),))


def universe(closes: dict[str, list[float]]) -> pd.DataFrame:
    return pd.concat([make_bars(s, c) for s, c in closes.items()], ignore_index=True)


BARS = universe({"AAA": [100, 110], "BBB": [50, 55], "CCC": [20, 19], "SPY": [400, 408]})


def column(matrix, symbol):
    return matrix.raw[:, matrix.symbols.index(symbol), 0]


def test_momentum_rank_averages_ties():
    m = compute_features(BARS, feature_set("momentum_rank", window=1))
    # returns at t=1: AAA .10, BBB .10, CCC -.05, SPY .02 -> ranks 3.5, 3.5, 1, 2 of 4
    assert column(m, "AAA")[1] == pytest.approx((3.5 - 1) / 3)
    assert column(m, "BBB")[1] == pytest.approx((3.5 - 1) / 3)
    assert column(m, "CCC")[1] == pytest.approx(0.0)
    assert column(m, "SPY")[1] == pytest.approx(1 / 3)
    assert np.isnan(m.raw[0]).all()
    assert m.mask[1].all() and not m.mask[0].any()


def test_relative_strength_vs_median_and_benchmark():
    m = compute_features(BARS, feature_set("relative_strength_median", window=1))
    median = np.median([0.10, 0.10, -0.05, 0.02])
    assert column(m, "CCC")[1] == pytest.approx(-0.05 - median)
    m = compute_features(BARS, feature_set("relative_strength_benchmark", window=1))
    assert m.benchmark == "SPY"
    assert column(m, "AAA")[1] == pytest.approx(0.10 - 0.02)
    assert column(m, "SPY")[1] == pytest.approx(0.0)


def test_benchmark_absent_falls_back_to_equal_weight_and_says_so(caplog):
    bars = BARS[BARS["symbol"] != "SPY"]
    with caplog.at_level(logging.WARNING):
        m = compute_features(bars, feature_set("relative_strength_benchmark", window=1))
    assert m.benchmark == EQUAL_WEIGHT_BENCHMARK
    assert "'SPY' is not in the universe" in caplog.text
    assert column(m, "CCC")[1] == pytest.approx(-0.05 - np.mean([0.10, 0.10, -0.05]))


def test_symbol_without_a_bar_is_masked_and_excluded_from_the_cross_section():
    days = pd.date_range("2021-01-04", periods=3, freq="D", tz="UTC")
    bars = pd.concat(
        [
            make_bars("AAA", [100, 110, 121], ts=days),
            make_bars("BBB", [100, 90, 99], ts=days),
            make_bars("CCC", [100, 150], ts=days[[0, 2]]),  # no bar on day 1
        ],
        ignore_index=True,
    )
    m = compute_features(bars, feature_set("momentum_rank", window=1))
    ccc = column(m, "CCC")
    assert np.isnan(ccc[1]) and not m.mask[1, m.symbols.index("CCC"), 0]
    assert column(m, "AAA")[1] == pytest.approx(1.0)  # ranked among AAA and BBB only
    assert column(m, "BBB")[1] == pytest.approx(0.0)
    # day 2: CCC's 1-bar return is over its own previous bar (day 0): +50 %, the best
    assert ccc[2] == pytest.approx(1.0)
    m = compute_features(bars, feature_set("return", window=1))
    assert column(m, "CCC")[2] == pytest.approx(0.5)


def test_lone_symbol_ranks_in_the_middle():
    m = compute_features(make_bars("AAA", [1, 2, 3]), feature_set("momentum_rank", window=1))
    np.testing.assert_allclose(m.raw[1:, 0, 0], 0.5)
