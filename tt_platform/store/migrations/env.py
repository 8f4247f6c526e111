"""Alembic environment: no alembic.ini, no logging setup, the schema from ``store.schema``.

``tt_platform.store.engine.alembic_config`` builds the ``Config``; a caller that already holds a
connection (``ensure_schema``, under its advisory lock) passes it as ``attributes["connection"]``
so the migration runs inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from tt_platform.store.schema import VERSION_TABLE, metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        version_table=VERSION_TABLE,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from tt_platform.store.engine import create_store_engine

    engine = create_store_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
