"""End users (the "userpool"): the platform's own customers, identified by the external id
the platform gives them, in one project and mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import EndUser
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound
from keyplane.domain.keyformat import Mode
from keyplane.services import webhooks
from keyplane.services.conversations import end_user

PROFILE_FIELDS = ("first_name", "last_name", "email", "locale")


def describe(user: EndUser) -> dict[str, Any]:
    return {
        "external_id": user.external_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "locale": user.locale,
        "external_attributes": dict(user.external_attributes or {}),
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON Merge Patch (RFC 7396): keys in `patch` replace or add, nested objects merge, a
    null removes the key; keys the patch does not name are kept."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


async def _find(db: AsyncSession, project_id: int, mode: Mode, external_id: str) -> EndUser:
    user = await db.scalar(
        select(EndUser).where(
            EndUser.project_id == project_id,
            EndUser.mode == mode,
            EndUser.external_id == external_id,
        )
    )
    if user is None:
        raise NotFound(f"No user {external_id!r} in project {project_id} ({mode} data).")
    return user


async def get(db: AsyncSession, project_id: int, mode: Mode, external_id: str) -> dict[str, Any]:
    return describe(await _find(db, project_id, mode, external_id))


async def upsert(
    db: AsyncSession, project_id: int, mode: Mode, external_id: str, changes: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Set the given profile fields (a null clears one) and merge `external_attributes` into
    the stored ones. Returns the user and whether it was created."""
    existing = await db.scalar(
        select(EndUser.id).where(
            EndUser.project_id == project_id,
            EndUser.mode == mode,
            EndUser.external_id == external_id,
        )
    )
    user = await end_user(db, project_id, mode, external_id)
    for field in PROFILE_FIELDS:
        if field in changes:
            setattr(user, field, changes[field])
    if "external_attributes" in changes:
        patch = changes["external_attributes"]
        # A new dict either way, so that SQLAlchemy sees the JSON column change; null clears.
        user.external_attributes = (
            {} if patch is None else merge_patch(user.external_attributes or {}, patch)
        )
    user.updated_at = utcnow()
    await db.flush()
    described = describe(user)
    await webhooks.enqueue(
        db, project_id, "user.updated", {"user": described, "created": existing is None}, mode
    )
    return described, existing is None


async def page(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    *,
    limit: int,
    after_id: int | None,
    email: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first."""
    query = select(EndUser).where(EndUser.project_id == project_id, EndUser.mode == mode)
    if email is not None:
        query = query.where(EndUser.email == email)
    rows, last = await keyset_page(
        db, query, EndUser.id, limit=limit, after_id=after_id, newest_first=True
    )
    return [describe(r) for r in rows], last
