import dagster as dg

from tt_platform.definitions import ALL_ASSETS, defs


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "watchlist", "bars", "features", "trained_policy", "evaluation_report",
        "walk_forward_plan", "fold_policies", "fold_evaluation", "walk_forward_report", "trading_book",
    }
    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "main_job", "universe_job", "walk_forward_job", "live_session"}


def test_lineage_edges_carry_the_watchlist_snapshot_and_the_policy():
    graph = defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["bars"] == {"watchlist"}
    assert parents["features"] == {"bars", "watchlist"}
    assert parents["trained_policy"] == {"features", "watchlist"}
    assert parents["evaluation_report"] == {"trained_policy"}
    assert parents["walk_forward_plan"] == {"features", "watchlist"}
    assert parents["fold_policies"] == {"walk_forward_plan"}
    assert parents["fold_evaluation"] == {"walk_forward_plan", "fold_policies"}
    assert parents["walk_forward_report"] == {"walk_forward_plan", "fold_evaluation"}
    # the book a session trades follows the policies (observed by live_session, never materialized)
    assert parents["trading_book"] == {"trained_policy", "walk_forward_report"}
    by_name = {a.key.to_user_string(): a for a in ALL_ASSETS}
    # data-carrying edges (inputs), not bare ordering
    assert set(by_name["evaluation_report"].keys_by_input_name) == {"trained_policy"}
    assert "watchlist" in by_name["bars"].keys_by_input_name
    assert "watchlist" in by_name["trained_policy"].keys_by_input_name


def test_bars_and_features_share_month_partitions_and_blocking_checks():
    by_name = {a.key.to_user_string(): a for a in ALL_ASSETS}
    bars, features = by_name["bars"], by_name["features"]
    assert bars.partitions_def == features.partitions_def
    assert isinstance(bars.partitions_def, dg.TimeWindowPartitionsDefinition)
    assert bars.partitions_def.fmt == "%Y-%m"
    blocking = {spec.name for spec in bars.check_specs if spec.blocking}
    assert {"coverage", "ohlc_sanity", "monotonic_unique", "alignment", "unrecorded_splits"} <= blocking


def test_resources_are_configurable_and_carry_no_run_file_path():
    for resource in defs.resources.values():
        assert isinstance(resource, (dg.ConfigurableResource, dg.ConfigurableIOManager))
    fields = defs.resources["run_config"].model_fields
    assert "config_path" not in fields and "overrides_json" not in fields
