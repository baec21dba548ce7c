"""Configuration from `KEYPLANE_*` environment variables or a `.env` file (DESIGN §9)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FailureMode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEYPLANE_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///./keyplane.db"
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    redis_url: str | None = None
    # One or more secrets, "2:newer,1:older" or a single plain value (version 1). Unset: a
    # secret is generated into `data_dir` on first start.
    secret_key: SecretStr | None = None
    data_dir: Path = Path()
    accept_test_keys: bool = True
    max_keys_per_project: int = Field(default=10, ge=1)
    rate_limit_failure: FailureMode = FailureMode.OPEN
    trusted_proxies: list[str] = Field(default_factory=list)
    log_format: LogFormat = LogFormat.CONSOLE
    # Verified-key cache size (DESIGN §10) and how often each process polls the change feed so
    # that a change made elsewhere (the CLI, another process) is enforced within a second.
    key_cache_size: int = Field(default=100_000, ge=1)
    change_poll_seconds: float = Field(default=0.5, gt=0)
    last_used_flush_seconds: float = Field(default=60.0, gt=0)
    # Failed key lookups allowed per client address and minute before lookups are refused.
    auth_failures_per_minute: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    session_cookie_secure: bool = False
    reveal_reauth_seconds: int = 300
    # Dashboard sign-in throttle: this many wrong passwords for one email within the window
    # lock that email out for `login_lockout_seconds`.
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with an async driver, whatever the user wrote."""
        return async_url(self.database_url)


def async_url(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for plain in ("postgresql:", "postgres:", "postgresql+psycopg2:", "postgresql+psycopg:"):
        if url.startswith(plain):
            return "postgresql+asyncpg:" + url[len(plain) :]
    return url
