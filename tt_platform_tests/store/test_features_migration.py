"""Migration 0003: the long tt_features table becomes wide rows behind a tt_features view."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from tt_platform.store.engine import alembic_config, create_store_engine
from tt_platform.store.features import read_feature_matrix, read_features_long

TS = [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
# (instrument, ts, feature, value, valid): BBB lacks vol_20d on the second day; NULL, NaN and a
# value beyond float4 on rows that are or claim to be valid are stored as not valid
LONG_ROWS = [
    ("AAA", TS[0], "ret_1d", 0.25, True),
    ("AAA", TS[0], "vol_20d", None, False),
    ("AAA", TS[1], "ret_1d", -1.5, True),
    ("AAA", TS[1], "vol_20d", 0.125, True),
    ("BBB", TS[0], "ret_1d", float("nan"), True),
    ("BBB", TS[0], "vol_20d", 1e300, True),
    ("BBB", TS[1], "ret_1d", 2.0, True),
]


@pytest.fixture
def engine(fresh_schema_url):
    engine = create_store_engine(fresh_schema_url)
    yield engine
    engine.dispose()


def relation_kinds(engine):
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "SELECT relname, relkind FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                    "AND relname LIKE 'tt_feature%'"
                )
            ).all()
        )


def test_upgrade_converts_long_rows_and_downgrade_restores_the_table(fresh_schema_url, engine):
    config = alembic_config(fresh_schema_url)
    command.upgrade(config, "0002")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO tt_features VALUES (:i, :ts, 'fs1', :f, :v, :ok)"),
            [dict(i=i, ts=ts.to_pydatetime(), f=f, v=v, ok=ok) for i, ts, f, v, ok in LONG_ROWS],
        )

    command.upgrade(config, "0003")
    kinds = relation_kinds(engine)
    assert kinds["tt_features"] == "v" and kinds["tt_feature_values"] == "r" and kinds["tt_feature_sets"] == "r"
    matrix = read_feature_matrix(engine, "fs1")
    assert matrix.symbols == ["AAA", "BBB"] and matrix.feature_names == ["ret_1d", "vol_20d"]
    np.testing.assert_array_equal(matrix.mask[:, 0], [[True, False], [True, True]])
    np.testing.assert_array_equal(matrix.mask[:, 1], [[False, False], [True, False]])
    np.testing.assert_array_equal(matrix.values[:, 0], [[0.25, 0.0], [-1.5, 0.125]])
    assert matrix.values[1, 1, 0] == 2.0 and not matrix.values[:, 1, 1].any()
    long = read_features_long(engine, "fs1")
    assert len(long) == 8 and int(long["valid"].sum()) == 4

    command.downgrade(config, "0002")
    kinds = relation_kinds(engine)
    assert kinds["tt_features"] == "r" and "tt_feature_values" not in kinds and "tt_feature_sets" not in kinds
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("tt_features")["name"] == "pk_tt_features"
    assert [ix["name"] for ix in inspector.get_indexes("tt_features")] == ["ix_tt_features_instrument_ts"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT instrument, feature, value, valid FROM tt_features ORDER BY instrument, ts, feature")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("AAA", "ret_1d", 0.25, True), ("AAA", "vol_20d", None, False),
        ("AAA", "ret_1d", -1.5, True), ("AAA", "vol_20d", 0.125, True),
        ("BBB", "ret_1d", None, False), ("BBB", "vol_20d", None, False),
        ("BBB", "ret_1d", 2.0, True), ("BBB", "vol_20d", None, False),
    ]
    command.upgrade(config, "head")
    assert relation_kinds(engine)["tt_features"] == "v"
