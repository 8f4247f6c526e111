"""Where alerts go, from the environment and ``.env`` (pydantic-settings).

The log always receives alerts; a webhook, email (SMTP) and Telegram are added when their
variables are set. The webhook URL, the SMTP password and the Telegram token are secrets: they
stay ``SecretStr`` and never reach logs, Dagster metadata or error messages.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TELEGRAM_API = "https://api.telegram.org"
DEFAULT_UI_URL = "http://127.0.0.1:3000"


class AlertSettings(BaseSettings):
    # an empty variable (``TT_ALERT_SMTP_PORT=`` in .env, ``${VAR:-}`` in compose) means "unset"
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # JSON POST of every alert; a Slack-style incoming-webhook URL carries its token in the path
    webhook_url: SecretStr | None = Field(default=None, alias="TT_ALERT_WEBHOOK_URL")

    smtp_host: str | None = Field(default=None, alias="TT_ALERT_SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, alias="TT_ALERT_SMTP_PORT")
    smtp_user: str | None = Field(default=None, alias="TT_ALERT_SMTP_USER")
    smtp_password: SecretStr | None = Field(default=None, alias="TT_ALERT_SMTP_PASSWORD")
    smtp_from: str | None = Field(default=None, alias="TT_ALERT_SMTP_FROM")
    # comma-separated recipients
    smtp_to: str | None = Field(default=None, alias="TT_ALERT_SMTP_TO")
    smtp_starttls: bool = Field(default=True, alias="TT_ALERT_SMTP_STARTTLS")

    telegram_token: SecretStr | None = Field(default=None, alias="TT_ALERT_TELEGRAM_TOKEN")
    telegram_chat_id: str | None = Field(default=None, alias="TT_ALERT_TELEGRAM_CHAT_ID")
    telegram_api: str = Field(default=DEFAULT_TELEGRAM_API, alias="TT_ALERT_TELEGRAM_API")

    # per attempt; a channel retries only within its first 10 s and channels are tried side by
    # side, so sending takes at most about 20 s: a sensor tick stays under Dagster's 60 s limit
    timeout_seconds: float = Field(default=5.0, gt=0, le=10, alias="TT_ALERT_TIMEOUT_SECONDS")

    # bar intervals the data-gap sensor watches (comma-separated, e.g. "1d,5min")
    gap_intervals: str = Field(default="1d", alias="TT_ALERT_GAP_INTERVALS")

    # the Dagster UI, for links to a failed run
    ui_url: str = Field(default=DEFAULT_UI_URL, alias="TT_UI_URL")

    @field_validator("smtp_host", "smtp_user", "smtp_from", "smtp_to", "telegram_chat_id", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_url", "smtp_password", "telegram_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_api", mode="before")
    @classmethod
    def _blank_api_is_telegram(cls, value: object) -> object:
        return DEFAULT_TELEGRAM_API if isinstance(value, str) and not value.strip() else value

    @property
    def smtp_recipients(self) -> list[str]:
        return [part.strip() for part in (self.smtp_to or "").split(",") if part.strip()]

    @property
    def watched_intervals(self) -> list[str]:
        return list(dict.fromkeys(part.strip() for part in self.gap_intervals.split(",") if part.strip()))

    def run_url(self, run_id: str) -> str | None:
        """The run's page in the Dagster UI, None when no UI URL is set."""
        base = self.ui_url.strip().rstrip("/")
        return f"{base}/runs/{run_id}" if base else None
