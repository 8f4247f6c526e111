import dagster as dg

from tt_platform.definitions import ALL_ASSETS, defs


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"watchlist", "bars", "features", "trained_policy", "evaluation_report"}


def test_lineage_edges_run_watchlist_to_report():
    graph = defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["bars"] == {"watchlist"}
    assert parents["features"] == {"bars"}
    assert parents["trained_policy"] == {"features"}
    assert parents["evaluation_report"] == {"trained_policy"}


def test_bars_and_features_share_day_by_symbol_partitions_and_blocking_checks():
    by_name = {a.key.to_user_string(): a for a in ALL_ASSETS}
    bars, features = by_name["bars"], by_name["features"]
    assert bars.partitions_def == features.partitions_def
    assert set(bars.partitions_def.partition_dimension_names) == {"date", "symbol"}
    checks = list(bars.check_specs)
    assert checks and all(spec.blocking for spec in checks if spec.name in {"coverage", "ohlc_sanity", "timestamps"})


def test_resources_are_configurable_resources():
    for resource in defs.resources.values():
        assert isinstance(resource, dg.ConfigurableResource)
