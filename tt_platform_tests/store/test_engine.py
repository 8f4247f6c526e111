import logging
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tt_platform.settings import PlatformSettings
from tt_platform.store.schema import VERSION_TABLE
from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.engine import (
    StoreConfigError,
    connect_store,
    create_store_engine,
    current_revision,
    database_url,
    ensure_schema,
    head_revision,
    normalize_url,
    safe_url,
)

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "given",
    [
        "postgres://u:pw@db.example:5433/tt",
        "postgresql://u:pw@db.example:5433/tt",
        "postgresql+psycopg2://u:pw@db.example:5433/tt",
    ],
)
def test_postgres_spellings_normalise_to_psycopg2(given):
    url = normalize_url(given)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.port, url.database) == ("u", "pw", "db.example", 5433, "tt")


def test_unix_socket_query_survives_normalisation():
    url = normalize_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert url.query["host"] == "/tmp/pg"
    assert create_store_engine(url).dialect.driver == "psycopg2"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("sqlite:///x.db", "needs PostgreSQL"),
        (f"postgresql+asyncpg://u:{SECRET}@h/db", "only psycopg2"),
        (f"mysql://u:{SECRET}@h/db", "needs PostgreSQL"),
        (f"::not a url {SECRET}", "cannot parse"),
    ],
)
def test_unusable_urls_raise_without_the_password(given, message):
    with pytest.raises(StoreConfigError, match=message) as info:
        normalize_url(given)
    assert SECRET not in str(info.value)


def test_safe_url_masks_the_password():
    assert safe_url(f"postgresql://u:{SECRET}@h/db") == "postgresql://u:***@h/db"


def test_database_url_prefers_tt_db_url(tmp_path):
    settings = PlatformSettings(TT_HOME=str(tmp_path), TT_DB_URL=f"postgres://u:{SECRET}@h:5432/tt")
    assert database_url(settings) == f"postgresql+psycopg2://u:{SECRET}@h:5432/tt"
    assert not (tmp_path / "pg").exists()  # no embedded server started


def test_database_url_falls_back_to_the_embedded_server_under_tt_home(server_tmp_path):
    home = server_tmp_path / "home"
    settings = PlatformSettings(TT_HOME=str(home))
    # started beforehand without fsync only to keep the test quick; database_url must find it
    server = EmbeddedPostgres(home / "pg", durable=False).start()
    try:
        url = database_url(settings)
        assert url == server.url()
        assert url.startswith("postgresql+psycopg2://postgres:@/postgres?host=")
        engine = create_store_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        engine.dispose()
    finally:
        server.stop()


def _with_secret(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    if parsed.password:  # a real password (CI): that one must not leak either
        return url, parsed.password
    # trust authentication ignores the password, so the URL still works
    return parsed.set(password=SECRET).render_as_string(hide_password=False), SECRET


def test_secret_in_tt_db_url_never_reaches_repr_logs_or_errors(fresh_schema_url, tmp_path, caplog):
    url, secret = _with_secret(fresh_schema_url)
    settings = PlatformSettings(TT_HOME=str(tmp_path), TT_DB_URL=url)
    caplog.set_level(logging.DEBUG)
    engine = create_store_engine(database_url(settings))
    ensure_schema(engine)
    texts = [repr(engine), str(engine), str(engine.url), repr(engine.url), settings.safe_dump()["TT_DB_URL"]]
    broken = create_store_engine(make_url(url).set(host="127.0.0.1", port=1, query={}))
    with pytest.raises(sa.exc.OperationalError) as info:
        ensure_schema(broken)
    texts.append(str(info.value))
    texts += [record.getMessage() for record in caplog.records]
    assert any("store engine on" in t for t in texts)  # the helpers did log
    assert [t for t in texts if secret in t] == []
    engine.dispose()


def test_ensure_schema_is_idempotent(fresh_schema_url):
    engine = create_store_engine(fresh_schema_url)
    assert current_revision(engine) is None
    assert ensure_schema(engine) == head_revision()
    assert ensure_schema(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {VERSION_TABLE}").scalar() == 1
    # Dagster and MLflow keep their Alembic history in "alembic_version" of the same database
    assert "alembic_version" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_concurrent_ensure_schema_calls_do_not_race(fresh_schema_url):
    engines = [create_store_engine(fresh_schema_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results, errors = [], []

    def migrate(engine):
        barrier.wait()
        try:
            results.append(ensure_schema(engine))
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert results == [head_revision()] * len(engines)
    for engine in engines:
        engine.dispose()


def test_ensure_schema_names_a_missing_schema(store_server_url):
    url = make_url(normalize_url(store_server_url)).update_query_dict({"options": "-csearch_path=no_such_schema_x"})
    engine = create_store_engine(url)
    with pytest.raises(StoreConfigError, match="no existing schema on the search_path"):
        ensure_schema(engine)
    engine.dispose()


def test_connect_store_uses_the_settings_and_migrates(store_settings):
    engine = connect_store(store_settings)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
            assert conn.exec_driver_sql("SELECT count(*) FROM tt_prices").scalar() == 0
        assert schema.startswith("tt_test_")  # the test schema named by TT_DB_URL's search_path
    finally:
        engine.dispose()


def _terminate(store_engine, pid: int) -> None:
    with store_engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_connection_dropped_mid_run_is_one_line_naming_the_server_not_the_statement(store_engine, store_url):
    from tt_platform.store.engine import StoreConnectionLost, server_location
    from tt_platform.store.prices import write_bars
    from tt_platform_tests.store.bars_factory import random_bars

    bars = random_bars(["AAA"], 5)
    for write in (
        lambda conn: conn.execute(sa.text("SELECT count(*) FROM tt_prices WHERE instrument = :s"), {"s": "secret-param"}),
        lambda conn: write_bars(conn, bars, source="test", interval="1d", adjusted=False),
    ):
        with store_engine.connect() as conn:
            _terminate(store_engine, conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            with pytest.raises(StoreConnectionLost) as lost:
                write(conn)
        message = str(lost.value)
        assert message.startswith(f"lost the connection to PostgreSQL at {server_location(store_url)} (")
        assert "nothing of the interrupted write is stored" in message
        assert "SELECT" not in message and "secret-param" not in message and "\n" not in message
    # the pool recovers: the next connection works and nothing was written
    with store_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tt_prices")).scalar_one() == 0
