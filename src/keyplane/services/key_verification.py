"""Verifying keys for other services (issue 10): POST /v1/keys/verify, its Unkey-compatible
twin, and the embeddable verifier all come through here.

A service authenticates with a user key holding api_key:read and may verify the keys of its
own organization in projects where that user key may read keys. Any other key, of another
organization or of a project out of reach, is answered exactly like a key that does not exist:
a verification request never reveals whether someone else's key exists. A verification counts
towards the verified key's rate limits like a request of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyplane.domain.custom_permissions import is_builtin
from keyplane.domain.errors import (
    InsufficientPermissions,
    InvalidApiKey,
    KeyplaneError,
    ValidationFailed,
)
from keyplane.domain.keys import KeyKind, VerifiedKey
from keyplane.domain.permission_query import Query
from keyplane.domain.permissions import Permission
from keyplane.services.auth import NO_SUCH_KEY, Check, Verifier

VALID = "VALID"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A verification's answer: `check` is None when there was no key to speak of."""

    check: Check | None
    error: KeyplaneError | None

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def code(self) -> str:
        return VALID if self.error is None else self.error.code

    def to_json(self) -> dict[str, Any]:
        """The body of POST /v1/keys/verify."""
        check, error = self.check, self.error
        key = check.key if check is not None else None
        decision = check.decision if check is not None else None
        body: dict[str, Any] = {
            "valid": error is None,
            "code": self.code,
            "message": "The key is valid." if error is None else error.message,
            "key_id": key.id if key else None,
            "kind": str(key.kind) if key else None,
            "project_id": check.project_id if check else None,
            "mode": str(key.mode) if key else None,
            "permissions": sorted(check.permissions) if check else [],
            "expires_at": int(key.expires_at) if key and key.expires_at else None,
            "ratelimit": (
                {"limit": decision.limit, "remaining": decision.remaining, "reset": decision.reset}
                if decision is not None
                else None
            ),
        }
        if error is not None and error.extra:
            body.update({k: v for k, v in error.extra.items() if k in {"required", "retry_after"}})
        return body


def require_verifier_key(key: VerifiedKey) -> None:
    """The caller of a verification endpoint: a user key holding api_key:read."""
    if key.kind is not KeyKind.USER or Permission.API_KEY_READ not in key.permissions:
        raise InsufficientPermissions(
            "Verifying keys needs a user key with api_key:read; project keys cannot verify "
            "other keys.",
            required=str(Permission.API_KEY_READ),
        )


async def check_names(verifier: Verifier, org_id: int, query: Query | None) -> None:
    """Unknown permission names are the caller's mistake: a 422 naming them, not a quiet
    'insufficient permissions' for every key."""
    if query is None:
        return
    custom = [n for n in query.names() if not is_builtin(n)]
    if not custom:
        return
    known = await verifier.custom_names(org_id)
    unknown = sorted({n for n in custom if n not in known})
    if unknown:
        raise ValidationFailed(
            f"Unknown permission {', '.join(repr(n[:64]) for n in unknown)}: neither built-in "
            "(GET /v1/permissions) nor registered in a project of your organization "
            "(GET /v1/projects/{id}/permissions).",
            details=[
                {"loc": ["permission"], "msg": "unknown permission", "value": n[:64]}
                for n in unknown
            ],
        )


async def verify_for(
    verifier: Verifier,
    caller: VerifiedKey,
    token: str,
    *,
    query: Query | None,
    project_id: int | None,
    client_ip: str | None,
    projects: frozenset[int] | None = None,
) -> Outcome:
    """Verify `token` on behalf of `caller` (a user key with api_key:read). `projects`, when
    given, restricts which projects' keys count as existing (Unkey's `keyspaces`)."""
    assert caller.user_id is not None
    owner = caller.user_id

    async def visible(key: VerifiedKey, target: int | None) -> bool:
        if key.org_id != caller.org_id:
            return False
        if target is None:
            return projects is None
        if projects is not None and target not in projects:
            return False
        org_id, held = await verifier.user_access(owner, target)
        return org_id == caller.org_id and Permission.API_KEY_READ in held

    try:
        check = await verifier.check(
            token,
            client_ip=client_ip,
            project_id=project_id,
            query=query,
            visible=visible,
            service=caller.id,
        )
    except KeyplaneError as error:
        if not isinstance(error, InvalidApiKey):  # malformed, refused test key, throttled
            return Outcome(None, error)
        return Outcome(None, InvalidApiKey(NO_SUCH_KEY))
    return Outcome(check, check.error)
