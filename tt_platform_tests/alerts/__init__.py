"""Local alert receivers on loopback: an HTTP server that records POSTs, an SMTP server (aiosmtpd)
that records messages, and a port where nothing listens."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    path: str
    body: dict

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class HttpReceiver:
    url: str
    port: int
    requests: list[Received] = field(default_factory=list)
    # what every request gets back: status and JSON body
    status: int = 200
    answer: dict = field(default_factory=lambda: {"ok": True})


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """An HTTP server on 127.0.0.1 (a free port) in a thread; it records each POST's path and JSON."""
    holder: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            receiver = holder["receiver"]
            receiver.requests.append(Received(self.path, json.loads(self.rfile.read(length) or b"{}")))
            body = json.dumps(receiver.answer).encode()
            self.send_response(receiver.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    holder["receiver"] = HttpReceiver(url=f"http://127.0.0.1:{port}", port=port)
    thread = threading.Thread(target=server.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    try:
        yield holder["receiver"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_receiver(*, user: str | None = None, password: str | None = None) -> Iterator[SmtpReceiver]:
    """An SMTP server (aiosmtpd) on 127.0.0.1; with ``user``/``password`` it requires that login
    (over plain SMTP: loopback only)."""
    receiver = SmtpReceiver(host="127.0.0.1", port=free_port())
    options: dict = {}
    if user is not None:

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        options = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
    controller = Controller(receiver, hostname=receiver.host, port=receiver.port, **options)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
