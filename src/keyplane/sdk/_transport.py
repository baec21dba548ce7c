"""Configuration, request building, error decoding and the 429 retry policy shared by the
sync and async clients."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx

from keyplane import __version__
from keyplane.sdk.errors import ConfigurationError, RateLimitExceeded, from_response

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class Config:
    api_key: str
    project_id: int
    base_url: str
    timeout: float
    max_retries: int
    max_retry_wait: float

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        project_id: int | str | None,
        base_url: str | None,
        *,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
    ) -> Config:
        """Arguments first, then KEYPLANE_* and, as in the botBrains guide, BOTBRAINS_*."""
        key = api_key or _env("KEYPLANE_API_KEY", "BOTBRAINS_API_KEY")
        if not key:
            raise ConfigurationError(
                "No API key: pass api_key= or set KEYPLANE_API_KEY (or BOTBRAINS_API_KEY)."
            )
        project = project_id or _env("KEYPLANE_PROJECT_ID", "BOTBRAINS_PROJECT_ID")
        if project is None or not str(project).isdigit():
            raise ConfigurationError(
                "No project id: pass project_id= or set KEYPLANE_PROJECT_ID "
                "(or BOTBRAINS_PROJECT_ID) to the project's numeric id."
            )
        url = base_url or _env("KEYPLANE_BASE_URL", "BOTBRAINS_BASE_URL") or DEFAULT_BASE_URL
        if max_retries < 0 or max_retry_wait < 0:
            raise ConfigurationError("max_retries and max_retry_wait must not be negative.")
        return cls(
            api_key=key,
            project_id=int(project),
            base_url=url.rstrip("/"),
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": f"keyplane-python/{__version__}",
        }

    def path(self, *parts: object) -> str:
        """/v1/projects/{id}/... with each part escaped (external ids may hold '/')."""
        escaped = "".join("/" + quote(str(p), safe="") for p in parts)
        return f"/v1/projects/{self.project_id}{escaped}"


def retry_wait(response: httpx.Response) -> float:
    """Seconds a 429 asks to wait: the Retry-After header, else the body's retry_after."""
    header = response.headers.get("retry-after", "")
    if header.strip().isdigit():
        return float(header)
    try:
        body = response.json()
    except ValueError:
        return 1.0
    value = body.get("retry_after") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else 1.0


def should_retry(config: Config, response: httpx.Response, attempt: int) -> float | None:
    """How long to sleep before retrying, or None to give up (and raise)."""
    if response.status_code != 429 or attempt >= config.max_retries:
        return None
    wait = retry_wait(response)
    return wait if wait <= config.max_retry_wait else None


def check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise from_response(response)


def clean(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left unset."""
    return {k: v for k, v in params.items() if v is not None}


class Unset(enum.Enum):
    """The default of a PATCH argument: leave the field as it is. It cannot be None, because
    None is sent as JSON null, which clears the field (DESIGN §6 upserts and updates)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body of the arguments the caller passed, None included (as null)."""
    return {k: v for k, v in fields.items() if v is not UNSET}


__all__ = [
    "UNSET",
    "Config",
    "RateLimitExceeded",
    "Unset",
    "check",
    "clean",
    "given",
    "retry_wait",
    "should_retry",
]
