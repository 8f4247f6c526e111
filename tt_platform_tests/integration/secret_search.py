"""Looking for secret values in everything a platform run leaves behind: texts, files (zip
members and SQLite databases opened up), every table of a PostgreSQL database, a Dagster
instance's runs and event logs, an MLflow tracking store.

A secret counts as found in any spelling a program could plausibly give it: as is,
percent-encoded (upper- or lower-case hex, ``+`` for spaces, ``%`` doubled as ConfigParser
wants), or as any run of six or more letters and digits of it, so a value cut at a special
character, or encoded in some other way, is still caught. A masked form (``DU…9428``) keeps
too little of the value to match.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import sqlalchemy as sa

FRAGMENT = re.compile(r"[A-Za-z0-9]{6,}")
SQLITE_HEADER = b"SQLite format 3\x00"
CONTEXT_CHARS = 60
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class Secret:
    """A value that must never be shown or stored: ``name`` says what it is (for messages)."""

    name: str
    value: str

    def needles(self) -> frozenset[str]:
        quoted = quote(self.value, safe="")
        spellings = {
            self.value,
            quoted,
            re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted),
            quote_plus(self.value),
            quoted.replace("%", "%%"),
        }
        return frozenset(spellings | set(FRAGMENT.findall(self.value)))


@dataclass(frozen=True)
class Leak:
    secret: str
    place: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.place}: ...{self.excerpt}..."


@dataclass
class SecretSearch:
    """Searches texts for ``secrets``; counts what it searched per kind of place."""

    secrets: list[Secret]
    leaks: list[Leak] = field(default_factory=list)
    searched: dict[str, int] = field(default_factory=dict)

    def text(self, kind: str, place: str, text: str | bytes) -> None:
        """Search one text (or bytes) found at ``place``, a place of ``kind``."""
        self.searched[kind] = self.searched.get(kind, 0) + 1
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        for secret in self.secrets:
            for needle in secret.needles():
                at = data.find(needle.encode())
                if at >= 0:
                    self.leaks.append(Leak(secret.name, place, _excerpt(data, at, needle, secret)))
                    break

    def file(self, kind: str, path: Path) -> None:
        """A file's bytes; a zip archive's members and a SQLite database's rows as well."""
        data = path.read_bytes()
        self.text(kind, str(path), data)
        if data.startswith(SQLITE_HEADER):
            self.text(kind, f"{path} (rows)", sqlite_dump(path))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    self.text(kind, f"{path}!{member}", archive.read(member))

    def tree(self, kind: str, root: Path, *, skip: Iterable[Path] = ()) -> None:
        """Every file under ``root`` (symlinks not followed), except those under ``skip``."""
        skipped = [Path(p).resolve() for p in skip]
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            if any(path.resolve().is_relative_to(folder) for folder in skipped):
                continue
            self.file(kind, path)

    def report(self) -> str:
        return "\n".join(str(leak) for leak in self.leaks)


def _excerpt(data: bytes, at: int, needle: str, secret: Secret) -> str:
    """The text around a hit, the secret itself replaced by its name."""
    piece = data[max(0, at - CONTEXT_CHARS): at + len(needle) + CONTEXT_CHARS].decode("utf-8", "replace")
    for spelling in sorted(secret.needles(), key=len, reverse=True):
        piece = piece.replace(spelling, f"<{secret.name}>")
    return " ".join(piece.split())


def sqlite_dump(path: Path) -> str:
    """Every row of every table of a SQLite database, one line per row. Read from a copy: the
    database may still be open elsewhere."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(path.read_bytes())
        connection = sqlite3.connect(copy)
        try:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            lines = []
            for table in tables:
                for row in connection.execute(f'SELECT * FROM "{table}"'):
                    lines.append(f"{table}: {row!r}")
            return "\n".join(lines)
        finally:
            connection.close()


def _cell_text(value: object) -> str:
    """A column value as text; binary values zlib-decompressed when they are (Dagster keeps its
    job and execution-plan snapshots that way)."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        try:
            value = zlib.decompress(value)
        except zlib.error:
            pass
        return value.decode("utf-8", "replace")
    return repr(value)


def postgres_tables(engine: sa.Engine) -> Iterator[tuple[str, list[str]]]:
    """(schema.table, its rows as text) for every table of every non-system schema."""
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN :system "
            "AND table_schema NOT LIKE 'pg_temp%' AND table_schema NOT LIKE 'pg_toast%' "
            "ORDER BY 1, 2"
        ).bindparams(sa.bindparam("system", expanding=True)), {"system": list(SYSTEM_SCHEMAS)}).all()
        for schema, table in tables:
            rows = conn.exec_driver_sql(f'SELECT * FROM "{schema}"."{table}"').all()
            yield f"{schema}.{table}", [" | ".join(_cell_text(value) for value in row) for row in rows]


def dagster_texts(instance) -> Iterator[tuple[str, str]]:
    """(place, text) for every run of ``instance``: the run (config, tags, origins) and each of
    its event records, serialized as the instance stores them."""
    from dagster._serdes import serialize_value

    for run in instance.get_runs():
        yield f"run {run.run_id}", serialize_value(run)
        for entry in instance.all_logs(run.run_id):
            yield f"run {run.run_id} event {entry.dagster_event_type or 'log'}", serialize_value(entry)


def mlflow_texts(store_uri: str) -> Iterator[tuple[str, str, str]]:
    """(kind, place, text) for the experiments, runs (params, tags, metric names), registered
    models and their versions, and logged models of an MLflow tracking store."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    for experiment in experiments:
        yield "mlflow experiment", f"experiment {experiment.name}", repr((experiment.name, experiment.tags,
                                                                           experiment.artifact_location))
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=10_000):
            place = f"mlflow run {run.info.run_id}"
            yield "mlflow params", place, "\n".join(f"{k}={v}" for k, v in run.data.params.items())
            yield "mlflow tags", place, "\n".join(f"{k}={v}" for k, v in run.data.tags.items())
            yield "mlflow metric names", place, "\n".join(run.data.metrics)
            yield "mlflow run info", place, repr((run.info.run_name, run.info.artifact_uri))
    for model in client.search_registered_models():
        yield "mlflow registry", f"registered model {model.name}", repr((model.name, model.tags, model.description,
                                                                         model.aliases))
        for version in client.search_model_versions(f"name = '{model.name}'"):
            yield "mlflow registry", f"model {model.name} version {version.version}", repr(
                (version.source, version.tags, version.description, version.run_id))
    if experiments:
        for logged in client.search_logged_models([e.experiment_id for e in experiments]):
            yield "mlflow logged models", f"logged model {logged.model_id}", repr(
                (logged.name, logged.params, logged.tags, logged.artifact_location))
