"""Store faults for runs in other processes: each writer connects under an application name of
its own, so one of its backends can be found in pg_stat_activity and terminated
(pg_terminate_backend) in the middle of its work; never the server itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from tt_platform.store.engine import create_store_engine, normalize_url


def tagged_url(url: str, application_name: str) -> str:
    """``url`` whose connections name themselves ``application_name`` (pg_stat_activity)."""
    return normalize_url(url).update_query_dict({"application_name": application_name}).render_as_string(
        hide_password=False)


class BackendTerminator:
    """Terminates a backend of ``application_name`` while it runs a statement matching
    ``statement`` (a case-insensitive PostgreSQL regex: the write to fault), from a thread, once
    ``ready()`` says the work under test is under way; ``times`` times, ``spacing_seconds``
    apart. ``terminated`` lists (pid, statement) of each."""

    def __init__(self, url: str, application_name: str, statement: str, *, ready: Callable[[], bool] = lambda: True,
                 times: int = 1, spacing_seconds: float = 2.0) -> None:
        self.application_name, self.statement, self.ready = application_name, statement, ready
        self.times, self.spacing_seconds = times, spacing_seconds
        self.terminated: list[tuple[int, str, str]] = []
        self.errors: list[str] = []
        self._engine = create_store_engine(url, poolclass=sa.pool.NullPool)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"terminate-{application_name}", daemon=True)

    def start(self) -> BackendTerminator:
        self._thread.start()
        return self

    def _writing(self, conn: sa.Connection) -> list[tuple[int, str]]:
        rows = conn.execute(sa.text(
            "SELECT pid, query FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid() "
            "AND state = 'active' AND query ~* :statement"),
            {"name": self.application_name, "statement": self.statement}).all()
        return [(int(pid), " ".join(str(query).split())[:100]) for pid, query in rows]

    def _run(self) -> None:
        try:
            while not self.ready():
                if self._stop.wait(0.2):
                    return
            with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                while not self._stop.is_set() and len(self.terminated) < self.times:
                    for pid, query in self._writing(conn)[:1]:
                        if conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one():
                            self.terminated.append((pid, query))
                            self._stop.wait(self.spacing_seconds)
                    time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()


def sanity_counts(url: str, tables: list[str]) -> dict[str, int]:
    """A fresh connection runs a query on each table (the server answers, the tables read)."""
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            return {table: int(conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()) for table in tables}
    finally:
        engine.dispose()
