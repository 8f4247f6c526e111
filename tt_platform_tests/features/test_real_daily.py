"""The full set on real adjusted daily bars (market_lab_adjusted)."""

import numpy as np
import pandas as pd
import pytest

from tt_platform.features.compute import compute_features
from tt_platform.features.sets import full_feature_set

from .helpers import load_market_lab

SYMBOLS = ["SPY", "QQQ", "AAPL", "TLT", "GLD", "XLE"]


@pytest.fixture(scope="module")
def real(shared_data):
    bars = load_market_lab(shared_data, SYMBOLS, "2017-01-01", "2021-12-31")
    return bars, compute_features(bars, full_feature_set())


def test_shape_validity_and_benchmark(real):
    bars, m = real
    assert m.symbols == sorted(SYMBOLS) and m.benchmark == "SPY"
    assert len(m.timestamps) == bars["ts"].nunique()
    assert m.mask[full_feature_set().warmup_bars :].all()
    np.testing.assert_array_equal(m.frame("rs_bench_20", raw=True)["SPY"].dropna().to_numpy(), 0.0)
    ranks = m.raw[:, :, m.feature_index("mom_rank_60")]
    assert np.nanmin(ranks) == 0.0 and np.nanmax(ranks) == 1.0


def test_returns_and_atr_agree_with_independent_computation(real):
    bars, m = real
    aapl = bars[bars["symbol"] == "AAPL"].set_index("ts")
    np.testing.assert_allclose(m.frame("ret_20", raw=True)["AAPL"].to_numpy()[20:], aapl["close"].pct_change(20).to_numpy()[20:])
    prev = aapl["close"].shift(1)
    tr = pd.concat([aapl["high"] - aapl["low"], (aapl["high"] - prev).abs(), (aapl["low"] - prev).abs()], axis=1).max(axis=1)
    atr = np.full(len(tr), np.nan)
    atr[14] = tr.iloc[1:15].mean()
    for t in range(15, len(tr)):
        atr[t] = (atr[t - 1] * 13 + tr.iloc[t]) / 14
    np.testing.assert_allclose(m.frame("atr_pct_14", raw=True)["AAPL"].to_numpy()[14:], (atr / aapl["close"].to_numpy())[14:], rtol=1e-9)


def test_march_2020_is_turbulent_and_trending_down(real):
    _, m = real
    crash = pd.Timestamp("2020-03-16", tz="UTC")
    regime = m.frame("vol_regime", raw=True).loc[crash]
    assert regime["SPY"] == 1.0 and regime["QQQ"] == 1.0
    assert m.frame("trend_label", raw=True).loc[crash, "SPY"] == -1.0
    calm = m.frame("vol_regime", raw=True).loc["2017-06-01":"2017-12-31", "SPY"]
    assert (calm <= 0).mean() > 0.8
