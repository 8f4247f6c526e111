"""The walk-forward section: schemes, sizes in bars or fractions, seeds, bounds whose errors name
the key, and a stable identity (``key()``)."""

import pytest
from pydantic import ValidationError

from tt_platform.config.run_config import RunConfigError
from tt_platform.config.walk_forward import (
    MAX_FOLDS,
    MAX_SEEDS,
    SplitFractions,
    WalkForwardConfig,
    parse_walk_forward_config,
)


def refused(source: str = "run.yaml", **values) -> str:
    with pytest.raises(RunConfigError) as error:
        parse_walk_forward_config(values, source=source)
    return str(error.value)


# ----------------------------------------------------------------------------- defaults


def test_defaults_are_an_expanding_walk_of_quarterly_tests_with_one_seed():
    config = parse_walk_forward_config(None)
    assert config == WalkForwardConfig()
    assert config.scheme == "expanding"
    assert (config.train_bars, config.validation_bars, config.test_bars) == (504, 0, 63)
    assert config.step_bars is None and config.step == 63
    assert config.purge_bars == 5 and config.embargo_bars == 0
    assert config.max_folds is None and config.seeds == [0] and config.fractions is None


def test_step_defaults_to_test_bars_and_may_be_longer():
    assert WalkForwardConfig(test_bars=21).step == 21
    assert WalkForwardConfig(test_bars=21, step_bars=30).step == 30


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        WalkForwardConfig().test_bars = 5  # type: ignore[misc]


# ----------------------------------------------------------------------------- errors name the key


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"test_bars": 1}, "run.yaml: test_bars: Input should be greater than or equal to 2"),
        ({"train_bars": 10_000_001}, "run.yaml: train_bars: Input should be less than or equal to 10000000"),
        ({"validation_bars": -1}, "run.yaml: validation_bars: Input should be greater than or equal to 0"),
        ({"purge_bars": 0}, "run.yaml: purge_bars: Input should be greater than or equal to 1"),
        ({"embargo_bars": -3}, "run.yaml: embargo_bars: Input should be greater than or equal to 0"),
        ({"max_folds": 0}, "run.yaml: max_folds: Input should be greater than or equal to 1"),
        ({"max_folds": MAX_FOLDS + 1}, "run.yaml: max_folds: Input should be less than or equal to 1000"),
        ({"min_train_bars": 1}, "run.yaml: min_train_bars: Input should be greater than or equal to 2"),
        ({"scheme": "kfold"}, "run.yaml: scheme: Input should be 'single', 'rolling' or 'expanding'"),
        ({"horizon": 5}, "run.yaml: horizon: unknown key"),
    ],
)
def test_out_of_bounds_values_are_refused_naming_the_key(values, expected):
    assert refused(**values) == expected


def test_step_shorter_than_the_test_slice_is_refused_because_test_slices_would_overlap():
    assert refused(test_bars=20, step_bars=10) == (
        "run.yaml: step_bars: 10 is less than test_bars 20: consecutive test slices would overlap")


def test_train_bars_below_min_train_bars_is_refused():
    assert refused(min_train_bars=100, train_bars=99) == (
        "run.yaml: train_bars: 99 is fewer than min_train_bars 100")
    assert WalkForwardConfig(min_train_bars=100, train_bars=100).train_bars == 100


def test_seeds_are_one_to_32_distinct_valid_seeds():
    assert WalkForwardConfig(seeds=[3, 1, 2]).seeds == [3, 1, 2]
    assert WalkForwardConfig(seeds=list(range(MAX_SEEDS))).seeds == list(range(32))
    assert WalkForwardConfig(seeds=[2**32 - 1]).seeds == [2**32 - 1]
    assert refused(seeds=[]) == "run.yaml: seeds: List should have at least 1 item after validation, not 0"
    assert refused(seeds=list(range(33))) == (
        "run.yaml: seeds: List should have at most 32 items after validation, not 33")
    assert refused(seeds=[1, 2, 1]) == "run.yaml: seeds: seed 1 is given more than once: seeds must be distinct"
    assert refused(seeds=[0, -1]) == "run.yaml: seeds: -1 is not a seed: seeds are 0 .. 4294967295"
    assert refused(seeds=[2**32]) == "run.yaml: seeds: 4294967296 is not a seed: seeds are 0 .. 4294967295"
    assert refused(seeds=[0, "x"]) == (
        "run.yaml: seeds.1: Input should be a valid integer, unable to parse string as an integer")


def test_fractions_size_only_a_single_split():
    config = WalkForwardConfig(scheme="single", fractions={"validation": 0.1, "test": 0.3})
    assert config.fractions == SplitFractions(validation=0.1, test=0.3)
    assert refused(scheme="rolling", fractions={"test": 0.3}) == (
        "run.yaml: fractions: only scheme 'single' is sized by fractions; a rolling walk is sized "
        "in bars (train_bars, test_bars, step_bars)")


def test_fractions_must_leave_bars_to_train_and_errors_name_the_nested_key():
    assert refused(scheme="single", fractions={"validation": 0.5, "test": 0.5}) == (
        "run.yaml: fractions.test: validation 0.5 + test 0.5 leave no bars to train on "
        "(their sum must be below 1)")
    assert refused(scheme="single", fractions={"test": 1.0}) == (
        "run.yaml: fractions.test: Input should be less than 1")
    assert refused(scheme="single", fractions={"test": 0.0}) == (
        "run.yaml: fractions.test: Input should be greater than 0")


def test_every_problem_gets_its_own_line():
    message = refused(test_bars=0, purge_bars=0, extra=1)
    assert message.splitlines() == [
        "run.yaml: test_bars: Input should be greater than or equal to 2",
        "run.yaml: purge_bars: Input should be greater than or equal to 1",
        "run.yaml: extra: unknown key",
    ]


def test_a_mapping_is_required():
    assert refused_top_level([1, 2]) == (
        "config: (top level): Input should be a valid dictionary or instance of WalkForwardConfig")


def refused_top_level(data) -> str:
    with pytest.raises(RunConfigError) as error:
        parse_walk_forward_config(data)
    return str(error.value)


# ----------------------------------------------------------------------------- identity


def test_key_is_stable_and_hex():
    assert WalkForwardConfig().key() == WalkForwardConfig().key()
    assert len(WalkForwardConfig().key()) == 16
    int(WalkForwardConfig().key(), 16)
    # the payload is pinned: a change re-keys every walk-forward run, so it must be deliberate
    assert WalkForwardConfig().key_payload() == {
        "scheme": "expanding", "min_train_bars": 60, "purge_bars": 5, "seeds": [0],
        "train_bars": 504, "validation_bars": 0, "test_bars": 63, "step_bars": 63, "max_folds": None,
    }


def test_key_survives_a_round_trip_through_a_dump():
    config = WalkForwardConfig(scheme="rolling", train_bars=250, validation_bars=20, seeds=[4, 2])
    again = parse_walk_forward_config(config.model_dump(mode="json"))
    assert again == config and again.key() == config.key()


def test_configs_that_plan_the_same_folds_share_a_key():
    base = WalkForwardConfig(test_bars=21)
    assert WalkForwardConfig(test_bars=21, step_bars=21).key() == base.key()  # null step: test_bars
    assert WalkForwardConfig(test_bars=21, seeds=[0]).key() == base.key()
    assert WalkForwardConfig(test_bars=21, embargo_bars=10).key() == base.key()  # changes no fold
    assert WalkForwardConfig(seeds=[1, 2]).key() == WalkForwardConfig(seeds=[2, 1]).key()
    # single: step and the fold cap do not apply; with fractions the bar sizes do not either
    single = WalkForwardConfig(scheme="single")
    assert WalkForwardConfig(scheme="single", step_bars=100, max_folds=3).key() == single.key()
    by_share = WalkForwardConfig(scheme="single", fractions={"test": 0.3})
    assert WalkForwardConfig(scheme="single", fractions={"test": 0.3}, train_bars=100).key() == by_share.key()


def test_anything_that_changes_the_folds_or_seeds_changes_the_key():
    base = WalkForwardConfig()
    changed = [
        WalkForwardConfig(scheme="rolling"),
        WalkForwardConfig(train_bars=505),
        WalkForwardConfig(validation_bars=10),
        WalkForwardConfig(test_bars=64),
        WalkForwardConfig(step_bars=70),
        WalkForwardConfig(purge_bars=6),
        WalkForwardConfig(max_folds=4),
        WalkForwardConfig(min_train_bars=61),
        WalkForwardConfig(seeds=[0, 1]),
        WalkForwardConfig(scheme="single"),
        WalkForwardConfig(scheme="single", fractions={"test": 0.25}),
    ]
    keys = {config.key() for config in changed}
    assert base.key() not in keys and len(keys) == len(changed)
