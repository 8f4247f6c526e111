"""Catching a store write in the middle of its transaction, to fault it there.

``HeldKey`` holds, from a second connection and without committing, one key the writer under
test is about to write: it inserts a row on a key the writer will insert (``row``), or locks a
stored row the writer will delete or update (``where``). The writer's transaction then runs up
to that key (its other deletes and rows done) and waits for the holder: it is caught mid-write,
deterministically, and the test faults it there (terminates its backend, kills its process,
stops the server) before letting go. ``FaultInjector`` does that from a thread while the writer
runs on the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from tt_platform.store.engine import StoreConnectionLost, create_store_engine


def price_row(bar: pd.Series, source: str) -> dict:
    """The tt_prices row of a daily bar (a row of ``read_bars``), to hold its key."""
    return {"instrument": bar["symbol"], "interval": "1d", "adjusted": False, "ts": bar["ts"].to_pydatetime(),
            **{c: float(bar[c]) for c in ("open", "high", "low", "close", "volume")}, "source": source}


def coverage_row(bar: pd.Series, source: str) -> dict:
    """A tt_bar_coverage row for the month of a daily bar, to hold its key."""
    ts = bar["ts"].to_pydatetime()
    return {"instrument": bar["symbol"], "interval": "1d", "adjusted": False, "partition_key": ts.strftime("%Y-%m"),
            "status": "stored", "rows": 1, "first_ts": ts, "last_ts": ts, "fetched_through": ts, "source": source}


def _engine(url: str) -> sa.Engine:
    return create_store_engine(url, poolclass=sa.pool.NullPool)


class HeldKey:
    """A key of ``table`` held until ``release()``: an uncommitted insert of ``row``, or a lock
    on the stored rows matching ``where`` (column -> value)."""

    def __init__(self, url: str, table: sa.Table, *, row: dict | None = None, where: dict | None = None) -> None:
        if (row is None) == (where is None):
            raise ValueError("HeldKey needs a row to insert or a where to lock, not both")
        self.url, self.table, self.row, self.where = url, table, row, where
        self._engine = _engine(url)
        self._conn: sa.Connection | None = None
        self.pid: int | None = None

    def __enter__(self) -> HeldKey:
        self._conn = self._engine.connect()
        self.pid = self._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        if self.row is not None:
            self._conn.execute(self.table.insert().values(**self.row))
        else:
            match = [self.table.c[name] == value for name, value in self.where.items()]
            keys = list(self.table.primary_key.columns)
            locked = self._conn.execute(sa.select(*keys).where(*match).with_for_update()).all()
            assert locked, f"no stored {self.table.name} row matches {self.where}"
        return self

    def writer_pid(self, timeout: float = 120.0) -> int:
        """The backend waiting for this row: the writer, caught inside its transaction."""
        deadline = time.monotonic() + timeout
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
            while time.monotonic() < deadline:
                waiting = probe.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))"),
                    {"holder": self.pid},
                ).scalars().all()
                if waiting:
                    assert len(waiting) == 1, f"several writers wait on the held {self.table.name} row: {waiting}"
                    return waiting[0]
                time.sleep(0.05)
        raise AssertionError(f"no writer reached the held {self.table.name} row within {timeout:.0f} s")

    def release(self) -> None:
        """Roll the held row back (the writer goes on, if it still lives); idempotent, and quiet
        when the server took the connection away."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
            conn.close()
        except (sa.exc.DBAPIError, StoreConnectionLost):  # the server went away under it
            conn.invalidate()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._engine.dispose()


def terminate_backend(url: str, pid: int) -> None:
    """``pg_terminate_backend(pid)`` from a connection of its own."""
    with _engine(url).connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one(), pid


def wait_backend_gone(url: str, pid: int, timeout: float = 30.0) -> None:
    """Until backend ``pid`` has ended (a backend whose client was killed ends once it next
    talks to it: its transaction is rolled back, never committed)."""
    deadline = time.monotonic() + timeout
    with _engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
        while probe.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one():
            assert time.monotonic() < deadline, f"backend {pid} still there after {timeout:.0f} s"
            time.sleep(0.05)


class FaultInjector(threading.Thread):
    """Waits for the writer to reach ``held``'s row, calls ``fault(writer_pid)``, then releases
    the row; ``join_and_check()`` re-raises what went wrong in the thread."""

    def __init__(self, held: HeldKey, fault: Callable[[int], None], timeout: float = 120.0) -> None:
        super().__init__(name=f"fault-injector-{held.table.name}", daemon=True)
        self.held, self.fault, self.timeout = held, fault, timeout
        self.writer: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.writer = self.held.writer_pid(self.timeout)
            self.fault(self.writer)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
        finally:
            self.held.release()

    def join_and_check(self, timeout: float = 180.0) -> int:
        self.join(timeout)
        assert not self.is_alive(), "the fault injector did not finish"
        if self.error is not None:
            raise self.error
        assert self.writer is not None
        return self.writer
