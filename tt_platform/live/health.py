"""An optional HTTP health endpoint for a running trading session, for a supervisor, a
container orchestrator or a monitoring probe.

``GET /health`` answers 200 with the session's state as JSON while it is healthy (running,
connected to IB, heartbeat fresh), else 503 with the same body and the problems in words.
``GET /health/live`` answers 200 as long as the process serves requests (liveness).

Standard library only: one ``ThreadingHTTPServer`` on a daemon thread. The snapshot callable
is called once per request, from the server's threads, so it must be cheap and thread-safe.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

STATUSES = ("starting", "running", "stopping", "stopped")
HEALTH_PATH = "/health"
LIVENESS_PATH = "/health/live"


def _require_aware(name: str, value: datetime | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"HealthSnapshot.{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class HealthSnapshot:
    """The session's state at ``now``. ``heartbeat_at`` is the last time the trading loop
    proved it was alive; ``open_orders`` counts orders still outstanding at the broker."""

    session_id: str
    mode: str
    status: str
    connected: bool
    market_open: bool
    last_bar_time: datetime | None
    heartbeat_at: datetime
    equity: float | None
    positions: int
    open_orders: int
    breaker_tripped: bool
    consecutive_errors: int
    now: datetime

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"HealthSnapshot.status must be one of {STATUSES}, got {self.status!r}")
        _require_aware("heartbeat_at", self.heartbeat_at)
        _require_aware("now", self.now)
        _require_aware("last_bar_time", self.last_bar_time, optional=True)

    def age_seconds(self) -> float:
        """Seconds since the last heartbeat."""
        return (self.now - self.heartbeat_at).total_seconds()

    def problems(self, stale_after_seconds: float) -> list[str]:
        """Why the session is not healthy, in words; empty when it is."""
        found = []
        if self.status != "running":
            found.append(f"session is {self.status}, not running")
        if not self.connected:
            found.append("not connected to IB")
        age = self.age_seconds()
        if age > stale_after_seconds:
            found.append(f"no heartbeat for {age:.0f} s")
        return found

    def healthy(self, stale_after_seconds: float) -> bool:
        """Running, connected to IB, and a heartbeat within ``stale_after_seconds``."""
        return not self.problems(stale_after_seconds)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: times in ISO 8601, a non-finite equity as null."""
        equity = None if self.equity is None or not math.isfinite(self.equity) else float(self.equity)
        return {
            "session_id": self.session_id,
            "mode": self.mode,
            "status": self.status,
            "connected": bool(self.connected),
            "market_open": bool(self.market_open),
            "last_bar_time": self.last_bar_time.isoformat() if self.last_bar_time else None,
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "heartbeat_age_seconds": round(self.age_seconds(), 3),
            "equity": equity,
            "positions": int(self.positions),
            "open_orders": int(self.open_orders),
            "breaker_tripped": bool(self.breaker_tripped),
            "consecutive_errors": int(self.consecutive_errors),
            "now": self.now.isoformat(),
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Set per instance by HealthServer.start.
    snapshot: Callable[[], HealthSnapshot]
    stale_after_seconds: float

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up (socket.getfqdn), which can stall on
        # DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "tt-platform-health"
    sys_version = ""

    def do_GET(self) -> None:  # named by http.server's dispatch
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == LIVENESS_PATH:
            self._send(HTTPStatus.OK, {"alive": True})
        elif path == HEALTH_PATH:
            self._health()
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found", "paths": [HEALTH_PATH, LIVENESS_PATH]})

    def _health(self) -> None:
        try:
            snapshot = self.server.snapshot()
            body = snapshot.as_dict()
            problems = snapshot.problems(self.server.stale_after_seconds)
        except Exception as exc:  # noqa: BLE001 (any failure becomes a 500 naming its class)
            # The class name only: messages and tracebacks may carry account ids or addresses.
            logger.warning("health snapshot failed: %s", type(exc).__name__)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(exc).__name__})
            return
        body["healthy"] = not problems
        body["problems"] = problems
        self._send(HTTPStatus.SERVICE_UNAVAILABLE if problems else HTTPStatus.OK, body)

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        payload = json.dumps(body, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes call every few seconds: keep them out of the session's log unless debugging.
        logger.debug("health endpoint %s: " + format, self.address_string(), *args)


class HealthServer:
    """Serves ``snapshot()`` at ``GET /health`` on ``host:port`` (port 0 picks a free one).

    Use as a context manager, or ``start()`` then ``stop()``. Bind to 127.0.0.1 (the default)
    unless a probe on another host needs it: the body names the session and its equity.
    """

    def __init__(self, snapshot: Callable[[], HealthSnapshot], host: str = "127.0.0.1", port: int = 0,
                 stale_after_seconds: float = 120.0) -> None:
        if not callable(snapshot):
            raise TypeError("HealthServer.snapshot must be a callable returning a HealthSnapshot")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"HealthServer.port must be an integer in [0, 65535], got {port!r}")
        if not (isinstance(stale_after_seconds, (int, float)) and stale_after_seconds > 0):
            raise ValueError(f"HealthServer.stale_after_seconds must be positive, got {stale_after_seconds!r}")
        self.snapshot = snapshot
        self.host = host
        self.port = port
        self.stale_after_seconds = float(stale_after_seconds)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def bound_port(self) -> int | None:
        """The port being served, or None when stopped."""
        return self._server.server_port if self._server is not None else None

    def start(self) -> int:
        """Bind and serve on a daemon thread; returns the bound port."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("HealthServer is already started")
            server_class = _Server
            if ":" in self.host:  # an IPv6 address such as ::1
                server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
            try:
                server = server_class((self.host, self.port), _Handler)
            except OSError as exc:
                raise OSError(exc.errno,
                              f"health endpoint cannot bind {self.host}:{self.port}: {exc.strerror}") from exc
            server.snapshot = self.snapshot
            server.stale_after_seconds = self.stale_after_seconds
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"health-endpoint-{server.server_port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
            logger.info("health endpoint serving on %s:%d", self.host, server.server_port)
            return server.server_port

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving and free the port; does nothing when not started."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is None:
            return
        if thread is not None and thread.is_alive():
            server.shutdown()  # returns once serve_forever has left its loop
            thread.join(timeout)
        server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
