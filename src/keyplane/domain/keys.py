"""What verification knows about an issued key, and the checks that need no storage."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from keyplane.domain.errors import (
    ApiKeyExpired,
    ApiKeyRevoked,
    IpNotAllowed,
    MalformedAuthorization,
    MissingAuthorization,
    ValidationFailed,
)
from keyplane.domain.keyformat import Mode
from keyplane.domain.permissions import Permission
from keyplane.domain.ratelimit import PLAN_LIMITS, Limits, Scope

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_KEY = Scope.KEY  # module globals: enum members read through the class are slow (3.11)
_PROJECT_SCOPE = Scope.PROJECT


class KeyLabel(StrEnum):
    """What a key is used for; it sets how often the key should be rotated (the guide's
    "Recommended Rotation Schedule")."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"
    CONTRACTOR = "contractor"


ROTATION_DAYS: dict[KeyLabel | None, int] = {
    KeyLabel.PRODUCTION: 90,
    KeyLabel.DEVELOPMENT: 180,
    KeyLabel.CONTRACTOR: 30,
    None: 90,  # unlabelled keys follow the production schedule
}


class KeyKind(StrEnum):
    PROJECT = "project"
    USER = "user"


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """An issued key as the verifier caches it. Times are unix seconds."""

    id: str
    kind: KeyKind
    mode: Mode
    org_id: int
    project_id: int | None
    user_id: int | None
    permissions: frozenset[Permission]
    expires_at: float | None
    revoked_at: float | None
    ip_allowlist: tuple[IpNetwork, ...] = ()
    version: int = 1
    # Rate limiting (DESIGN §5): who shares the budget, the shared budget's limits, and this
    # key's own limits when it carries an override (None: no budget of its own).
    scope: Scope = Scope.KEY
    scope_limits: Limits = PLAN_LIMITS["standard"]
    own_limits: Limits | None = None
    # Permissions of the organization's own API registered for the key's project (issue 10).
    custom_permissions: frozenset[str] = frozenset()
    # A test key its owner marked for use from web pages (issue 11); never a live key.
    allow_browser: bool = False
    # Every permission name the key carries, built-in and custom: what a verification for
    # another API checks against, computed once rather than as a union on every request.
    names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        custom = self.custom_permissions
        object.__setattr__(self, "names", self.permissions | custom if custom else self.permissions)

    def budgets(self, project_id: int | None) -> list[tuple[str, Limits]]:
        """The (bucket id, limits) pairs a request on `project_id` is counted against (None:
        a request outside any project, such as /v1/me). A key's own budget is named by its id
        (ids start with "key_" and have no colon; shared ones are "p:<project>" and
        "o:<org>"). Built per request, not kept: a kept list and name cost ~190 bytes per
        cached key (DESIGN §10)."""
        scope = self.scope
        if scope is _KEY or (scope is _PROJECT_SCOPE and project_id is None):
            return [(self.id, self.own_limits or self.scope_limits)]
        own = (self.id, self.own_limits) if self.own_limits else None
        shared = (
            ("p:" + str(project_id), self.scope_limits)
            if self.scope is Scope.PROJECT
            else ("o:" + str(self.org_id), self.scope_limits)
        )
        return [shared, own] if own else [shared]

    def check_usable(self, now: float) -> None:
        if self.revoked_at is not None and self.revoked_at <= now:
            raise ApiKeyRevoked(
                "This API key has been revoked; create a new key under Project → Settings → "
                "API Keys and update the systems that use it."
            )
        if self.expires_at is not None and self.expires_at <= now:
            raise ApiKeyExpired(
                "This API key has expired; rotate it or create a new one, then update the "
                "systems that use it."
            )

    def check_ip(self, client_ip: str | None) -> None:
        if not self.ip_allowlist:
            return
        try:
            address = ipaddress.ip_address(client_ip or "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in self.ip_allowlist):
            raise IpNotAllowed(
                f"This API key only accepts requests from its IP allowlist, and {client_ip} is "
                "outside it; call from an allowed address or edit the key's allowlist."
            )


def parse_ip_allowlist(entries: Iterable[str]) -> tuple[IpNetwork, ...]:
    """CIDRs (or single addresses) for a key's allowlist; every bad entry is named."""
    networks: list[IpNetwork] = []
    bad: list[str] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            bad.append(entry)
    if bad:
        raise ValidationFailed(
            f"Not an IPv4/IPv6 address or CIDR: {', '.join(repr(b[:64]) for b in bad)}.",
            details=[
                {"loc": ["ip_allowlist"], "msg": "invalid CIDR", "value": b[:64]} for b in bad
            ],
        )
    return tuple(networks)


def bearer_token(header: str | None) -> str:
    """The token of an RFC 6750 `Authorization: Bearer <token>` header."""
    if header is not None and header.startswith("Bearer ") and len(header) > 7:
        return header[7:]  # the common, well-formed case, without the diagnosis below
    if header is None:
        raise MissingAuthorization(
            "Send your API key in the Authorization header: 'Authorization: Bearer sk_live_…'."
        )
    scheme, sep, token = header.partition(" ")
    if scheme.startswith("sk_"):
        raise MalformedAuthorization(
            "The Authorization header holds a key without a scheme; send "
            "'Authorization: Bearer <key>'."
        )
    if not sep:
        found = "an empty header" if not header.strip() else "a value without a scheme"
        raise MalformedAuthorization(
            f"The Authorization header holds {found}; send 'Authorization: Bearer <key>'."
        )
    if scheme.lower() != "bearer":
        # Name well-known schemes (Basic, Digest, Token…); never echo anything longer, which
        # could be a credential of some other kind.
        shown = scheme if scheme.isascii() and scheme.isalpha() and len(scheme) <= 12 else None
        raise MalformedAuthorization(
            f"The Authorization header uses the {shown or 'an unrecognised'} scheme; API keys "
            "are sent as 'Authorization: Bearer <key>'."
            if shown
            else "The Authorization header does not start with 'Bearer '; API keys are sent as "
            "'Authorization: Bearer <key>'."
        )
    if not token:
        raise MalformedAuthorization(
            "The Authorization header says Bearer but carries no key; send "
            "'Authorization: Bearer <key>'."
        )
    return token
