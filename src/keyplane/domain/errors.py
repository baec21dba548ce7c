"""Domain errors. Each carries the public error code of DESIGN §4; `api/errors.py` maps codes
to HTTP statuses in one place, so nothing below the API layer knows about HTTP."""

from __future__ import annotations

from typing import Any, ClassVar


class KeyplaneError(Exception):
    """Base of every error a client or operator can cause. `message` is one sentence a person
    can act on; `extra` is merged into the JSON error body."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


# --- authentication (401) --------------------------------------------------------------------
class MissingAuthorization(KeyplaneError):
    code = "missing_authorization"


class MalformedAuthorization(KeyplaneError):
    code = "malformed_authorization"


class MalformedApiKey(KeyplaneError):
    code = "malformed_api_key"


class InvalidApiKey(KeyplaneError):
    code = "invalid_api_key"


class ApiKeyRevoked(KeyplaneError):
    code = "api_key_revoked"


class ApiKeyExpired(KeyplaneError):
    code = "api_key_expired"


class WrongEnvironment(KeyplaneError):
    code = "wrong_environment"


class SessionRequired(KeyplaneError):
    """An action only a signed-in person may take (revealing a secret)."""

    code = "session_required"


class InvalidCredentials(KeyplaneError):
    code = "invalid_credentials"


class SsoFailed(KeyplaneError):
    """An OpenID Connect sign-in failed: the provider is misconfigured or unreachable, or its
    answer did not verify (issue 12). The message says which, without any token or secret."""

    code = "sso_failed"


class PasswordLoginDisabled(KeyplaneError):
    """The person's organization signs in with SSO only."""

    code = "password_login_disabled"


class LoginLocked(KeyplaneError):
    """Too many wrong passwords for one email: sign-in refused until the lockout ends."""

    code = "login_locked"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


# --- authorization (403) ---------------------------------------------------------------------
class ProjectMismatch(KeyplaneError):
    code = "project_mismatch"


class InsufficientPermissions(KeyplaneError):
    code = "insufficient_permissions"

    def __init__(self, message: str, *, required: str) -> None:
        super().__init__(message, required=required)
        self.required = required


class IpNotAllowed(KeyplaneError):
    code = "ip_not_allowed"


class ReauthenticationRequired(KeyplaneError):
    code = "reauthentication_required"


class CsrfFailed(KeyplaneError):
    code = "csrf_failed"


# --- request problems ------------------------------------------------------------------------
class SecretKeyInBrowser(KeyplaneError):
    """A key sent from a web page (issue 11): secret keys belong on servers."""

    code = "secret_key_in_browser"


class OrgPermissionNotAllowed(KeyplaneError):
    code = "org_permission_not_allowed"


class NotFound(KeyplaneError):
    code = "not_found"


class ValidationFailed(KeyplaneError):
    code = "validation_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details=details or [])


class PermissionDependency(KeyplaneError):
    """Removing a permission that another permission in the same set still needs."""

    code = "permission_dependency"


class KeyLimitReached(KeyplaneError):
    code = "key_limit_reached"


class Conflict(KeyplaneError):
    code = "conflict"


class PayloadTooLarge(KeyplaneError):
    code = "payload_too_large"


class RateLimitExceeded(KeyplaneError):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class UnsupportedMediaType(KeyplaneError):
    """An upload whose type is not accepted, or whose bytes are not what it claims."""

    code = "unsupported_media_type"


# --- signed requests -------------------------------------------------------------------------
class MissingSignature(KeyplaneError):
    """A signed endpoint (the GitHub leak report) called without its signature headers."""

    code = "missing_signature"


class InvalidSignature(KeyplaneError):
    """The signature does not verify against any configured public key."""

    code = "invalid_signature"
