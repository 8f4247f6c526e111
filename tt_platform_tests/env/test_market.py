from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tt_platform.env import MarketData, MarketDataError
from tt_platform.env.market import infer_periods_per_year
from tt_platform_tests.env.markets import random_market


@dataclass
class FakeFeatureMatrix:
    """The fields of features.compute.FeatureMatrix that MarketData reads."""

    timestamps: pd.DatetimeIndex
    symbols: list
    feature_names: list
    values: np.ndarray
    mask: np.ndarray
    feature_set_hash: str = "fs-1"


def bars_frame():
    ts = pd.date_range("2021-03-01", periods=5, freq="D", tz="UTC")
    rows = []
    for i, t in enumerate(ts):
        rows.append(("AAA", t, 10 + i, 11 + i, 9 + i, 10.5 + i, 1000))
        if i not in (0, 3):  # BBB lists on day 1 and misses day 3
            rows.append(("BBB", t, 20 + i, 21 + i, 19 + i, 20.5 + i, 500))
    return pd.DataFrame(rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume"]), ts


def test_from_frames_aligns_forward_fills_and_never_back_fills():
    bars, ts = bars_frame()
    values = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    matrix = FakeFeatureMatrix(ts, ["AAA", "BBB"], ["a", "b", "c"], values,
                               np.ones((5, 2, 3), dtype=bool))
    market = MarketData.from_frames(bars, matrix)
    assert market.symbols == ["AAA", "BBB"]
    assert market.feature_set_hash == "fs-1"
    np.testing.assert_allclose(market.close[:, 0], [10.5, 11.5, 12.5, 13.5, 14.5])
    assert np.isnan(market.close[0, 1])               # before BBB's first bar: unknown
    assert market.close[3, 1] == pytest.approx(22.5)  # gap on day 3: last close (day 2)
    np.testing.assert_array_equal(market.tradable[:, 1], [False, True, True, False, True])
    assert market.open[1, 1] == pytest.approx(21.0)
    np.testing.assert_array_equal(market.features, values)


def test_from_frames_names_missing_symbols_and_attributes():
    bars, ts = bars_frame()
    matrix = FakeFeatureMatrix(ts, ["AAA", "ZZZ"], ["a"], np.zeros((5, 2, 1)),
                               np.ones((5, 2, 1), dtype=bool))
    with pytest.raises(MarketDataError, match="ZZZ"):
        MarketData.from_frames(bars, matrix)
    with pytest.raises(MarketDataError, match="values"):
        MarketData.from_frames(bars, object())


def test_shape_and_price_validation_name_the_field():
    ts = pd.date_range("2021-01-01", periods=4, freq="D", tz="UTC")
    with pytest.raises(MarketDataError, match="close has shape"):
        MarketData.from_close(ts, ["A"], np.ones((3, 1)))
    with pytest.raises(MarketDataError, match=r"price <= 0 for A"):
        MarketData.from_close(ts, ["A"], np.array([[1.0], [0.0], [1.0], [1.0]]))
    with pytest.raises(MarketDataError, match="tz-aware"):
        MarketData.from_close(ts.tz_localize(None), ["A"], np.ones((4, 1)))
    with pytest.raises(MarketDataError, match="strictly increasing"):
        MarketData.from_close(ts[::-1], ["A"], np.ones((4, 1)))


def test_periods_per_year_from_spacing():
    daily = pd.date_range("2021-01-04", periods=50, freq="B", tz="UTC")
    minutes = pd.date_range("2021-01-04 14:30", periods=50, freq="min", tz="UTC")
    assert infer_periods_per_year(daily) == pytest.approx(252)
    assert infer_periods_per_year(minutes) == pytest.approx(252 * 390)


def test_volatility_uses_the_past_only():
    market = random_market(t=80, n=2, seed=3)
    vol = market.annualised_volatility(10).copy()
    assert np.isnan(vol[9]).all() and np.isfinite(vol[10]).all()
    changed = market.close.copy()
    changed[50:] *= np.linspace(1.0, 3.0, 30)[:, None]  # rewrite the future after bar 49
    other = MarketData.from_close(market.timestamps, market.symbols, changed, market.features)
    np.testing.assert_array_equal(other.annualised_volatility(10)[:50], vol[:50])
    assert not np.allclose(other.annualised_volatility(10)[60:], vol[60:])


@pytest.mark.parametrize("rows", [5, 19, 20, 119, 600, 1500])
def test_rolling_std_equals_pandas_per_column_on_short_and_long_frames(rows):
    from tt_platform.env.market import rolling_std

    rng = np.random.default_rng(rows)
    values = rng.normal(0.0, 1e-3, (rows, 7))
    values[0] = np.nan  # the first return
    values[3:6, 2] = np.nan  # a hole
    values[:, 4] = 2e-3  # flat: zero volatility
    got = rolling_std(values, 20)
    expected = pd.DataFrame(values).rolling(20, min_periods=20).std(ddof=1).to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0.0)
    assert got.shape == values.shape and np.isnan(got[:19]).all()


def test_slice_take_and_data_hash():
    market = random_market(t=60)
    part = market.slice(market.timestamps[10], market.timestamps[19])
    assert part.n_steps == 10 and part.timestamps[0] == market.timestamps[10]
    np.testing.assert_array_equal(part.close, market.close[10:20])
    assert market.take(slice(0, 60)).data_hash() == market.data_hash()
    assert part.data_hash() != market.data_hash()
    assert random_market(t=60, seed=1).data_hash() != market.data_hash()
