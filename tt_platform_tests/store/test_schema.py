import pytest
import sqlalchemy as sa

from tt_platform.store.schema import metadata, table

EXPECTED_TABLES = {
    "tt_prices", "tt_watchlist_version", "tt_instruments", "tt_corporate_actions", "tt_feature_sets",
    "tt_feature_values", "tt_bar_coverage",
    "tt_quality_results", "tt_policy", "tt_episode", "tt_action", "tt_reward", "tt_equity_curve",
    "tt_signal_scores", "tt_target_weights", "tt_order", "tt_fill", "tt_portfolio", "tt_holdings",
    "tt_live_session", "tt_live_audit", "tt_order_event",
}


def test_all_tables_are_defined():
    assert set(metadata.tables) == EXPECTED_TABLES


def test_every_timestamp_is_timestamptz():
    naive = [
        f"{t.name}.{c.name}"
        for t in metadata.tables.values()
        for c in t.columns
        if isinstance(c.type, sa.DateTime) and not c.type.timezone
    ]
    assert naive == []


def test_every_episode_keyed_table_has_an_episode_time_index():
    keyed = [t for t in metadata.tables.values() if "episode_id" in t.c and t.name != "tt_episode"]
    assert {t.name for t in keyed} == {
        "tt_action", "tt_reward", "tt_equity_curve", "tt_target_weights", "tt_order", "tt_portfolio", "tt_holdings",
    }
    for t in keyed:
        assert ["episode_id", "ts"] in [[c.name for c in ix.columns] for ix in t.indexes], t.name


def test_key_layouts_serve_the_main_lookups():
    assert [c.name for c in table("tt_prices").primary_key] == ["instrument", "interval", "adjusted", "ts"]
    assert [c.name for c in table("tt_feature_values").primary_key] == ["feature_set_hash", "instrument", "ts"]
    assert [[c.name for c in ix.columns] for ix in table("tt_feature_values").indexes] == [["instrument", "ts"]]
    assert [c.name for c in table("tt_bar_coverage").primary_key] == ["instrument", "interval", "adjusted", "partition_key"]


def test_unknown_table_names_are_reported():
    with pytest.raises(KeyError, match="no table 'tt_nope'.*tt_prices"):
        table("tt_nope")
