"""Alert channels: the log (always), a webhook, email (SMTP) and Telegram, chosen by environment.

Every channel's ``send`` either delivers or raises ``AlertDeliveryError`` with one line naming the
channel and the server (host and port), never the webhook path, the Telegram token or the SMTP
password. ``CompositeNotifier`` sends through every channel side by side and logs a warning for
each one that fails, so one unreachable receiver neither hides the alert from the others nor
fails the sensor that raised it.

Network channels retry transient failures (connection errors, timeouts, HTTP 429 and 5xx, SMTP
4xx) with a short backoff: three attempts at most, none started after ``RETRY_WINDOW_SECONDS``; a
refusal (HTTP 4xx, SMTP authentication) is not retried.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from tenacity import retry, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from tt_platform.alerts.settings import AlertSettings

logger = logging.getLogger("tt_platform.alerts")

Severity = Literal["error", "warning", "info"]
ATTEMPTS = 3
RETRY_WINDOW_SECONDS = 10
# Telegram refuses messages longer than this
TELEGRAM_TEXT_LIMIT = 4096


@dataclass(frozen=True)
class Alert:
    """What happened, for people: a title, a few lines of text, labelled fields and a link."""

    title: str
    text: str
    severity: Severity = "error"
    fields: Mapping[str, str] = field(default_factory=dict)
    link: str | None = None
    source: str = "tt-platform"

    def as_text(self) -> str:
        lines = [self.title, self.text] + [f"{name}: {value}" for name, value in self.fields.items()]
        if self.link:
            lines.append(self.link)
        return "\n".join(line for line in lines if line)

    def as_payload(self) -> dict[str, object]:
        # "text" holds the whole message, so Slack- and Mattermost-style receivers show it as is
        return {
            "text": self.as_text(),
            "title": self.title,
            "message": self.text,
            "severity": self.severity,
            "fields": dict(self.fields),
            "link": self.link,
            "source": self.source,
        }


class AlertDeliveryError(RuntimeError):
    """A channel could not deliver an alert; the message names the channel and the server only."""


class AlertConfigError(ValueError):
    """The alert settings configure a channel only in part (e.g. an SMTP host but no recipient)."""


@runtime_checkable
class Notifier(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise ``AlertDeliveryError``."""


class LogNotifier:
    """Writes the alert to the ``tt_platform.alerts`` logger (the process's log: daemon or code
    server) and to any ``also`` logger, e.g. a sensor's tick log shown in the Dagster UI."""

    name = "log"

    def __init__(self, *also: logging.Logger) -> None:
        self.logs = [logger, *also]

    def send(self, alert: Alert) -> None:
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(alert.severity, logging.INFO)
        for log in self.logs:
            log.log(level, "ALERT %s", alert.as_text().replace("\n", " | "))


def _transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 429 or error.code >= 500
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500  # 4xx: try again later
    return isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout,
                              smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError))


def _with_retries(function):
    return retry(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(RETRY_WINDOW_SECONDS),
        wait=wait_exponential(multiplier=0.5, max=2),
        reraise=True,
    )(function)


def _answer_description(error: urllib.error.HTTPError) -> str:
    """What the receiver said about a refusal, when it answered JSON with a description (the
    Telegram Bot API does: "Bad Request: chat not found")."""
    try:
        answer = json.loads(error.read(2000) or b"{}")
    except (OSError, ValueError):
        return ""
    if not isinstance(answer, dict):
        return ""
    return str(answer.get("description") or answer.get("message") or "")[:200]


def _reason(error: BaseException, *secrets: str | None) -> str:
    """The failure in a few words, without any of ``secrets``."""
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
        detail = _answer_description(error)
        if detail:
            text += f" ({detail})"
    elif isinstance(error, urllib.error.URLError):
        text = str(error.reason)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return _masked(text, *secrets)


def _masked(text: str, *secrets: str | None) -> str:
    text = " ".join(text.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# a piece of a webhook URL's path or query at least this long may be (part of) its token
TOKEN_PIECE_CHARS = 6


def url_secrets(url: str) -> list[str]:
    """What of ``url`` may carry a token, longest first: the URL, its password, path and query,
    and each path segment and query value (a receiver's error may echo any of them)."""
    parts = urlsplit(url)
    pieces = {url, parts.password or "", parts.path, parts.query,
              *parts.path.split("/"), *(value for _, value in parse_qsl(parts.query))}
    return sorted((p for p in pieces if len(p) >= TOKEN_PIECE_CHARS), key=len, reverse=True)


def server_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: no credentials, path or query (where tokens live)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise AlertConfigError("an alert URL must look like https://host[:port]/path")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _post_json(url: str, payload: Mapping[str, object], timeout: float) -> bytes:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "tt-platform-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked
        return response.read()


def _check_http(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise AlertConfigError("an alert URL must start with http:// or https://")
    return server_of(url)


class WebhookNotifier:
    """POSTs the alert as JSON (``Alert.as_payload``) to a URL."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.shown = _check_http(url)
        self._url = url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.shown})"

    def send(self, alert: Alert) -> None:
        try:
            _with_retries(_post_json)(self._url, alert.as_payload(), self.timeout)
        except Exception as error:  # noqa: BLE001 - reported as one line without the URL's path
            reason = _reason(error, *url_secrets(self._url))
            raise AlertDeliveryError(f"webhook: POST to {self.shown} failed: {reason}") from None


class TelegramNotifier:
    """Sends the alert's text through the Telegram Bot API (``sendMessage``)."""

    name = "telegram"

    def __init__(self, token: str, chat_id: str, *, api: str = "https://api.telegram.org", timeout: float = 5.0) -> None:
        if not token.strip() or not str(chat_id).strip():
            raise AlertConfigError("telegram needs both TT_ALERT_TELEGRAM_TOKEN and TT_ALERT_TELEGRAM_CHAT_ID")
        base = api.strip().rstrip("/")
        self.shown = f"{_check_http(base)}/bot***/sendMessage"
        self._token = token.strip()
        self._url = f"{base}/bot{self._token}/sendMessage"
        self.chat_id = str(chat_id).strip()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"TelegramNotifier({self.shown}, chat {self.chat_id})"

    def send(self, alert: Alert) -> None:
        payload = {"chat_id": self.chat_id, "text": alert.as_text()[:TELEGRAM_TEXT_LIMIT],
                   "disable_web_page_preview": True}
        try:
            body = _with_retries(_post_json)(self._url, payload, self.timeout)
        except Exception as error:  # noqa: BLE001 - the URL holds the bot token: never shown
            raise AlertDeliveryError(f"telegram: POST to {self.shown} failed: {_reason(error, self._token)}") from None
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("ok") is False:
            description = _masked(str(answer.get("description") or "no reason given"), self._token)
            raise AlertDeliveryError(f"telegram: {self.shown} refused the message: {description}")


class SmtpNotifier:
    """Sends the alert as a plain-text email; STARTTLS and login when configured."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 5.0,
    ) -> None:
        if not recipients:
            raise AlertConfigError("email alerts need TT_ALERT_SMTP_TO (comma-separated addresses)")
        if not sender:
            raise AlertConfigError("email alerts need TT_ALERT_SMTP_FROM (the sender address)")
        if password and not user:
            raise AlertConfigError("TT_ALERT_SMTP_PASSWORD is set but TT_ALERT_SMTP_USER is not")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.user, self._password, self.starttls, self.timeout = user, password, starttls, timeout

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host}:{self.port} -> {', '.join(self.recipients)})"

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[tt-platform {alert.severity}] {alert.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.as_text())
        return message

    def _deliver(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as server:
            if self.starttls:
                server.starttls(context=ssl.create_default_context())
            if self.user:
                server.login(self.user, self._password or "")
            server.send_message(message)

    def send(self, alert: Alert) -> None:
        try:
            _with_retries(self._deliver)(self.message(alert))
        except Exception as error:  # noqa: BLE001 - one line naming the server, never the password
            raise AlertDeliveryError(
                f"email: SMTP at {self.host}:{self.port} failed: {_reason(error, self._password)}"
            ) from None


@dataclass(frozen=True)
class Delivery:
    """Which channels delivered an alert and which failed (channel name -> reason)."""

    sent: tuple[str, ...]
    failed: Mapping[str, str]

    def summary(self) -> str:
        text = f"sent via {', '.join(self.sent) or 'no channel'}"
        return text + (f"; failed: {', '.join(self.failed)}" if self.failed else "")


class CompositeNotifier:
    """The log first, then every other channel side by side; a failing channel is logged as a
    warning naming it and never stops the others."""

    name = "all"

    def __init__(self, channels: Sequence[Notifier], *also: logging.Logger) -> None:
        self.logs = [logger, *also]
        logs = [c for c in channels if isinstance(c, LogNotifier)]
        self.channels: list[Notifier] = (logs or [LogNotifier(*also)]) + [
            c for c in channels if not isinstance(c, LogNotifier)
        ]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def _attempt(self, channel: Notifier, alert: Alert) -> str | None:
        try:
            channel.send(alert)
        except AlertDeliveryError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - a channel's bug must not silence the others
            return f"{channel.name}: {type(error).__name__}"
        return None

    def send(self, alert: Alert) -> Delivery:
        outcomes: dict[str, str | None] = {}
        local, remote = self.channels[0], self.channels[1:]
        outcomes[local.name] = self._attempt(local, alert)
        if remote:
            with ThreadPoolExecutor(max_workers=len(remote), thread_name_prefix="tt-alert") as pool:
                futures = {c.name: pool.submit(self._attempt, c, alert) for c in remote}
            outcomes |= {name: future.result() for name, future in futures.items()}
        failed = {name: reason for name, reason in outcomes.items() if reason is not None}
        for name, reason in failed.items():
            for log in self.logs:
                log.warning("alert channel %s failed, the other channels still got %r: %s", name, alert.title, reason)
        return Delivery(sent=tuple(n for n, r in outcomes.items() if r is None), failed=failed)


def notifier_from_settings(settings: AlertSettings, *also: logging.Logger) -> CompositeNotifier:
    """The log (``tt_platform.alerts`` and ``also``), plus each channel the settings configure. A
    channel configured in part raises ``AlertConfigError`` naming the missing variable."""
    channels: list[Notifier] = [LogNotifier(*also)]
    timeout = settings.timeout_seconds
    if settings.webhook_url is not None:
        channels.append(WebhookNotifier(settings.webhook_url.get_secret_value(), timeout=timeout))
    if settings.smtp_host:
        channels.append(
            SmtpNotifier(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from or "",
                settings.smtp_recipients,
                user=settings.smtp_user,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
                timeout=timeout,
            )
        )
    elif settings.smtp_recipients:
        raise AlertConfigError("TT_ALERT_SMTP_TO is set but TT_ALERT_SMTP_HOST is not")
    if settings.telegram_token is not None or settings.telegram_chat_id:
        if settings.telegram_token is None:
            raise AlertConfigError("TT_ALERT_TELEGRAM_CHAT_ID is set but TT_ALERT_TELEGRAM_TOKEN is not")
        channels.append(
            TelegramNotifier(settings.telegram_token.get_secret_value(), settings.telegram_chat_id or "",
                             api=settings.telegram_api, timeout=timeout)
        )
    return CompositeNotifier(channels, *also)
