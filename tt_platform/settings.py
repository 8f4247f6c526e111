"""Platform settings from the environment and ``.env`` (pydantic-settings).

Secrets (database passwords, IB account ids) come only from here, never from files in the
repository. ``safe_dump`` is what may be logged or shown: it masks secrets.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# symbols a run may trade (inline ``universe.symbols`` or a watchlist file) unless
# TT_MAX_UNIVERSE says otherwise
DEFAULT_MAX_UNIVERSE = 2_000


def default_home() -> Path:
    return Path.cwd() / ".tt_home"


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tt_home: Path = Field(default_factory=default_home, alias="TT_HOME")
    # None means: start the embedded PostgreSQL (pgserver) under TT_HOME.
    tt_db_url: SecretStr | None = Field(default=None, alias="TT_DB_URL")
    ib_host: str = Field(default="127.0.0.1", alias="IB_HOST")
    ib_port: int = Field(default=4002, alias="IB_PORT")
    ib_client_id: int = Field(default=17, alias="IB_CLIENT_ID")
    ib_account: SecretStr | None = Field(default=None, alias="IB_ACCOUNT")
    mlflow_tracking_uri: str | None = Field(default=None, alias="MLFLOW_TRACKING_URI")
    shared_data: Path | None = Field(default=None, alias="TT_SHARED_DATA")
    # first month of the bars and features partitions (YYYY-MM); the demo's history starts here.
    # Longer histories set it earlier: months cost nothing per symbol (240 keys for 20 years).
    partition_start: str = Field(default="2019-01", alias="TT_PARTITION_START")
    # the deployment's run config (a YAML file): what runs started by schedules, sensors and
    # automation compute when nobody gives a run config; unset, the built-in demo config
    run_config_file: Path | None = Field(default=None, alias="TT_RUN_CONFIG")
    # the most symbols one universe may hold; a bigger run config or watchlist is refused
    max_universe: int = Field(default=DEFAULT_MAX_UNIVERSE, ge=1, alias="TT_MAX_UNIVERSE")

    @property
    def home(self) -> Path:
        return self.tt_home.expanduser().resolve()

    @property
    def db_url(self) -> str | None:
        return self.tt_db_url.get_secret_value() if self.tt_db_url else None

    @property
    def mlflow_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return (self.home / "mlruns").resolve().as_uri()

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    def safe_dump(self) -> dict[str, str]:
        """Settings fit for logs and metadata: passwords and account ids masked."""
        from tt_platform.store.engine import safe_url

        return {
            "TT_HOME": str(self.home),
            "TT_DB_URL": safe_url(self.db_url) if self.db_url else "embedded (pgserver)",
            "IB_HOST": self.ib_host,
            "IB_PORT": str(self.ib_port),
            "IB_CLIENT_ID": str(self.ib_client_id),
            "IB_ACCOUNT": "***" if self.ib_account else "",
            "MLFLOW_TRACKING_URI": mask_url_password(self.mlflow_uri),
            "TT_MAX_UNIVERSE": str(self.max_universe),
            "TT_RUN_CONFIG": str(self.run_config_file) if self.run_config_file else "built-in demo config",
        }


# scheme://user: then everything up to the last '@': a password not percent-encoded may hold
# '#', '/' or '?', where urlsplit ends the netloc and no longer sees it as a password
_RAW_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)(.+)@([^@]*)$")


def mask_url_password(url: str) -> str:
    """A URL fit for logs: any password replaced by ***, percent-encoded or not."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    raw = _RAW_USERINFO.match(url)
    return f"{raw.group(1)}***@{raw.group(3)}" if raw else url


@lru_cache(maxsize=1)
def get_settings() -> PlatformSettings:
    return PlatformSettings()


def max_universe() -> int:
    """The most symbols a universe may hold (TT_MAX_UNIVERSE, default ``DEFAULT_MAX_UNIVERSE``)."""
    return get_settings().max_universe
