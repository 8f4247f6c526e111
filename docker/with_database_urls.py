#!/usr/bin/env python3
"""Run a command with the PostgreSQL URLs it needs, built from the separate credentials.

Compose substitutes variables but cannot URL-encode them, so a password such as ``p@ss:w/rd%``
written into a URL in docker-compose.yml would break it (or point it at another host). The
containers get POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_HOST, POSTGRES_PORT and the name of
each database they use; this builds each URL with user and password percent-encoded, exports
it and then replaces itself with the command (exec), so the server receives signals directly.

    with-database-urls dagster-daemon run -w docker/workspace.docker.yaml

Database name variable -> URL variable it yields:
    TT_DB_NAME          -> TT_DB_URL                 (the platform's tt_ tables)
    TT_DAGSTER_DB_NAME  -> TT_DAGSTER_PG_URL         (Dagster's instance storage)
    MLFLOW_DB_NAME      -> MLFLOW_BACKEND_STORE_URI  (read by `mlflow server`)

A URL variable that is already set is kept. ``docker compose exec`` and healthchecks do not pass
through the image's entrypoint: prefix such commands with ``with-database-urls`` when they open
a database (``dagster job launch``, ``tt ...``, ``dagster-daemon liveness-check``).

Standard library only: the MLflow image runs it too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import quote

PROGRAM = "with-database-urls"
DRIVER = "postgresql+psycopg2"  # the installed driver; SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3
DATABASE_URL_VARIABLES = {
    "TT_DB_NAME": "TT_DB_URL",
    "TT_DAGSTER_DB_NAME": "TT_DAGSTER_PG_URL",
    "MLFLOW_DB_NAME": "MLFLOW_BACKEND_STORE_URI",
}
CREDENTIAL_VARIABLES = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_HOST", "POSTGRES_PORT")
DEFAULT_PORT = "5432"


class CredentialsError(ValueError):
    """A variable needed to build a URL is missing or invalid; the message names it."""


def database_url(user: str, password: str, host: str, port: str, database: str) -> str:
    """``postgresql+psycopg2://user:password@host:port/database`` with every part that may hold
    reserved characters percent-encoded."""
    return (
        f"{DRIVER}://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{host}:{port}/{quote(database, safe='')}"
    )


def _required(environ: Mapping[str, str], name: str, wanted_by: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise CredentialsError(f"{name} is not set (needed to build {wanted_by})")
    return value


def database_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """The URL variables to export for the database names set in ``environ``."""
    urls: dict[str, str] = {}
    for name_variable, url_variable in DATABASE_URL_VARIABLES.items():
        database = environ.get(name_variable, "")
        if not database or environ.get(url_variable):
            continue
        user = _required(environ, "POSTGRES_USER", url_variable)
        password = _required(environ, "POSTGRES_PASSWORD", url_variable)
        host = _required(environ, "POSTGRES_HOST", url_variable)
        port = environ.get("POSTGRES_PORT") or DEFAULT_PORT
        if not port.isdigit():
            raise CredentialsError(f"POSTGRES_PORT must be a port number, got {port!r}")
        urls[url_variable] = database_url(user, password, host, port, database)
    return urls


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(f"usage: {PROGRAM} COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        urls = database_urls(os.environ)
    except CredentialsError as err:
        print(f"{PROGRAM}: {err}", file=sys.stderr)
        return 2
    os.environ.update(urls)
    try:
        os.execvp(argv[0], list(argv))
    except OSError as err:
        print(f"{PROGRAM}: cannot run {argv[0]}: {err.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
