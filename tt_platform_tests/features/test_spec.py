import pytest

from tt_platform.features.registry import FeatureConfigError, available_functions
from tt_platform.features.sets import basic_feature_set, full_feature_set
from tt_platform.features.spec import FeatureSet, FeatureSpec


def test_hash_is_deterministic_and_short():
    assert basic_feature_set().hash == basic_feature_set().hash
    assert len(basic_feature_set().hash) == 16
    int(basic_feature_set().hash, 16)


def test_hash_changes_with_every_part():
    base = basic_feature_set()
    data = base.to_dict()
    variants = []
    for path, value in [
        (("name",), "other"),
        (("version",), "2"),
        (("normalize_window",), 61),
        (("features", 0, "name"), "r1"),
        (("features", 1, "params", "window"), 6),
        (("features", 4, "function"), "log_return"),
    ]:
        changed = base.to_dict()
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        variants.append(FeatureSet.from_dict(changed).hash)
    assert base.hash not in variants
    assert len(set(variants)) == len(variants)
    assert FeatureSet.from_dict(data).hash == base.hash


def test_hash_covers_effective_params_not_spelling():
    explicit = FeatureSet(name="s", version="1", features=(FeatureSpec(name="v", function="volatility", params={"window": 20}),))
    default = FeatureSet(name="s", version="1", features=(FeatureSpec(name="v", function="volatility"),))
    assert explicit.hash == default.hash


def test_yaml_and_dict_round_trip():
    full = full_feature_set()
    assert FeatureSet.from_yaml(full.to_yaml()) == full
    assert FeatureSet.from_dict(full.to_dict()).hash == full.hash


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "set.yaml"
    path.write_text("name: x\nversion: '1'\nfeatures:\n  - {name: a, function: nope}\n")
    with pytest.raises(FeatureConfigError, match=r"(?s)set\.yaml.*unknown function 'nope'"):
        FeatureSet.from_yaml_file(path)
    path.write_text("- just a list\n")
    with pytest.raises(FeatureConfigError, match="expected a mapping"):
        FeatureSet.from_yaml_file(path)


def test_unknown_parameter_is_rejected_with_the_accepted_ones():
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['windw'\].*accepted: \['window'\]"):
        FeatureSpec(name="r", function="return", params={"windw": 3})


def test_duplicate_feature_names_rejected():
    spec = FeatureSpec(name="r", function="return")
    with pytest.raises(ValueError, match="duplicate feature name 'r'"):
        FeatureSet(name="s", version="1", features=(spec, spec))


def test_warmup_bars_counts_feature_and_normalization_history():
    one = FeatureSet(name="s", version="1", normalize_window=10, features=(FeatureSpec(name="r", function="return", params={"window": 5}),))
    assert one.warmup_bars == 5 + 10 - 1
    ranked = FeatureSet(name="s", version="1", normalize_window=10, features=(FeatureSpec(name="m", function="momentum_rank", params={"window": 7}),))
    assert ranked.warmup_bars == 7  # ranks are not z-scored
    assert basic_feature_set().warmup_bars == 20 + 60 - 1


def test_full_set_covers_every_registered_function_and_has_30_plus_columns():
    full = full_feature_set()
    assert len(full.features) >= 30
    assert {f.function for f in full.features} == set(available_functions())


@pytest.mark.parametrize(
    "params, message",
    [
        ({"window": 0}, "integer >= 1, got 0"),
        ({"window": "20"}, "integer >= 1, got '20'"),
        ({"window": 2.5}, "integer >= 1, got 2.5"),
        ({"window": True}, "integer >= 1, got True"),
    ],
)
def test_parameter_values_are_checked(params, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(name="r", function="return", params=params)
    with pytest.raises(ValueError, match="finite number, got nan"):
        FeatureSpec(name="s", function="volume_spike", params={"threshold": float("nan")})


def test_shipped_sets_by_name():
    from tt_platform.features.sets import get_feature_set

    assert get_feature_set("full") == full_feature_set()
    with pytest.raises(KeyError, match="shipped: \\['basic', 'full'\\]"):
        get_feature_set("huge")


def test_integral_float_parameter_hashes_like_its_float():
    a = FeatureSet(name="s", version="1", features=(FeatureSpec(name="t", function="trend_label", params={"adx_threshold": 25}),))
    b = FeatureSet(name="s", version="1", features=(FeatureSpec(name="t", function="trend_label", params={"adx_threshold": 25.0}),))
    assert a.hash == b.hash


def test_a_feature_set_yaml_with_a_key_given_twice_is_refused_naming_it():
    import pytest as _pytest

    from tt_platform.features.spec import FeatureConfigError, FeatureSet

    with _pytest.raises(FeatureConfigError, match="duplicate key 'name'"):
        FeatureSet.from_yaml("name: a\nname: b\n")
