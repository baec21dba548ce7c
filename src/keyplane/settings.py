"""Configuration from `KEYPLANE_*` environment variables or a `.env` file (DESIGN §9)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The shortest usage and client retention: services.audit.PRIVILEGE_WINDOW (30 days of usage)
# and the longest rotation grace (30 days of callers) must stay whole (a test ties them).
MIN_RETENTION_DAYS = 31


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
    # Comma-separated in the environment (NoDecode: not JSON), like data_provider_roots.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_format: LogFormat = LogFormat.CONSOLE
    # Verified-key cache size (DESIGN §10) and how often each process polls the change feed so
    # that a change made elsewhere (the CLI, another process) is enforced within a second.
    key_cache_size: int = Field(default=100_000, ge=1)
    change_poll_seconds: float = Field(default=0.5, gt=0)
    last_used_flush_seconds: float = Field(default=60.0, gt=0)
    # Failed key lookups allowed per client address and minute before lookups are refused.
    auth_failures_per_minute: int = Field(default=30, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Uploads (POST /files) may be larger than other bodies; stored under data_dir/files.
    max_file_bytes: int = Field(default=10 * 1_048_576, ge=1)
    session_cookie_secure: bool = False
    reveal_reauth_seconds: int = 300
    # Directories a `directory` data provider may read (comma-separated); empty: `data_dir`.
    data_provider_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # Bounds on what a `urls` data provider fetches per URL.
    data_provider_max_bytes: int = Field(default=2_000_000, ge=1024)
    data_provider_timeout_seconds: float = Field(default=10.0, gt=0)
    # An OpenAI-compatible chat provider that writes `generate`'s answers from the retrieved
    # snippets; unset: the built-in extractive composer answers.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=30.0, gt=0)
    # GitHub secret scanning: a JSON file in the format of GitHub's public-keys endpoint
    # ({"public_keys": [{"key_identifier", "key", "is_current"}]}); never fetched at runtime.
    github_scanning_keys_file: Path | None = None
    # Webhook outbox: how often it is polled, the first retry delay (doubling, with jitter,
    # capped), how long and how many times a delivery is retried before it is given up (and
    # its subscription disabled with a notice), and the per-request timeout.
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_delay_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=86400.0, gt=0)
    webhook_max_attempts: int = Field(default=60, ge=1, le=500)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Live-mode webhooks may go to loopback and private addresses (an intranet receiver).
    # Off by default: a subscription must not make the server reach its own network (SSRF).
    webhook_allow_private: bool = False
    # One audit event and alert when an address fails authentication this many times within
    # the window.
    auth_failure_burst_threshold: int = Field(default=20, ge=1)
    auth_failure_burst_window_seconds: int = Field(default=300, ge=10)
    # Anomaly detection over the hourly usage rollups; an optional IP-to-country CSV
    # (start_ip,end_ip,country) turns "new network" alerts into "new country" ones.
    anomaly_interval_seconds: float = Field(default=300.0, gt=0)
    geoip_csv: Path | None = None
    # Dashboard sign-in throttle: this many wrong passwords for one email within the window
    # lock that email out for `login_lockout_seconds`.
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    # Housekeeping, once per interval across the deployment: rows past their retention are
    # deleted (in days; 0 keeps them forever), and expired sign-in sessions, sign-in throttles
    # and SSO round trips always.
    housekeeping_interval_seconds: float = Field(default=3600.0, gt=0)
    # Hourly usage per key: the usage API reads up to 366 days back, anomaly baselines 7.
    usage_retention_days: int = Field(default=400, ge=0)
    # Caller addresses per key, by when each was last seen: "still used by N systems" after a
    # rotation and "new network" alerts look at these; an address silent for longer is new.
    client_retention_days: int = Field(default=90, ge=0)
    # Delivered and given-up webhook deliveries (pending ones are kept until they end).
    webhook_delivery_retention_days: int = Field(default=30, ge=0)
    audit_retention_days: int = Field(default=0, ge=0)
    # SSO issuers must be https; plain http on loopback only when the operator allows it (a
    # provider on this machine, e.g. in development). Otherwise an organization admin could
    # make the server probe its own local ports.
    oidc_allow_http_loopback: bool = False

    @field_validator("trusted_proxies", "data_provider_roots", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("usage_retention_days", "client_retention_days")
    @classmethod
    def _long_enough_for_their_readers(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"keep at least {MIN_RETENTION_DAYS} days (the quarterly audit reads 30 days of "
                "usage, and a rotated key's callers are counted over a grace of up to 30 "
                "days), or 0 to keep forever"
            )
        return value

    @property
    def knowledge_roots(self) -> list[Path]:
        """Where directory data providers may read, resolved (symlinks followed)."""
        return [root.resolve() for root in (self.data_provider_roots or [self.data_dir])]

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
