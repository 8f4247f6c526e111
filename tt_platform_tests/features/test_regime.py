import numpy as np

from tt_platform.features.compute import compute_features
from tt_platform.features.spec import FeatureSet, FeatureSpec

from .helpers import make_bars


def raw(bars, function, **params):
    fs = FeatureSet(name="r", version="1", features=(FeatureSpec(name="f", function=function, params=params),))
    return compute_features(bars, fs).raw[:, 0, 0]


def test_volatility_regime_labels_follow_the_ratio_thresholds():
    rng = np.random.default_rng(3)
    moves = np.concatenate([rng.normal(0, 0.002, 40), rng.normal(0, 0.03, 15), rng.normal(0, 0.001, 40)])
    close = 100 * np.exp(np.cumsum(moves))
    bars = make_bars("AAA", close)
    ratio = raw(bars, "volatility_ratio", short=5, long=20)
    logret = np.diff(np.log(close))
    t = 60
    expected = np.std(logret[t - 5 : t]) / np.std(logret[t - 20 : t])
    np.testing.assert_allclose(ratio[t], expected)
    label = raw(bars, "volatility_regime", short=5, long=20, low=0.8, high=1.25)
    defined = ~np.isnan(ratio)
    np.testing.assert_array_equal(label[defined], np.where(ratio[defined] > 1.25, 1, np.where(ratio[defined] < 0.8, -1, 0)))
    assert label[45] == 1.0  # inside the turbulent stretch
    assert label[62] == -1.0  # calm again while the long window still holds the turbulence
    assert np.isnan(label[:20]).all()


def test_trend_label_up_down_and_range():
    n = 120
    up = make_bars("AAA", 100 * 1.01 ** np.arange(n), high=100 * 1.01 ** np.arange(n) * 1.005, low=100 * 1.01 ** np.arange(n) * 0.995)
    down_close = 100 * 0.99 ** np.arange(n)
    down = make_bars("AAA", down_close, high=down_close * 1.005, low=down_close * 0.995)
    zigzag_close = 100 + np.tile([0.0, 1.0], n // 2)
    zigzag = make_bars("AAA", zigzag_close, high=zigzag_close + 0.5, low=zigzag_close - 0.5)
    assert raw(up, "trend_label")[-1] == 1.0
    assert raw(down, "trend_label")[-1] == -1.0
    assert raw(zigzag, "trend_label")[-1] == 0.0
    assert raw(up, "adx")[-1] > 50
    assert raw(up, "di_spread")[-1] > 0 > raw(down, "di_spread")[-1]
    slope = raw(up, "ema_slope", period=10, lag=5)
    np.testing.assert_allclose(slope[-1], 1.01**5 - 1, rtol=1e-6)  # EMA of a geometric series grows at the same rate
