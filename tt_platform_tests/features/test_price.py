"""Hand-checked values of price and volume features on tiny series."""

import numpy as np
import pandas as pd
import pytest

from tt_platform.features.compute import compute_features
from tt_platform.features.spec import FeatureSet, FeatureSpec

from .helpers import make_bars


def raw_of(bars, function, normalize_window=2, **params):
    fs = FeatureSet(name="t", version="1", normalize_window=normalize_window, features=(FeatureSpec(name="f", function=function, params=params),))
    m = compute_features(bars, fs)
    return m.raw[:, 0, 0], m.mask[:, 0, 0], m


def test_one_bar_and_n_bar_returns():
    bars = make_bars("AAA", [100, 110, 99, 99])
    raw, _, _ = raw_of(bars, "return", window=1)
    np.testing.assert_allclose(raw, [np.nan, 0.10, -0.10, 0.0], equal_nan=True)
    raw, _, _ = raw_of(bars, "return", window=2)
    np.testing.assert_allclose(raw, [np.nan, np.nan, -0.01, -0.10], equal_nan=True)
    raw, _, _ = raw_of(bars, "log_return", window=1)
    np.testing.assert_allclose(raw[1:], np.log([1.1, 0.9, 1.0]))


def test_atr_matches_wilder_hand_computation():
    high = [10.0, 11.0, 12.0, 11.5, 13.0, 12.0]
    low = [9.0, 9.5, 10.5, 10.0, 11.0, 11.0]
    close = [9.5, 10.5, 11.0, 11.0, 12.5, 11.5]
    bars = make_bars("AAA", close, open_=close, high=high, low=low)
    # True range from bar 1: max(h, prev c) - min(l, prev c)
    tr = [11.0 - 9.5, 12.0 - 10.5, 11.5 - 10.0, 13.0 - 11.0, 12.5 - 11.0]
    atr3 = np.mean(tr[:3])  # TA-Lib seeds with the mean of the first `period` ranges
    atr4 = (atr3 * 2 + tr[3]) / 3
    atr5 = (atr4 * 2 + tr[4]) / 3
    raw, mask, _ = raw_of(bars, "atr_pct", period=3)
    np.testing.assert_allclose(raw[3:], np.array([atr3, atr4, atr5]) / np.array(close[3:]))
    assert np.isnan(raw[:3]).all()
    assert not mask.any()  # 3 + 6*3 bars of settling have not passed yet
    raw, _, _ = raw_of(bars, "true_range_pct")
    np.testing.assert_allclose(raw[1:], np.array(tr) / np.array(close[:-1]))


def test_gap_close_location_and_distance_from_high():
    bars = make_bars("AAA", [10, 12, 11], open_=[10, 11, 13], high=[10, 13, 13], low=[10, 10, 10.5])
    raw, _, _ = raw_of(bars, "gap_pct")
    np.testing.assert_allclose(raw, [np.nan, 0.1, 13 / 12 - 1], equal_nan=True)
    raw, mask, _ = raw_of(bars, "close_location")
    np.testing.assert_allclose(raw, [0.5, 2 / 3, 0.2])  # flat first bar -> 0.5
    assert mask.all()  # not z-scored, no warmup
    raw, _, _ = raw_of(bars, "distance_from_high", window=2)
    np.testing.assert_allclose(raw, [np.nan, 12 / 13 - 1, 11 / 13 - 1], equal_nan=True)


def test_sma_deviation_volatility_and_range_compression():
    close = [100, 102, 101, 105, 104]
    bars = make_bars("AAA", close)
    raw, _, _ = raw_of(bars, "sma_deviation", window=3)
    np.testing.assert_allclose(raw[2:], [101 / 101 - 1, 105 / np.mean([102, 101, 105]) - 1, 104 / np.mean([101, 105, 104]) - 1])
    raw, _, _ = raw_of(bars, "volatility", window=3)
    logret = np.diff(np.log(close))
    np.testing.assert_allclose(raw[3:], [np.std(logret[0:3]), np.std(logret[1:4])])
    assert np.isnan(raw[:3]).all()
    raw, _, _ = raw_of(bars, "range_compression", short=1, long=2)
    tr = np.abs(np.diff(close)).astype(float)  # open == close -> true range is the close move
    np.testing.assert_allclose(raw[2:], tr[1:] / ((tr[1:] + tr[:-1]) / 2))


def test_volume_zscore_spike_and_zero_volume():
    volume = [100, 100, 100, 100, 10_000]
    bars = make_bars("AAA", [10] * 5, volume=volume)
    raw, _, _ = raw_of(bars, "volume_zscore", window=3)
    lv = np.log1p(np.array(volume, dtype=float))
    expected = (lv[4] - lv[2:5].mean()) / lv[2:5].std()
    np.testing.assert_allclose(raw[2:], [0.0, 0.0, expected])  # constant window -> 0
    raw, _, _ = raw_of(bars, "volume_spike", window=3, threshold=1.0)
    np.testing.assert_array_equal(raw[2:], [0.0, 0.0, 1.0])
    zero = make_bars("AAA", [10] * 4, volume=[0, 0, 0, 5])
    raw, _, _ = raw_of(zero, "volume_ratio", window=2)
    np.testing.assert_allclose(raw[1:], [0.0, 0.0, np.log1p(5) / 2])


def test_rsi_all_gains_is_100():
    bars = make_bars("AAA", np.arange(1, 30, dtype=float))
    raw, _, _ = raw_of(bars, "rsi", period=5)
    np.testing.assert_allclose(raw[5:], 100.0)


def test_intraday_minute_bars_count_bars_not_days():
    ts = pd.date_range("2021-03-01 14:30", periods=6, freq="1min", tz="UTC")
    bars = make_bars("AAA", [100, 101, 102, 103, 104, 105], ts=ts)
    raw, _, m = raw_of(bars, "return", window=5)
    assert raw[5] == pytest.approx(0.05)
    assert list(m.timestamps) == list(ts)
