"""What verification knows about an issued key, and the checks that need no storage."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
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

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    if header is None:
        raise MissingAuthorization(
            "Send your API key in the Authorization header: 'Authorization: Bearer sk_live_…'."
        )
    scheme, sep, token = header.partition(" ")
    if not sep:
        found = "an empty header" if not header.strip() else "a value without a scheme"
        raise MalformedAuthorization(
            f"The Authorization header holds {found}; send 'Authorization: Bearer <key>'."
        )
    if scheme.lower() != "bearer":
        shown = scheme[:20] if scheme.isascii() and scheme.isprintable() else "an unknown"
        raise MalformedAuthorization(
            f"The Authorization header uses the {shown} scheme; API keys are sent as "
            "'Authorization: Bearer <key>'."
        )
    if not token:
        raise MalformedAuthorization(
            "The Authorization header says Bearer but carries no key; send "
            "'Authorization: Bearer <key>'."
        )
    return token
