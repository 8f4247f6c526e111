import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tt_platform.store.engine import alembic_config, create_store_engine, ensure_schema, head_revision
from tt_platform.store.schema import VERSION_TABLE, metadata


@pytest.fixture
def fresh_engine(fresh_schema_url):
    engine = create_store_engine(fresh_schema_url)
    yield engine
    engine.dispose()


def _diffs(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True, "version_table": VERSION_TABLE})
        return compare_metadata(context, metadata)


def test_migrated_database_matches_the_metadata(fresh_engine):
    ensure_schema(fresh_engine)
    assert _diffs(fresh_engine) == []
    tables = set(sa.inspect(fresh_engine).get_table_names())
    assert set(metadata.tables) <= tables


def test_unmigrated_database_differs_from_the_metadata(fresh_engine):
    # guards the test above against a comparison that can never find anything
    assert len(_diffs(fresh_engine)) >= len(metadata.tables)


def test_downgrade_to_base_and_upgrade_again(fresh_schema_url, fresh_engine):
    ensure_schema(fresh_engine)
    command.downgrade(alembic_config(fresh_schema_url), "base")
    assert not set(metadata.tables) & set(sa.inspect(fresh_engine).get_table_names())
    command.upgrade(alembic_config(fresh_schema_url), "head")
    assert _diffs(fresh_engine) == []


def test_migrations_run_from_any_working_directory(fresh_engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alembic.ini here
    assert ensure_schema(fresh_engine) == head_revision() == "0007"


def test_episode_kind_is_checked_by_the_database(store_engine):
    with pytest.raises(sa.exc.IntegrityError, match="ck_tt_episode_kind"):
        with store_engine.begin() as conn:
            conn.execute(
                sa.insert(metadata.tables["tt_episode"]).values(
                    episode_id="e", kind="bogus", started_at=sa.func.now()
                )
            )
