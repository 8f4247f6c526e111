"""Engines on the platform database and the schema migration that every entry point runs.

``database_url`` picks ``TT_DB_URL`` or the embedded server under ``TT_HOME/pg``;
``create_store_engine`` builds a psycopg2 engine from any PostgreSQL URL spelling;
``ensure_schema`` brings the database to the latest Alembic revision, serialised across
processes by an advisory lock. Nothing here logs or raises a URL with its password.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.schema import VERSION_TABLE

if TYPE_CHECKING:
    from tt_platform.settings import PlatformSettings

logger = logging.getLogger(__name__)

# The only PostgreSQL driver installed; SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
DRIVER = "postgresql+psycopg2"
_POSTGRES_NAMES = {"postgres", "postgresql"}
MIGRATIONS_LOCATION = "tt_platform.store:migrations"
# First key of pg_advisory_xact_lock(int, int); the second is the schema being migrated, so
# migrations of different schemas (one per test session) do not wait for each other.
_MIGRATION_LOCK_KEY = 0x74745354  # "ttST"


class StoreConfigError(ValueError):
    """A database URL or setting the store cannot use; the message never contains the password."""


class StoreConnectionError(StoreConfigError):
    """The database cannot be reached: the message names host, port and database in one line
    (``cannot connect to PostgreSQL at 127.0.0.1:5999, database 'nope': connection refused``)."""


# libpq's wording -> the reason shown to the user (first match wins)
_CONNECT_REASONS = (
    ("connection refused", "connection refused"),
    ("does not exist", "no such database"),
    ("password authentication failed", "password authentication failed for user {user!r}"),
    ("no password supplied", "the server wants a password for user {user!r}"),
    ("could not translate host name", "unknown host"),
    ("name or service not known", "unknown host"),
    ("timeout expired", "timed out"),
    ("no such file or directory", "no server listening on that socket"),
    ("role", "no such user {user!r}"),
)


def server_location(url: str | URL) -> str:
    """Where ``url`` points, without user or password: ``host:port, database 'name'``."""
    parsed = normalize_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = ",".join(host)
    where = host if str(host).startswith("/") else f"{host}:{parsed.port or 5432}"
    return f"{where}, database {parsed.database or parsed.username or 'postgres'!r}"


def connection_failure(url: str | URL, error: BaseException) -> StoreConnectionError:
    """``error`` (psycopg2 / SQLAlchemy OperationalError) as one line naming the server."""
    parsed = normalize_url(url)
    text = str(getattr(error, "orig", None) or error)
    lowered = text.lower()
    for needle, reason in _CONNECT_REASONS:
        if needle in lowered:
            break
    else:
        reason = " ".join(text.split()) or type(error).__name__
        password = parsed.password
        if password:
            reason = reason.replace(str(password), "***")
    return StoreConnectionError(
        f"cannot connect to PostgreSQL at {server_location(parsed)}: {reason.format(user=parsed.username)}"
    )


class StoreConnectionLost(StoreConnectionError):
    """The connection broke mid-statement (server restart, terminated backend, network): the
    message names the server and says the open transaction was rolled back."""


def connection_lost(url: str | URL, error: BaseException) -> StoreConnectionLost:
    """``error`` (a disconnect seen by psycopg2 / SQLAlchemy) as one line naming the server."""
    text = str(getattr(error, "orig", None) or error).strip()
    reason = text.splitlines()[0].strip() if text else type(error).__name__
    return StoreConnectionLost(
        f"lost the connection to PostgreSQL at {server_location(url)} ({reason}); the open transaction "
        "was rolled back, so nothing of the interrupted write is stored: run the command again once "
        "the server is reachable"
    )


def _name_lost_connection(context: sa.engine.ExceptionContext) -> None:
    """SQLAlchemy's message for a dropped connection is the statement and its parameters; say
    instead which server went away. Pre-ping failures are left alone: the pool reconnects."""
    if context.is_disconnect and not getattr(context, "is_pre_ping", False) and context.engine is not None:
        raise connection_lost(context.engine.url, context.original_exception) from context.original_exception


def check_connection(url: str | URL, timeout_seconds: int = 5) -> None:
    """Open and close one connection to ``url``; raise ``StoreConnectionError`` if that fails."""
    import psycopg2

    parsed = normalize_url(url)
    params: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
        "connect_timeout": timeout_seconds,
    }
    params.update({k: v for k, v in parsed.query.items() if isinstance(v, str)})
    try:
        psycopg2.connect(**{k: v for k, v in params.items() if v is not None}).close()
    except psycopg2.Error as err:
        raise connection_failure(parsed, err) from None


def safe_url(url: str | URL) -> str:
    """``url`` fit for logs and error messages: the password replaced by ``***``."""
    try:
        return _parse_url(url).render_as_string(hide_password=True)
    except StoreConfigError:
        return "<unparseable database URL>"


def _unencoded_at_in_password(url: str) -> bool:
    """Whether the password of ``url`` holds a raw '@': SQLAlchemy ends the password at the first
    '@' and takes the rest of it for host, port or database, where messages would show it."""
    rest = url.partition("://")[2]
    colon, at = rest.find(":"), rest.find("@")
    return 0 <= colon < at and "@" in rest[at + 1:].partition("?")[0]


def _parse_url(url: str | URL) -> URL:
    """``make_url`` whose errors never quote the URL (nor a piece of its password)."""
    if isinstance(url, str) and _unencoded_at_in_password(url):
        raise StoreConfigError(
            "the database URL has an '@' after the one that ends user:password: percent-encode the password "
            "('@' as %40, '/' as %2F, ':' as %3A, '%' as %25, '#' as %23)"
        )
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's message quotes the whole string, password included; a bad port quotes the port
        raise StoreConfigError(
            "cannot parse the database URL (expected postgresql+psycopg2://user:password@host/db)"
        ) from None


def normalize_url(url: str | URL) -> URL:
    """``postgres://``, ``postgresql://`` and ``postgresql+psycopg2://`` as a psycopg2 URL.

    Any other backend or driver raises ``StoreConfigError``: the store relies on PostgreSQL
    features (COPY, ON CONFLICT, advisory locks) and psycopg2 is the only driver installed.
    """
    parsed = _parse_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _POSTGRES_NAMES:
        raise StoreConfigError(f"the store needs PostgreSQL, got a {backend!r} URL: {safe_url(parsed)}")
    if driver not in ("", "psycopg2"):
        raise StoreConfigError(
            f"driver {driver!r} is not supported (only psycopg2 is installed): {safe_url(parsed)}"
        )
    return parsed.set(drivername=DRIVER)


def database_url(settings: PlatformSettings) -> str:
    """The platform database: ``TT_DB_URL`` when set, else the embedded server under TT_HOME/pg.

    The result carries the password (it is handed to SQLAlchemy, Dagster and MLflow); log it
    only through ``safe_url``.
    """
    if settings.db_url:
        return normalize_url(settings.db_url).render_as_string(hide_password=False)
    server = EmbeddedPostgres(settings.home / "pg")
    return server.url()


def create_store_engine(url: str | URL, **engine_kwargs: Any) -> Engine:
    """A SQLAlchemy engine on ``url`` (normalised to psycopg2); pings connections before use."""
    normalized = normalize_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    options.update(engine_kwargs)
    logger.info("store engine on %s", safe_url(normalized))
    engine = sa.create_engine(normalized, **options)
    sa.event.listen(engine, "handle_error", _name_lost_connection)
    return engine


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configured in code, so migrations run from an installed package in any folder."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    if url is not None:
        # ConfigParser interpolates '%' (URL-encoded passwords, options=-csearch_path%3D...).
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS_LOCATION}")
    return head


def current_revision(connectable: Engine | Connection) -> str | None:
    """The revision the database is at, None for a database never migrated."""
    if isinstance(connectable, Connection):
        return MigrationContext.configure(connectable, opts={"version_table": VERSION_TABLE}).get_current_revision()
    with connectable.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def ensure_schema(engine: Engine) -> str:
    """Upgrade the database (the first schema on the search_path) to the latest revision.

    Runs in one transaction under a transaction-scoped advisory lock: concurrent callers (the
    webserver, a CLI, a run worker) wait for the first one and then find the schema up to date.
    PostgreSQL DDL is transactional, so a failed migration leaves the schema as it was.
    Returns the revision the database is at afterwards.
    """
    with engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        if schema is None:
            search_path = conn.exec_driver_sql("SHOW search_path").scalar()
            raise StoreConfigError(
                f"no existing schema on the search_path ({search_path!r}) of {safe_url(engine.url)}"
            )
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(:schema))"),
            {"key": _MIGRATION_LOCK_KEY, "schema": schema},
        )
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        revision = current_revision(conn)
    logger.info("store schema %r at revision %s on %s", schema, revision, safe_url(engine.url))
    return revision


def connect_store(settings: PlatformSettings | None = None, *, migrate: bool = True) -> Engine:
    """Engine on the configured platform database, migrated to the latest revision by default."""
    if settings is None:
        from tt_platform.settings import get_settings

        settings = get_settings()
    engine = create_store_engine(database_url(settings))
    if migrate:
        try:
            ensure_schema(engine)
        except sa.exc.OperationalError as err:
            if "connection to server" in str(err.orig or err) or "could not translate host" in str(err.orig or err):
                raise connection_failure(engine.url, err) from None
            raise
    return engine
