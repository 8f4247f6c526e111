"""A private PostgreSQL server started from the ``pgserver`` wheel, shared by every process.

The Dagster webserver, the CLI and the tests may all point at the same ``TT_HOME``: the first
one to ask starts the server, the others reuse it. The server is started with
``cleanup_mode=None`` so it outlives the process that started it (a CLI call must not take the
database away from a running webserver); ``stop()`` ends it explicitly.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fasteners
import psutil
import psycopg2

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes with it.
    warnings.simplefilter("ignore")
    from pgserver import postgres_server
    from pgserver.utils import PostmasterInfo

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DATABASE = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or reached; the message names the data folder."""


class EmbeddedPostgres:
    """Handle on the PostgreSQL server whose data folder is ``data_dir``.

    Creating the handle does nothing; ``start()`` / ``url()`` initialise the folder on first use
    and start the server unless one is already running on it (in this or another process).
    """

    def __init__(self, data_dir: Path | str, *, durable: bool = True):
        """``durable=False`` is for throwaway servers (tests, quick benchmarks): initdb skips
        its final sync and the server runs with fsync, synchronous_commit and full_page_writes
        off, so a crash may lose or corrupt its data, but start and shutdown take a fraction
        of the time on a busy disk."""
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.durable = durable
        # Next to the data folder, not inside it: initdb refuses a non-empty folder. pgserver has
        # its own lock, but it lives under XDG_RUNTIME_DIR, which differs between processes
        # started from different environments (a service vs. a shell).
        self._lock = fasteners.InterProcessLock(str(self.data_dir.with_name(self.data_dir.name + ".lock")))

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, running={self.is_running()})"

    def _postmaster(self) -> PostmasterInfo | None:
        try:
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
        except (OSError, AssertionError, ValueError):
            # A postmaster.pid being written right now, or left truncated by a crash.
            return None
        if info is None or not info.is_running() or info.status != "ready":
            return None
        try:
            # after a reboot a stale postmaster.pid may name a pid that now belongs to another program
            if not info.process.name().startswith("postgres"):
                return None
        except psutil.Error:
            return None
        return info

    def is_running(self) -> bool:
        return self._postmaster() is not None

    def start(self) -> EmbeddedPostgres:
        """Start the server unless it runs already; safe to call from several processes at once."""
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise EmbeddedPostgresError(
                f"cannot create the folder for the embedded PostgreSQL {self.data_dir}: {err}"
            ) from err
        with self._lock:
            if self._postmaster() is None:
                # pgserver caches handles per folder; a cached handle on a server stopped by
                # another process would hand back a dead socket.
                self._forget_pgserver_handle()
                self._clear_stale_pid_file()
                logger.info("starting embedded PostgreSQL in %s", self.data_dir)
                try:
                    with _initdb_options([] if self.durable else ["--no-sync"]):
                        postgres_server.get_server(self.data_dir, cleanup_mode=None)
                except Exception as err:  # pgserver raises CalledProcessError, AssertionError, ...
                    raise EmbeddedPostgresError(
                        f"could not start the embedded PostgreSQL in {self.data_dir}: {err!r}"
                        f"{self._log_tail()}"
                    ) from err
            self._check_connectable()
            if not self.durable:
                self._relax_durability()
        return self

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        """SQLAlchemy URL over the unix socket (``postgresql+psycopg2://…?host=<socket folder>``)."""
        info = self._postmaster()
        if info is None:
            self.start()
            info = self._postmaster()
        if info is None or info.socket_dir is None:
            raise EmbeddedPostgresError(f"embedded PostgreSQL in {self.data_dir} has no unix socket")
        return f"postgresql+psycopg2://{SUPERUSER}:@/{database}?host={info.socket_dir}"

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the server (fast shutdown: open sessions are ended). No-op when it is not running."""
        with self._lock:
            self._forget_pgserver_handle()
            info = self._postmaster()
            if info is None:
                return
            logger.info("stopping embedded PostgreSQL in %s", self.data_dir)
            # SIGINT is PostgreSQL's "fast shutdown". Signalling the postmaster directly avoids
            # pg_ctl, which runs as the server's OS user and needs to traverse the data folder's
            # parents (test runners re-tighten their temp folders to 0700 while we run).
            try:
                info.process.send_signal(signal.SIGINT)
            except psutil.NoSuchProcess:
                return
            except psutil.AccessDenied as err:
                raise EmbeddedPostgresError(f"not allowed to stop the embedded PostgreSQL in {self.data_dir}") from err
            # The postmaster removes postmaster.pid as its last act (what pg_ctl waits for too);
            # waiting for the process itself can hang on a zombie nobody reaps (container init).
            deadline = time.monotonic() + timeout
            while (self.data_dir / "postmaster.pid").exists():
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"the embedded PostgreSQL in {self.data_dir} did not stop within {timeout:.0f} s"
                        f"{self._log_tail()}"
                    )
                time.sleep(0.02)

    def _clear_stale_pid_file(self) -> None:
        """Remove a postmaster.pid whose pid is alive but not PostgreSQL (pid reuse after a
        reboot): pgserver would take it for a running server. PostgreSQL itself replaces pid
        files of dead processes."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            if psutil.Process(pid).name().startswith("postgres"):
                return
        except (OSError, ValueError, psutil.NoSuchProcess):
            return
        except psutil.AccessDenied:
            return  # a process we cannot inspect is not proven stale: leave its pid file alone
        logger.warning("removing stale %s (pid %s is not PostgreSQL)", pid_file, pid)
        pid_file.unlink(missing_ok=True)

    def _forget_pgserver_handle(self) -> None:
        handle = postgres_server.PostgresServer._instances.pop(self.data_dir, None)
        if handle is not None:
            atexit.unregister(handle._cleanup)
            handle.global_process_id_list.get_and_remove(os.getpid())

    def _check_connectable(self) -> None:
        info = self._postmaster()
        if info is None or info.socket_dir is None:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL in {self.data_dir} is not running after start{self._log_tail()}"
            )
        try:
            psycopg2.connect(
                dbname=DEFAULT_DATABASE, user=SUPERUSER, host=str(info.socket_dir), connect_timeout=10
            ).close()
        except psycopg2.Error as err:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL in {self.data_dir} does not accept connections: {err}{self._log_tail()}"
            ) from err

    def _relax_durability(self) -> None:
        info = self._postmaster()
        assert info is not None and info.socket_dir is not None
        conn = psycopg2.connect(dbname=DEFAULT_DATABASE, user=SUPERUSER, host=str(info.socket_dir))
        try:
            conn.autocommit = True  # ALTER SYSTEM refuses to run in a transaction block
            with conn.cursor() as cursor:
                for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                    cursor.execute(f"ALTER SYSTEM SET {setting} = off")
                cursor.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()

    def _log_tail(self, lines: int = 20) -> str:
        log = self.data_dir / "log"
        if not log.is_file():
            return ""
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        return f"\n--- last lines of {log} ---\n" + "\n".join(tail)


_initdb_patch_lock = threading.Lock()


@contextmanager
def _initdb_options(extra: list[str]) -> Iterator[None]:
    """Append ``extra`` to the initdb command line pgserver runs (it has no parameter for it)."""
    if not extra:
        yield
        return
    with _initdb_patch_lock:
        original = postgres_server.initdb

        def initdb(args: list[str], **kwargs):
            return original([*args, *extra], **kwargs)

        postgres_server.initdb = initdb
        try:
            yield
        finally:
            postgres_server.initdb = original
