"""Leak reports (GitHub secret scanning's partner format, issue 7): each reported token is
checked (shape and checksum, then one indexed lookup), and a key of ours is revoked or flagged
as its organization's `leak_policy` says, with an alert and audit events either way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey, Organization
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import KeyplaneError, NotFound, ValidationFailed
from keyplane.domain.keyformat import parse
from keyplane.services.alerts import AlertSpec, raise_alert
from keyplane.services.crypto import Keyring
from keyplane.services.keys import Actor, KeyManager

LEAK_POLICIES = ("revoke", "flag")


@dataclass(frozen=True)
class LeakReport:
    token: str
    type: str
    url: str | None = None
    source: str | None = None


def token_hash(token: str) -> str:
    """What the response names a token by: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def _find(db: AsyncSession, keyring: Keyring, token: str) -> ApiKey | None:
    try:
        secret = parse(token).value  # no storage touched for what is not a keyplane key
    except KeyplaneError:
        return None
    lookups = [keyring.lookup_hash(secret, v) for v in keyring.versions]
    row: ApiKey | None = await db.scalar(select(ApiKey).where(ApiKey.lookup.in_(lookups)))
    return row


async def handle(
    db: AsyncSession,
    keyring: Keyring,
    keys: KeyManager,
    reports: list[LeakReport],
    actor: Actor,
) -> list[dict[str, Any]]:
    """Act on every report; returns GitHub's feedback array (one entry per report)."""
    feedback = []
    for report in reports:
        row = await _find(db, keyring, report.token)
        label = "false_positive" if row is None else "true_positive"
        if row is not None:
            await _respond(db, keys, row, report, actor)
        feedback.append(
            {"token_hash": token_hash(report.token), "token_type": report.type, "label": label}
        )
    return feedback


async def _respond(
    db: AsyncSession, keys: KeyManager, row: ApiKey, report: LeakReport, actor: Actor
) -> None:
    org = await db.get(Organization, row.org_id)
    policy = org.leak_policy if org is not None else "revoke"
    revoked = aware(row.revoked_at)
    already = revoked is not None and revoked <= utcnow()
    if already:
        action = "already_revoked"
    elif policy == "flag":
        action = "flagged"
    else:
        # Also ends a rotation grace period at once: a leaked old secret stops now.
        await keys.revoke(db, actor, row)
        action = "revoked"
    outcome = {
        "revoked": "it was revoked; create a replacement with the same permissions",
        "flagged": "the organization's policy is to flag, so it still works: revoke it",
        "already_revoked": "it was already revoked",
    }[action]
    where = report.url or "a public location"
    await raise_alert(
        db,
        AlertSpec(
            kind="leaked_key",
            severity="critical",
            message=f"Key {row.name!r} ({row.id}) was found at {where}; {outcome}."[:500],
            window=token_hash(report.url or "")[:16],
            org_id=row.org_id,
            project_id=row.project_id,
            key_id=row.id,
            details={
                "action": action,
                "url": report.url,
                "source": report.source,
                "token_type": report.type,
                "reporter": "github_secret_scanning",
            },
            ip=actor.ip,
            user_agent=actor.user_agent,
        ),
    )


async def set_leak_policy(db: AsyncSession, org_id: int, policy: str) -> Organization:
    """Choose what a leak report does to an organization's keys: revoke (default) or flag."""
    if policy not in LEAK_POLICIES:
        raise ValidationFailed(
            f"Unknown leak policy {policy[:32]!r}; choose revoke (default) or flag.",
            details=[{"loc": ["leak_policy"], "msg": "revoke or flag"}],
        )
    org = await db.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organization with id {org_id}.")
    org.leak_policy = policy
    return org
