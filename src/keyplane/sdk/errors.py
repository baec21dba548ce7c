"""Typed exceptions, one per public error code of DESIGN §4 (and the resource errors).

Every one is a KeyplaneError with `.code`, `.message`, `.status` and the decoded `.body`;
catch the base class, a family (AuthenticationError, PermissionDenied) or one code."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx


class KeyplaneError(Exception):
    code: ClassVar[str] = "error"

    def __init__(
        self, message: str, *, status: int = 0, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body: dict[str, Any] = body or {}

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}" if self.status else self.message


class ConfigurationError(KeyplaneError):
    """The client is missing an API key, a project id or a base URL."""

    code = "configuration_error"


class ConnectionFailed(KeyplaneError):
    code = "connection_failed"


class ServerError(KeyplaneError):
    code = "internal_error"


class SyncTimeout(KeyplaneError):
    """`wait_for_sync` gave up: the data provider's sync was still pending or running. The
    sync goes on on the server; wait again or look at the provider later."""

    code = "sync_timeout"

    def __init__(self, data_provider_id: int, status: str, timeout: float) -> None:
        super().__init__(
            f"Data provider {data_provider_id}'s sync was still {status} after {timeout:g} s."
        )
        self.data_provider_id = data_provider_id
        self.sync_status = status


# --- 401 -------------------------------------------------------------------------------------
class AuthenticationError(KeyplaneError):
    code = "authentication_error"


class MissingAuthorization(AuthenticationError):
    code = "missing_authorization"


class MalformedAuthorization(AuthenticationError):
    code = "malformed_authorization"


class MalformedApiKey(AuthenticationError):
    code = "malformed_api_key"


class InvalidApiKey(AuthenticationError):
    code = "invalid_api_key"


class ApiKeyRevoked(AuthenticationError):
    code = "api_key_revoked"


class ApiKeyExpired(AuthenticationError):
    code = "api_key_expired"


class WrongEnvironment(AuthenticationError):
    code = "wrong_environment"


# --- 403 -------------------------------------------------------------------------------------
class PermissionDenied(KeyplaneError):
    code = "permission_denied"


class ProjectMismatch(PermissionDenied):
    code = "project_mismatch"


class InsufficientPermissions(PermissionDenied):
    """`.required` names the permission the endpoint needs."""

    code = "insufficient_permissions"

    @property
    def required(self) -> str | None:
        value = self.body.get("required")
        return str(value) if value is not None else None


class IpNotAllowed(PermissionDenied):
    code = "ip_not_allowed"


# --- request problems ------------------------------------------------------------------------
class NotFound(KeyplaneError):
    code = "not_found"


class Conflict(KeyplaneError):
    code = "conflict"


class PayloadTooLarge(KeyplaneError):
    code = "payload_too_large"


class UnsupportedMediaType(KeyplaneError):
    code = "unsupported_media_type"


class ValidationError(KeyplaneError):
    """`.details` lists the problems (`loc`, `msg`)."""

    code = "validation_error"

    @property
    def details(self) -> list[dict[str, Any]]:
        value = self.body.get("details")
        return list(value) if isinstance(value, list) else []


class RateLimitExceeded(KeyplaneError):
    """Raised when the retries allowed are used up or the wait would exceed the cap."""

    code = "rate_limit_exceeded"

    @property
    def retry_after(self) -> int:
        value = self.body.get("retry_after")
        return int(value) if isinstance(value, int | float) else 0


def _codes() -> dict[str, type[KeyplaneError]]:
    found: dict[str, type[KeyplaneError]] = {}
    pending: list[type[KeyplaneError]] = [KeyplaneError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found


BY_CODE = _codes()
_BY_STATUS: dict[int, type[KeyplaneError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationError,
    429: RateLimitExceeded,
}


def from_response(response: httpx.Response) -> KeyplaneError:
    """The typed exception for an error response: by its `error` code, else by status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"message": response.text[:200] or response.reason_phrase}
    code = str(body.get("error", ""))
    cls = BY_CODE.get(code) or _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else KeyplaneError
    message = str(body.get("message") or f"HTTP {response.status_code}")
    return cls(message, status=response.status_code, body=body)
