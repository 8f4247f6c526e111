"""The lineage graph reads as one pipeline in the UI: few groups, kinds, owners, and checks that
say what they count and where the bound is; features follow bars by automation."""

import dagster as dg

from tt_platform.definitions import defs
from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS, UNITS


def _asset_graph():
    return defs.resolve_asset_graph()


def test_assets_sit_in_the_pipeline_groups_with_kinds_and_owners():
    graph = _asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.setdefault(node.group_name, set()).add(key.to_user_string())
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert node.description, f"{key.to_user_string()} has no description"
        kinds = {tag.split("/", 2)[-1] for tag in node.tags if tag.startswith("dagster/kind/")}
        assert 1 <= len(kinds) <= 3, (key, kinds)
    assert groups["market_data"] == {"watchlist", "bars"}
    assert {"features", "trained_policy", "evaluation_report", "walk_forward_report"} <= groups["research"]
    assert set(groups) <= {"market_data", "research", "trading"}


def test_ib_and_sb3_kinds_mark_where_the_broker_and_the_trainer_are():
    graph = _asset_graph()
    assert "dagster/kind/ib" in graph.get(dg.AssetKey("bars")).tags
    assert "dagster/kind/sb3" in graph.get(dg.AssetKey("trained_policy")).tags
    assert "dagster/kind/mlflow" in graph.get(dg.AssetKey("walk_forward_report")).tags


def test_every_bar_check_states_its_unit_and_threshold():
    assert {spec.name for spec in BAR_CHECK_SPECS} == set(UNITS)
    for spec in BAR_CHECK_SPECS:
        assert spec.metadata["unit"] and spec.metadata["threshold"], spec.name


def test_features_follow_bars_by_an_automation_condition_whose_sensor_is_on():
    graph = _asset_graph()
    condition = graph.get(dg.AssetKey("features")).automation_condition
    assert condition is not None and "any_deps_updated" in str(condition)
    # every month, not only the latest: backfilled history gets its features too
    assert "in_latest_time_window" not in str(condition)
    sensor = defs.get_sensor_def("features_follow_bars")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert graph.get(dg.AssetKey("bars")).automation_condition is None


def test_runs_without_a_run_config_compute_the_deployment_config(tmp_path, monkeypatch):
    from tt_platform.defs.platform.resources import deployment_run_config_resource as deployment_run_config
    from tt_platform.settings import get_settings

    path = tmp_path / "deployment.yaml"
    path.write_text("name: nightly\nuniverse:\n  symbols: [SPY, TLT]\n")
    monkeypatch.setenv("TT_RUN_CONFIG", str(path))
    get_settings.cache_clear()
    try:
        config = deployment_run_config().load()
    finally:
        monkeypatch.delenv("TT_RUN_CONFIG")
        get_settings.cache_clear()
    assert config.name == "nightly" and list(config.universe.symbols) == ["SPY", "TLT"]
    assert deployment_run_config().load().name == "demo"
