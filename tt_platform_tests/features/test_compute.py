"""compute_features: shapes, masks, normalization, bad input, ragged and intraday data."""

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import BarValidationError
from tt_platform.features.compute import compute_features
from tt_platform.features.normalize import ZSCORE_CLIP
from tt_platform.features.sets import basic_feature_set, full_feature_set
from tt_platform.features.spec import FeatureSet, FeatureSpec

from .helpers import make_bars, random_walk_bars


@pytest.fixture(scope="module")
def walk():
    return random_walk_bars(["SPY", "AAA", "BBB", "CCC"], 400, seed=7)


@pytest.fixture(scope="module")
def full_matrix(walk):
    return compute_features(walk, full_feature_set())


def test_matrix_contract(full_matrix, walk):
    m = full_matrix
    fs = full_feature_set()
    assert m.shape == (400, 4, len(fs.features))
    assert m.values.dtype == np.float32 and m.raw.dtype == np.float64 and m.mask.dtype == bool
    assert str(m.timestamps.tz) == "UTC"
    assert m.symbols == sorted(walk["symbol"].unique())
    assert m.feature_names == fs.feature_names
    assert m.feature_set_hash == fs.hash
    assert not np.isnan(m.values).any()
    assert (m.values[~m.mask] == 0).all()
    assert np.isfinite(m.raw[m.mask]).all()
    assert (np.abs(m.values) <= ZSCORE_CLIP).all()
    # after the longest warmup every entry of a dense universe is valid
    assert m.mask[fs.warmup_bars :].all()
    assert not m.mask[: fs.warmup_bars].all(axis=(1, 2)).any()


def test_each_feature_becomes_valid_exactly_at_its_warmup(full_matrix):
    fs = full_feature_set()
    for f, spec in enumerate(fs.features):
        first_valid = np.argmax(full_matrix.mask[:, :, f], axis=0)
        assert (first_valid == fs.feature_warmup(spec)).all(), spec.name


def test_zscore_normalization_by_hand():
    close = 100 * np.cumprod([1, 1.01, 0.98, 1.03, 1.0, 1.02, 0.97])
    fs = FeatureSet(name="z", version="1", normalize_window=3, features=(FeatureSpec(name="r", function="return"),))
    m = compute_features(make_bars("AAA", close), fs)
    r = m.raw[:, 0, 0]
    for t in range(3, 7):
        window = r[t - 2 : t + 1]
        assert m.values[t, 0, 0] == pytest.approx((r[t] - window.mean()) / window.std(), rel=1e-5)
    np.testing.assert_array_equal(m.mask[:, 0, 0], [False, False, False, True, True, True, True])


def test_zscore_is_clipped():
    # One outlier among n values has z = sqrt(n - 1): 14.1 for a 200-bar window.
    close = [100.0, 100.5] * 110 + [300.0]
    fs = FeatureSet(name="z", version="1", normalize_window=200, features=(FeatureSpec(name="r", function="return"),))
    m = compute_features(make_bars("AAA", close), fs)
    r = m.raw[-200:, 0, 0]
    assert (r[-1] - r.mean()) / r.std() > ZSCORE_CLIP
    assert m.values[-1, 0, 0] == ZSCORE_CLIP


def test_ragged_universe_masks_missing_bars_and_late_listings():
    bars = random_walk_bars(["AAA", "BBB"], 200, seed=1)
    rng = np.random.default_rng(0)
    aaa = bars[bars["symbol"] == "AAA"]
    bbb = bars[bars["symbol"] == "BBB"].iloc[50:]  # listed later
    bbb = bbb.drop(bbb.index[rng.choice(len(bbb), 20, replace=False)])
    ragged = pd.concat([aaa, bbb], ignore_index=True)
    m = compute_features(ragged, basic_feature_set())
    present = m.present[:, 1]
    assert present.sum() == 130
    assert not m.mask[~present, 1].any() and np.isnan(m.raw[~present, 1]).all()
    # BBB alone computes the same features on its own bars as inside the ragged universe
    alone = compute_features(bbb.reset_index(drop=True), basic_feature_set())
    np.testing.assert_array_equal(m.raw[present, 1], alone.raw[:, 0])
    np.testing.assert_array_equal(m.values[present, 1], alone.values[:, 0])
    np.testing.assert_array_equal(m.mask[present, 1], alone.mask[:, 0])
    # its first valid row is counted in its own bars
    assert np.flatnonzero(alone.mask[:, 0, 2])[0] == basic_feature_set().feature_warmup(basic_feature_set().features[2])


def test_nan_handling_zero_volume_and_flat_prices():
    bars = make_bars("AAA", [10.0] * 150, volume=[0.0] * 150)
    m = compute_features(bars, full_feature_set())
    assert not np.isnan(m.values).any()
    assert np.isfinite(m.raw[m.mask]).all()
    vol = m.feature_index("vol_20")
    assert (m.raw[25:, 0, vol] == 0).all() and m.mask[80:, 0, vol].all()
    assert (m.values[m.mask[:, 0, vol], 0, vol] == 0).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.drop(columns=["volume"]), "missing columns"),
        (lambda b: pd.concat([b, b.iloc[:1]]), "duplicate bar for AAA"),
        (lambda b: b.assign(ts=b["ts"].dt.tz_localize(None)), "tz-aware UTC"),
        (lambda b: b.assign(close=b["close"].where(b.index != 3, -1.0)), "invalid close=-1.0 for AAA"),
        (lambda b: b.iloc[:0], "no bars"),
    ],
)
def test_bad_bars_raise_a_named_error(mutate, message):
    bars = make_bars("AAA", [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(BarValidationError, match=message):
        compute_features(mutate(bars), basic_feature_set())


def test_deterministic(walk, full_matrix):
    again = compute_features(walk.sample(frac=1.0, random_state=3), full_feature_set())
    np.testing.assert_array_equal(again.values, full_matrix.values)
    np.testing.assert_array_equal(again.raw, full_matrix.raw)


def test_incremental_recompute_from_warmup_bars_matches_full_history():
    fs = full_feature_set()
    bars = random_walk_bars(["SPY", "AAA", "BBB"], 700, seed=11)
    full = compute_features(bars, fs)
    start = full.timestamps[600]
    history_start = full.timestamps[600 - fs.warmup_bars]
    partial = compute_features(bars[bars["ts"] >= history_start], fs)
    tail_full, tail_part = full.slice_time(start), partial.slice_time(start)
    np.testing.assert_array_equal(tail_part.mask, tail_full.mask)
    assert tail_part.mask.all()
    # EMA / Wilder features keep a trace of their seed, bounded by the settling allowance
    np.testing.assert_allclose(tail_part.raw, tail_full.raw, rtol=2e-2, atol=1e-3)
    finite_memory = [i for i, s in enumerate(fs.features) if s.function not in {"atr_pct", "rsi", "adx", "di_spread", "ema_slope", "trend_label"}]
    np.testing.assert_allclose(tail_part.raw[:, :, finite_memory], tail_full.raw[:, :, finite_memory], rtol=1e-9, atol=1e-12)


def test_real_minute_bars(shared_data):
    from .helpers import load_lean_minute

    bars = pd.concat([load_lean_minute(shared_data, d) for d in ("20131007", "20131008")], ignore_index=True)
    m = compute_features(bars, full_feature_set())
    assert m.shape[0] == len(bars) and m.symbols == ["SPY"]
    assert m.mask[full_feature_set().warmup_bars + 1 :].all()
    ret = m.frame("ret_1", raw=True)["SPY"]
    expected = bars["close"].pct_change().to_numpy()
    np.testing.assert_allclose(ret.to_numpy()[1:], expected[1:])
    assert m.raw[-1, 0, m.feature_index("rs_bench_20")] == 0.0  # SPY against itself


def test_fewer_bars_than_the_longest_window_give_invalid_values_not_an_error():
    # a first month without history: 20 sessions against the full set's 60-bar windows
    short = random_walk_bars(["SPY", "AAA"], 20, seed=3)
    m = compute_features(short, full_feature_set())
    assert m.shape == (20, 2, len(full_feature_set().features))
    # nothing whose window (or normalization window) is not full counts as valid
    assert not m.mask[:, :, m.feature_names.index("ret_20")].any()
    assert (m.values[~m.mask] == 0).all() and not np.isnan(m.values).any()


def test_a_rolling_window_longer_than_the_series_is_all_nan():
    from tt_platform.features import ops

    x = np.ones((20, 2))
    assert np.isnan(ops.rolling_zscore(x, 60)).all()
    assert np.isnan(ops.rolling_mean(x, 21)).all()
    assert np.isfinite(ops.rolling_mean(x, 20)[-1]).all()


def test_a_panel_laid_out_from_held_arrays_gives_the_same_features_as_the_frame():
    from tt_platform.features.compute import compute_panel_features
    from tt_platform.features.panel import FIELDS, BarPanel

    bars = random_walk_bars(["AAA", "BBB", "CCC"], 120, seed=4)
    bbb = bars.index[bars["symbol"] == "BBB"]
    ragged = bars.drop(bbb[:30]).drop(bbb[[40, 41, 77]])  # late listing and holes
    names = sorted(ragged["symbol"].unique())
    ordered = ragged.sort_values(["ts", "symbol"])
    panel = BarPanel.from_arrays(ordered["ts"].array.as_unit("ns").asi8,
                                 ordered["symbol"].map(names.index).to_numpy(),
                                 names, ordered[list(FIELDS)].to_numpy(dtype=np.float64))
    expected = compute_features(ragged, full_feature_set())
    got = compute_panel_features(panel, full_feature_set())
    assert got.symbols == expected.symbols and got.timestamps.equals(expected.timestamps)
    np.testing.assert_array_equal(got.raw, expected.raw)
    np.testing.assert_array_equal(got.values, expected.values)
    np.testing.assert_array_equal(got.mask, expected.mask)
    with pytest.raises(BarValidationError, match="more than one bar"):
        BarPanel.from_arrays(np.array([1, 1]), np.array([0, 0]), ["AAA"], np.ones((2, 5)))
