"""Client-id leases: two runs on one machine never connect to the same gateway with the same id.

IB Gateway drops a second connection that uses a client id already connected (error 326, then the
socket closes), which a run only sees as a connect timeout. Each run therefore takes a lease on
its client id: an exclusive ``flock`` on a small file per (host, port, id), held while it is
connected and released by the kernel if the process dies. A run that finds its id taken uses the
next free one, and says so.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_SPAN = 32  # ids tried after the configured one


class ClientIdsInUse(RuntimeError):
    """Every client id of the span is leased by another run on this machine."""


class ClientIdLease:
    def __init__(self, folder: str | Path, host: str, port: int, wanted: int, span: int = DEFAULT_SPAN) -> None:
        self.folder, self.host, self.port, self.wanted, self.span = Path(folder), host, port, wanted, span
        self._fd: int | None = None
        self.client_id: int | None = None

    def _path(self, client_id: int) -> Path:
        safe_host = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in self.host)
        return self.folder / f"ib-{safe_host}-{self.port}-{client_id}.lock"

    def acquire(self) -> int:
        if self.client_id is not None:
            return self.client_id
        self.folder.mkdir(parents=True, exist_ok=True)
        for client_id in range(self.wanted, self.wanted + self.span):
            fd = os.open(self._path(client_id), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd, self.client_id = fd, client_id
            if client_id != self.wanted:
                log.warning(
                    "IB client id %d at %s:%d is used by another run on this machine; this run uses %d",
                    self.wanted, self.host, self.port, client_id,
                )
            return client_id
        raise ClientIdsInUse(
            f"IB client ids {self.wanted}..{self.wanted + self.span - 1} at {self.host}:{self.port} are all in use "
            "by other runs on this machine; wait for one to end or set IB_CLIENT_ID to a free range"
        )

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd, self.client_id = None, None
