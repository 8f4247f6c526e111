"""Walk-forward folds: chronological slices with a purge gap, partition keys that survive appended
data, out-of-sample curves stitched by compounding, and the spread over seeds."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tt_platform.config.walk_forward import WalkForwardConfig
from tt_platform.data.sessions import sessions_between
from tt_platform.evaluation.folds import (
    Fold,
    fold_partition_keys,
    plan_folds,
    seed_spread,
    stitch_out_of_sample,
)


def bars(n: int, start: str = "2015-01-02") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="D", tz="UTC")


def walk(**values) -> WalkForwardConfig:
    return WalkForwardConfig(**({"min_train_bars": 2} | values))


def bounds_of(fold: Fold) -> tuple:
    """(train, validation, test) as inclusive (first, last) positions; validation may be None."""
    validation = None if fold.validation is None else (fold.validation.first, fold.validation.last)
    return (fold.train.first, fold.train.last), validation, (fold.test.first, fold.test.last)


def fitted_last(fold: Fold) -> int:
    """The last bar a fold trains or validates on."""
    return (fold.validation or fold.train).last


# ----------------------------------------------------------------------------- property-style


def random_config(rng: np.random.Generator) -> WalkForwardConfig:
    test_bars = int(rng.integers(2, 40))
    return walk(
        scheme=str(rng.choice(["single", "rolling", "expanding"])),
        train_bars=int(rng.integers(2, 120)),
        validation_bars=int(rng.choice([0, 0, int(rng.integers(1, 30))])),
        test_bars=test_bars,
        step_bars=int(rng.choice([test_bars, test_bars + int(rng.integers(0, 15))])),
        purge_bars=int(rng.integers(1, 12)),
        max_folds=None if rng.random() < 0.7 else int(rng.integers(1, 6)),
    )


def lead_in(config: WalkForwardConfig) -> int:
    validation = config.validation_bars + config.purge_bars if config.validation_bars else 0
    return config.train_bars + config.purge_bars + validation


def check_invariants(folds: list[Fold], config: WalkForwardConfig, n_bars: int) -> None:
    assert folds, "a plan without folds must be an error instead"
    min_partial = max(2, math.ceil(config.test_bars / 2))
    for fold in folds:
        # no training or validation bar at or after the test start minus the purge
        assert fitted_last(fold) < fold.test.first - config.purge_bars
        assert fitted_last(fold) == fold.test.first - config.purge_bars - 1  # no bar wasted
        assert fold.purge_bars == config.purge_bars
        if fold.validation is not None:
            assert fold.validation.n_bars == config.validation_bars
            assert fold.validation.first - fold.train.last - 1 == config.purge_bars
        assert 0 <= fold.train.first <= fold.train.last
        assert fold.test.last <= n_bars - 1
        assert min_partial <= fold.test.n_bars <= config.test_bars
        if config.scheme == "rolling":
            assert fold.train.n_bars == config.train_bars
        else:
            assert fold.train.first == 0
    for earlier, later in zip(folds, folds[1:]):
        assert earlier.test.last < later.test.first  # never overlapping, in time order
        assert later.test.first - earlier.test.first == config.step
        assert earlier.test.n_bars == config.test_bars  # only the last slice may run short
        assert later.index == earlier.index + 1
    last = folds[-1]
    if config.scheme != "single":
        # the walk goes on while a kept slice fits: what is left after the last one is too short
        assert n_bars - (last.test.first + config.step) < min_partial
        if config.max_folds is None:
            assert folds[0].test.first == lead_in(config) and folds[0].index == 0


def test_random_configs_never_test_before_train_end_plus_purge_and_never_overlap():
    rng = np.random.default_rng(20240601)
    planned = refused = 0
    for _ in range(400):
        config, n_bars = random_config(rng), int(rng.integers(5, 600))
        try:
            folds = plan_folds(bars(n_bars), config)
        except ValueError as error:
            assert "too few bars for one fold" in str(error)
            assert n_bars < lead_in(config) + max(2, math.ceil(config.test_bars / 2))
            refused += 1
            continue
        planned += 1
        check_invariants(folds, config, n_bars)
    assert planned > 150 and refused > 20  # both branches were exercised


def test_appending_bars_never_moves_an_existing_fold():
    rng = np.random.default_rng(7)
    for _ in range(150):
        config = random_config(rng).model_copy(update={"max_folds": None})
        n_bars = lead_in(config) + max(2, math.ceil(config.test_bars / 2)) + int(rng.integers(0, 200))
        before = plan_folds(bars(n_bars), config)
        after = plan_folds(bars(n_bars + int(rng.integers(1, 120))), config)
        # every fold but the last is unchanged; the last keeps its key and may only grow
        assert [bounds_of(f) for f in before[:-1]] == [bounds_of(f) for f in after[: len(before) - 1]]
        assert fold_partition_keys(after)[: len(before)] == fold_partition_keys(before)
        grown = after[len(before) - 1]
        assert grown.test.first == before[-1].test.first and grown.test.last >= before[-1].test.last


# ----------------------------------------------------------------------------- worked examples


def test_expanding_test_slices_tile_the_span_after_the_lead_in():
    folds = plan_folds(bars(100), walk(scheme="expanding", train_bars=50, purge_bars=5, test_bars=10))
    assert [bounds_of(f) for f in folds] == [
        ((0, 49), None, (55, 64)),
        ((0, 59), None, (65, 74)),
        ((0, 69), None, (75, 84)),
        ((0, 79), None, (85, 94)),
        ((0, 89), None, (95, 99)),  # 5 of 10 bars: half a slice is kept
    ]
    tested = np.concatenate([np.arange(100)[f.test.positions] for f in folds])
    assert tested.tolist() == list(range(55, 100))  # each bar after the lead-in tested once


def test_a_last_slice_shorter_than_half_of_test_bars_is_dropped():
    folds = plan_folds(bars(99), walk(scheme="expanding", train_bars=50, purge_bars=5, test_bars=10))
    assert folds[-1].test.first == 85 and folds[-1].test.last == 94  # 95..98 (4 bars) dropped


def test_rolling_train_windows_keep_their_length_and_slide_by_the_step():
    folds = plan_folds(bars(120), walk(scheme="rolling", train_bars=30, purge_bars=3, test_bars=20))
    assert [bounds_of(f) for f in folds] == [
        ((0, 29), None, (33, 52)),
        ((20, 49), None, (53, 72)),
        ((40, 69), None, (73, 92)),
        ((60, 89), None, (93, 112)),
    ]  # the 7 bars left (113..119) are under half of test_bars 20: dropped
    assert {f.train.n_bars for f in folds} == {30}


def test_validation_sits_between_train_and_test_with_a_purge_on_each_side():
    folds = plan_folds(bars(80), walk(scheme="expanding", train_bars=40, validation_bars=10,
                                      purge_bars=2, test_bars=12, step_bars=15))
    assert [bounds_of(f) for f in folds] == [
        ((0, 39), (42, 51), (54, 65)),
        ((0, 54), (57, 66), (69, 79)),  # 11 of 12 bars at the end
    ]
    assert folds[0].validation.start == pd.Timestamp("2015-01-02", tz="UTC") + pd.Timedelta(days=42)


def test_folds_carry_the_stamps_of_their_bars():
    stamps = bars(100)
    fold = plan_folds(stamps, walk(train_bars=50, purge_bars=5, test_bars=10))[1]
    assert (fold.train.start, fold.train.end) == (stamps[0], stamps[59])
    assert (fold.test.start, fold.test.end) == (stamps[65], stamps[74])
    assert fold.name == "fold-01" and fold.validation is None


def test_single_split_in_bars_is_the_first_fold():
    config = walk(scheme="single", train_bars=50, validation_bars=10, purge_bars=5, test_bars=20)
    folds = plan_folds(bars(500), config)
    assert [bounds_of(f) for f in folds] == [((0, 49), (55, 64), (70, 89))]


def test_single_split_by_fractions_tests_the_latest_share():
    config = walk(scheme="single", purge_bars=5, fractions={"validation": 0.1, "test": 0.3})
    (fold,) = plan_folds(bars(200), config)
    assert bounds_of(fold) == ((0, 109), (115, 134), (140, 199))
    (no_validation,) = plan_folds(bars(200), walk(scheme="single", purge_bars=5, fractions={"test": 0.25}))
    assert bounds_of(no_validation) == ((0, 144), None, (150, 199))


def test_max_folds_keeps_the_latest_folds_with_their_walk_index():
    config = walk(train_bars=50, purge_bars=5, test_bars=10)
    all_folds = plan_folds(bars(100), config)
    capped = plan_folds(bars(100), config.model_copy(update={"max_folds": 2}))
    assert capped == all_folds[-2:]
    assert [f.name for f in capped] == ["fold-03", "fold-04"]


# ----------------------------------------------------------------------------- refusals


def test_too_short_data_is_refused_naming_the_numbers():
    config = walk(scheme="rolling", train_bars=50, validation_bars=10, purge_bars=5, test_bars=20)
    with pytest.raises(ValueError) as error:
        plan_folds(bars(79), config)
    assert str(error.value) == (
        "too few bars for one fold: 79 bars, but a rolling fold needs 80 (train_bars 50 + "
        "purge_bars 5 + validation_bars 10 + purge_bars 5 = 70 before the test, then at least "
        "10 of test_bars 20)")
    assert len(plan_folds(bars(80), config)) == 1


def test_too_short_data_for_a_fraction_split_is_refused_naming_the_numbers():
    config = WalkForwardConfig(scheme="single", min_train_bars=60, purge_bars=5, fractions={"test": 0.3})
    with pytest.raises(ValueError) as error:
        plan_folds(bars(80), config)
    assert str(error.value) == (
        "too few bars for the single split: 80 bars give test 24 (test 0.3, at least 2), "
        "validation 0 (validation 0.0), purge_bars 5 per gap and 51 to train (min_train_bars 60)")
    assert plan_folds(bars(93), config)[0].train.n_bars == 60


def test_timestamps_must_be_strictly_increasing():
    stamps = bars(200)
    with pytest.raises(ValueError, match="strictly increasing"):
        plan_folds(stamps[::-1], walk(train_bars=50, test_bars=10))
    with pytest.raises(ValueError, match="strictly increasing"):
        plan_folds(stamps.append(stamps[-1:]), walk(train_bars=50, test_bars=10))
    with pytest.raises(TypeError, match="DatetimeIndex"):
        plan_folds(list(stamps), walk(train_bars=50, test_bars=10))


# ----------------------------------------------------------------------------- partition keys


def test_partition_keys_name_the_fold_and_its_first_test_session():
    sessions = sessions_between(date(2015, 1, 2), date(2015, 12, 31))  # NYSE sessions
    folds = plan_folds(sessions, walk(train_bars=100, purge_bars=5, test_bars=63))
    assert fold_partition_keys(folds) == [
        f"f{i:02d}_{sessions[105 + 63 * i]:%Y-%m-%d}" for i in range(len(folds))]
    assert fold_partition_keys(folds)[0] == "f00_2015-06-04"


def test_partition_keys_stay_the_same_when_sessions_are_appended():
    config = walk(scheme="rolling", train_bars=100, purge_bars=5, test_bars=63)
    year = plan_folds(sessions_between(date(2015, 1, 2), date(2015, 12, 31)), config)
    two_years = plan_folds(sessions_between(date(2015, 1, 2), date(2016, 12, 30)), config)
    assert len(two_years) > len(year)
    assert fold_partition_keys(two_years)[: len(year)] == fold_partition_keys(year)
    # the latest folds of a capped plan keep their keys too
    capped = plan_folds(sessions_between(date(2015, 1, 2), date(2016, 12, 30)),
                        config.model_copy(update={"max_folds": 2}))
    assert fold_partition_keys(capped) == fold_partition_keys(two_years)[-2:]


def test_intraday_partition_keys_add_the_utc_time_without_colons():
    stamps = pd.date_range("2024-03-04 14:30", periods=60, freq="30min", tz="UTC")
    folds = plan_folds(stamps, walk(train_bars=20, purge_bars=2, test_bars=10))
    assert fold_partition_keys(folds)[0] == "f00_2024-03-05T0130"
    assert all(":" not in key for key in fold_partition_keys(folds))


def test_keys_from_two_plans_mixed_together_are_refused():
    folds = plan_folds(bars(100), walk(train_bars=50, purge_bars=5, test_bars=10))
    with pytest.raises(ValueError, match="f00_2015-02-26 appears more than once"):
        fold_partition_keys(folds + folds[:1])


# ----------------------------------------------------------------------------- stitching


def curve(values, start: str, freq: str = "D") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq, tz="UTC"),
                     dtype=float)


def test_stitching_compounds_each_fold_from_where_the_previous_ended():
    first = curve([100.0, 125.0], "2020-01-01")   # +25 %
    second = curve([80.0, 60.0], "2020-01-03")    # -25 %, rescaled by 125 / 80
    third = curve([10.0, 20.0], "2020-01-10")     # +100 %, after a gap of untested bars
    stitched = stitch_out_of_sample([first, second, third])
    assert stitched.tolist() == [100.0, 125.0, 125.0, 93.75, 93.75, 187.5]  # exact in binary
    assert list(stitched.index) == list(first.index) + list(second.index) + list(third.index)
    assert stitched.name == "walk_forward"
    assert stitched.iloc[-1] / stitched.iloc[0] == 1.25 * 0.75 * 2.0


def test_stitched_total_return_is_the_product_of_the_fold_returns():
    rng = np.random.default_rng(3)
    curves, start = [], pd.Timestamp("2020-01-01", tz="UTC")
    for _ in range(6):
        n = int(rng.integers(2, 30))
        values = 1_000 * np.cumprod(1 + rng.normal(0, 0.01, n))
        curves.append(pd.Series(values, index=pd.date_range(start, periods=n, freq="D")))
        start = curves[-1].index[-1] + pd.Timedelta(days=1)
    stitched = stitch_out_of_sample(curves)
    fold_growth = np.prod([c.iloc[-1] / c.iloc[0] for c in curves])
    assert stitched.iloc[-1] / stitched.iloc[0] == pytest.approx(fold_growth, rel=1e-12)
    assert len(stitched) == sum(len(c) for c in curves)


def test_stitching_refuses_overlapping_curves():
    with pytest.raises(ValueError) as error:
        stitch_out_of_sample([curve([1.0, 2.0, 3.0], "2020-01-01"), curve([5.0, 6.0], "2020-01-03")])
    assert str(error.value) == (
        "out-of-sample curve 1 starts at 2020-01-03 00:00:00+00:00, not after curve 0 ends at "
        "2020-01-03 00:00:00+00:00: curves must be in time order and must not overlap")


def test_stitching_refuses_curves_out_of_time_order():
    later, earlier = curve([1.0, 2.0], "2020-02-01"), curve([1.0, 2.0], "2020-01-01")
    with pytest.raises(ValueError, match="curve 1 starts at 2020-01-01.*not after curve 0"):
        stitch_out_of_sample([later, earlier])
    with pytest.raises(ValueError, match="curve 0 is not in time order"):
        stitch_out_of_sample([later.iloc[::-1]])


def test_stitching_refuses_nothing_empty_or_unscalable_curves():
    with pytest.raises(ValueError, match="no out-of-sample curves"):
        stitch_out_of_sample([])
    with pytest.raises(ValueError, match="curve 1 is empty"):
        stitch_out_of_sample([curve([1.0], "2020-01-01"), curve([], "2020-01-05")])
    with pytest.raises(ValueError, match="curve 1 holds equity that is not a positive finite number"):
        stitch_out_of_sample([curve([1.0], "2020-01-01"), curve([0.0, 1.0], "2020-01-05")])
    with pytest.raises(ValueError, match="curve 0 holds equity"):
        stitch_out_of_sample([curve([1.0, float("nan")], "2020-01-01")])


def test_a_single_curve_stitches_to_itself():
    only = curve([100.0, 101.0, 99.0], "2020-01-01")
    pd.testing.assert_series_equal(stitch_out_of_sample([only]), only.rename("walk_forward"))


# ----------------------------------------------------------------------------- seeds


def test_seed_spread_reports_mean_std_min_max_median_per_metric():
    spread = seed_spread({
        0: {"sharpe": 1.0, "total_return": 0.10},
        1: {"sharpe": 2.0, "total_return": 0.30},
        7: {"sharpe": 3.0, "total_return": 0.20},
    })
    assert spread["sharpe"] == {"n": 3, "mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "median": 2.0}
    assert spread["total_return"]["median"] == 0.2
    assert spread["total_return"]["std"] == pytest.approx(0.1)


def test_undefined_metrics_are_left_out_of_the_spread():
    spread = seed_spread({0: {"sharpe": None}, 1: {"sharpe": float("nan")}, 2: {"sharpe": 1.5}})
    assert spread["sharpe"] == {"n": 1, "mean": 1.5, "std": None, "min": 1.5, "max": 1.5, "median": 1.5}
    assert seed_spread({0: {"calmar": None}})["calmar"] == {
        "n": 0, "mean": None, "std": None, "min": None, "max": None, "median": None}


def test_seeds_reporting_different_metrics_are_refused():
    with pytest.raises(ValueError, match="seed 1 and seed 0 report different metrics \\(differing: sortino\\)"):
        seed_spread({0: {"sharpe": 1.0, "sortino": 1.0}, 1: {"sharpe": 1.0}})
    with pytest.raises(ValueError, match="no seeds"):
        seed_spread({})
