"""Alert channels end to end against receivers on loopback: a webhook and the Telegram Bot API on
a local HTTP server, email on a local SMTP server; secrets never in logs or errors."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from pydantic import ValidationError

from tt_platform.alerts import (
    Alert,
    AlertConfigError,
    AlertDeliveryError,
    AlertSettings,
    LogNotifier,
    SmtpNotifier,
    TelegramNotifier,
    WebhookNotifier,
    notifier_from_settings,
)
from tt_platform_tests.alerts import free_port, http_receiver, smtp_receiver

TOKEN = "123456:AAH-very-secret-bot-token"
PASSWORD = "s3cret-pa55word"
HOOK_SECRET = "T000/B000/hook-secret-path"

ALERT = Alert(
    title="Run failed: main_job",
    text="bars: ValueError: boom",
    fields={"job": "main_job", "run_id": "abc-123"},
    link="http://127.0.0.1:3000/runs/abc-123",
)


@pytest.fixture(autouse=True)
def no_alert_environment(monkeypatch, tmp_path):
    """Only what a test passes configures a channel (no TT_ALERT_* from the shell or a .env)."""
    import os

    for name in list(os.environ):
        if name.startswith("TT_ALERT_") or name == "TT_UI_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values) -> AlertSettings:
    return AlertSettings(**values)


def test_only_the_log_without_configuration(caplog):
    notifier = notifier_from_settings(settings())
    assert notifier.names == ["log"]
    with caplog.at_level(logging.INFO, logger="tt_platform.alerts"):
        delivery = notifier.send(ALERT)
    assert delivery.sent == ("log",) and not delivery.failed
    record = [r for r in caplog.records if "ALERT" in r.getMessage()]
    assert len(record) == 1 and record[0].levelno == logging.ERROR
    assert "Run failed: main_job" in record[0].getMessage() and "boom" in record[0].getMessage()


def test_webhook_posts_the_alert_as_json():
    with http_receiver() as receiver:
        notifier = notifier_from_settings(settings(TT_ALERT_WEBHOOK_URL=f"{receiver.url}/hooks/{HOOK_SECRET}"))
        delivery = notifier.send(ALERT)
    assert delivery.sent == ("log", "webhook")
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == f"/hooks/{HOOK_SECRET}"
    assert request.body["title"] == "Run failed: main_job"
    assert request.body["message"] == "bars: ValueError: boom"
    assert request.body["fields"] == {"job": "main_job", "run_id": "abc-123"}
    assert request.body["link"] == "http://127.0.0.1:3000/runs/abc-123"
    assert request.body["severity"] == "error"
    # Slack-style receivers show "text": the whole message
    assert request.text.splitlines()[0] == "Run failed: main_job" and "run_id: abc-123" in request.text


def test_telegram_calls_send_message_with_the_chat_and_text():
    with http_receiver() as api:
        notifier = notifier_from_settings(
            settings(TT_ALERT_TELEGRAM_TOKEN=TOKEN, TT_ALERT_TELEGRAM_CHAT_ID="-100042", TT_ALERT_TELEGRAM_API=api.url)
        )
        assert TOKEN not in repr(notifier.channels)
        delivery = notifier.send(ALERT)
    assert delivery.sent == ("log", "telegram")
    assert [r.path for r in api.requests] == [f"/bot{TOKEN}/sendMessage"]
    body = api.requests[0].body
    assert body["chat_id"] == "-100042"
    assert body["text"].startswith("Run failed: main_job\nbars: ValueError: boom")


def test_telegram_refusal_is_reported_without_the_token():
    with http_receiver() as api:
        api.status, api.answer = 400, {"ok": False, "description": "Bad Request: chat not found"}
        notifier = TelegramNotifier(TOKEN, "42", api=api.url, timeout=2)
        with pytest.raises(AlertDeliveryError) as raised:
            notifier.send(ALERT)
    message = str(raised.value)
    assert message == f"telegram: POST to {api.url}/bot***/sendMessage failed: HTTP 400 Bad Request (Bad Request: chat not found)"
    assert TOKEN not in message and TOKEN.split(":")[1] not in message
    assert len(api.requests) == 1  # a refusal is not retried

    with http_receiver() as api:
        api.answer = {"ok": False, "description": "Forbidden: bot was blocked by the user"}
        with pytest.raises(AlertDeliveryError, match=r"refused the message: Forbidden: bot was blocked by the user$"):
            TelegramNotifier(TOKEN, "42", api=api.url, timeout=2).send(ALERT)


def test_server_errors_are_retried_three_times():
    with http_receiver() as receiver:
        receiver.status = 503
        with pytest.raises(AlertDeliveryError, match=r"webhook: POST to http://127\.0\.0\.1:\d+ failed: HTTP 503"):
            WebhookNotifier(f"{receiver.url}/hooks/{HOOK_SECRET}", timeout=2).send(ALERT)
    assert len(receiver.requests) == 3


def test_a_receiver_that_never_answers_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are queued, never answered
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError) as raised:
            WebhookNotifier(f"http://127.0.0.1:{port}/hooks/{HOOK_SECRET}", timeout=0.5).send(ALERT)
        elapsed = time.monotonic() - started
    assert str(raised.value).startswith(f"webhook: POST to http://127.0.0.1:{port} failed:")
    assert "timed out" in str(raised.value) and HOOK_SECRET not in str(raised.value)
    # three attempts of 0.5 s and the backoff between them
    assert 1.5 <= elapsed < 5


def test_email_arrives_with_subject_and_body():
    with smtp_receiver() as smtp:
        notifier = notifier_from_settings(settings(
            TT_ALERT_SMTP_HOST=smtp.host, TT_ALERT_SMTP_PORT=smtp.port, TT_ALERT_SMTP_STARTTLS="false",
            TT_ALERT_SMTP_FROM="tt@example.org", TT_ALERT_SMTP_TO="ops@example.org, oncall@example.org",
        ))
        delivery = notifier.send(ALERT)
    assert delivery.sent == ("log", "email")
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "[tt-platform error] Run failed: main_job"
    assert message["From"] == "tt@example.org"
    assert smtp.recipients[0] == ["ops@example.org", "oncall@example.org"]
    body = message.get_payload(decode=True).decode()
    assert "bars: ValueError: boom" in body and "http://127.0.0.1:3000/runs/abc-123" in body


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_and_a_wrong_password_never_shows():
    with smtp_receiver(user="alerts", password=PASSWORD) as smtp:
        def notifier(password: str) -> SmtpNotifier:
            return SmtpNotifier(smtp.host, smtp.port, "tt@example.org", ["ops@example.org"], user="alerts",
                                password=password, starttls=False, timeout=2)

        notifier(PASSWORD).send(ALERT)
        assert len(smtp.messages) == 1
        with pytest.raises(AlertDeliveryError) as raised:
            notifier("wrong-" + PASSWORD).send(ALERT)
    message = str(raised.value)
    assert message.startswith(f"email: SMTP at 127.0.0.1:{smtp.port} failed: SMTPAuthenticationError")
    assert PASSWORD not in message
    assert len(smtp.messages) == 1


def test_receivers_down_warn_per_channel_and_never_leak_secrets(caplog):
    port = free_port()
    notifier = notifier_from_settings(settings(
        TT_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{port}/hooks/{HOOK_SECRET}",
        TT_ALERT_TELEGRAM_TOKEN=TOKEN, TT_ALERT_TELEGRAM_CHAT_ID="42", TT_ALERT_TELEGRAM_API=f"http://127.0.0.1:{port}",
        TT_ALERT_SMTP_HOST="127.0.0.1", TT_ALERT_SMTP_PORT=port, TT_ALERT_SMTP_USER="alerts",
        TT_ALERT_SMTP_PASSWORD=PASSWORD, TT_ALERT_SMTP_FROM="tt@example.org", TT_ALERT_SMTP_TO="ops@example.org",
        TT_ALERT_TIMEOUT_SECONDS=2,
    ))
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        delivery = notifier.send(ALERT)
    elapsed = time.monotonic() - started

    assert delivery.sent == ("log",)
    assert set(delivery.failed) == {"webhook", "telegram", "email"}
    assert delivery.failed["webhook"] == f"webhook: POST to http://127.0.0.1:{port} failed: [Errno 111] Connection refused"
    assert delivery.failed["telegram"].startswith(f"telegram: POST to http://127.0.0.1:{port}/bot***/sendMessage failed:")
    assert delivery.failed["email"].startswith(f"email: SMTP at 127.0.0.1:{port} failed:")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for channel in ("webhook", "telegram", "email"):
        assert any(f"alert channel {channel} failed" in line for line in warnings), warnings
    assert any("ALERT Run failed: main_job" in r.getMessage() for r in caplog.records)
    for secret in (TOKEN, TOKEN.split(":")[1], PASSWORD, HOOK_SECRET):
        assert secret not in caplog.text
        assert all(secret not in reason for reason in delivery.failed.values())
    # channels are tried side by side: three retried failures cost one channel's time
    assert elapsed < 6


def test_one_channel_down_does_not_stop_the_others(caplog):
    with http_receiver() as api:
        notifier = notifier_from_settings(settings(
            TT_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook",
            TT_ALERT_TELEGRAM_TOKEN=TOKEN, TT_ALERT_TELEGRAM_CHAT_ID="42", TT_ALERT_TELEGRAM_API=api.url,
        ))
        with caplog.at_level(logging.WARNING, logger="tt_platform.alerts"):
            delivery = notifier.send(ALERT)
    assert delivery.sent == ("log", "telegram") and list(delivery.failed) == ["webhook"]
    assert len(api.requests) == 1
    assert "alert channel webhook failed" in caplog.text


def test_a_channel_raising_anything_else_is_reported_by_class_only(caplog):
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> None:
            raise KeyError(TOKEN)

    from tt_platform.alerts import CompositeNotifier

    with caplog.at_level(logging.WARNING, logger="tt_platform.alerts"):
        delivery = CompositeNotifier([Broken()]).send(ALERT)
    assert delivery.sent == ("log",) and delivery.failed == {"broken": "broken: KeyError"}
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"TT_ALERT_SMTP_HOST": "smtp.example.org", "TT_ALERT_SMTP_FROM": "tt@example.org"}, "TT_ALERT_SMTP_TO"),
        ({"TT_ALERT_SMTP_HOST": "smtp.example.org", "TT_ALERT_SMTP_TO": "ops@example.org"}, "TT_ALERT_SMTP_FROM"),
        ({"TT_ALERT_SMTP_TO": "ops@example.org"}, "TT_ALERT_SMTP_HOST"),
        ({"TT_ALERT_SMTP_HOST": "h", "TT_ALERT_SMTP_FROM": "f@x", "TT_ALERT_SMTP_TO": "t@x",
          "TT_ALERT_SMTP_PASSWORD": PASSWORD}, "TT_ALERT_SMTP_USER"),
        ({"TT_ALERT_TELEGRAM_CHAT_ID": "42"}, "TT_ALERT_TELEGRAM_TOKEN"),
        ({"TT_ALERT_TELEGRAM_TOKEN": TOKEN}, "TT_ALERT_TELEGRAM_CHAT_ID"),
    ],
)
def test_a_channel_configured_in_part_names_the_missing_variable(values, missing):
    with pytest.raises(AlertConfigError, match=missing) as raised:
        notifier_from_settings(settings(**values))
    assert PASSWORD not in str(raised.value) and TOKEN not in str(raised.value)


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it():
    with pytest.raises(AlertConfigError, match="http:// or https://") as raised:
        notifier_from_settings(settings(TT_ALERT_WEBHOOK_URL=f"ftp://example.org/{HOOK_SECRET}"))
    assert HOOK_SECRET not in str(raised.value)


def test_settings_come_from_the_environment_and_hide_secrets(monkeypatch):
    monkeypatch.setenv("TT_ALERT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TT_ALERT_TELEGRAM_CHAT_ID", "42")
    monkeypatch.setenv("TT_ALERT_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("TT_ALERT_WEBHOOK_URL", f"https://hooks.example.org/{HOOK_SECRET}")
    monkeypatch.setenv("TT_ALERT_SMTP_HOST", "")  # an empty line in .env: not configured
    monkeypatch.setenv("TT_ALERT_SMTP_PORT", "")  # ... or the default
    monkeypatch.setenv("TT_ALERT_TELEGRAM_API", "  ")
    monkeypatch.setenv("TT_UI_URL", "http://dagster.example:3000/")
    loaded = AlertSettings()
    assert loaded.telegram_token.get_secret_value() == TOKEN and loaded.smtp_host is None
    assert loaded.smtp_port == 587 and loaded.telegram_api == "https://api.telegram.org"
    assert loaded.run_url("r1") == "http://dagster.example:3000/runs/r1"
    shown = repr(loaded) + str(loaded.model_dump())
    for secret in (TOKEN, PASSWORD, HOOK_SECRET):
        assert secret not in shown


def test_defaults():
    loaded = AlertSettings()
    assert loaded.telegram_api == "https://api.telegram.org"
    assert loaded.run_url("r1") == "http://127.0.0.1:3000/runs/r1"
    assert loaded.smtp_port == 587 and loaded.smtp_starttls is True
    assert loaded.watched_intervals == ["1d"]


def test_bad_numbers_are_refused():
    with pytest.raises(ValidationError, match="TT_ALERT_SMTP_PORT"):
        AlertSettings(TT_ALERT_SMTP_PORT=0)
    with pytest.raises(ValidationError, match="TT_ALERT_TIMEOUT_SECONDS"):
        AlertSettings(TT_ALERT_TIMEOUT_SECONDS=30)


def test_log_notifier_levels_follow_severity(caplog):
    with caplog.at_level(logging.INFO, logger="tt_platform.alerts"):
        LogNotifier().send(Alert(title="Bars stale: AAA", text="AAA (1d, XNYS)", severity="warning"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert caplog.records[0].getMessage() == "ALERT Bars stale: AAA | AAA (1d, XNYS)"
