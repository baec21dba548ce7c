"""Registering, listing and deleting a project's own permissions (issue 10).

Managing them needs api_key:write on the project (listing: api_key:read): they exist to be
granted to keys. Anyone who may create keys in a project may grant its custom permissions.
Deleting one takes it away from every key of the project at once (the keys' versions are
bumped, so every instance drops its cached copy on the next request).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey, CustomPermission, Project
from keyplane.adapters.sql.repositories import (
    access_changed,
    custom_catalog,
    iso,
    key_changed,
    utcnow,
)
from keyplane.domain.custom_permissions import (
    MAX_PER_PROJECT,
    check_name,
    default_implies,
)
from keyplane.domain.errors import Conflict, NotFound, PermissionDependency, ValidationFailed
from keyplane.domain.permissions import Permission
from keyplane.services.keys import Actor, KeyManager


def describe(row: CustomPermission) -> dict[str, Any]:
    return {
        "name": row.name,
        "resource": row.name.split(":", 1)[0],
        "action": row.name.split(":", 1)[1],
        "description": row.description,
        "implies": sorted(row.implies),
        "project_id": row.project_id,
        "created_at": iso(row.created_at),
    }


async def list_permissions(
    db: AsyncSession, keys: KeyManager, actor: Actor, project_id: int
) -> list[CustomPermission]:
    await keys.require(db, actor, project_id, Permission.API_KEY_READ)
    rows = await db.scalars(
        select(CustomPermission)
        .where(CustomPermission.project_id == project_id)
        .order_by(CustomPermission.name)
    )
    return list(rows.all())


async def register(
    db: AsyncSession,
    keys: KeyManager,
    actor: Actor,
    project_id: int,
    name: str,
    description: str = "",
    implies: list[str] | None = None,
) -> CustomPermission:
    await keys.require(db, actor, project_id, Permission.API_KEY_WRITE)
    check_name(name)
    catalog = await custom_catalog(db, project_id)
    if name in catalog.implies:
        raise Conflict(f"Project {project_id} already has the permission {name}.")
    if len(catalog.implies) >= MAX_PER_PROJECT:
        raise Conflict(
            f"Project {project_id} already has {MAX_PER_PROJECT} custom permissions, the "
            "maximum; delete one it no longer uses first."
        )
    if implies is None:
        implies = default_implies(name, catalog.names)
    unknown = sorted(set(implies) - catalog.names)
    if unknown:
        raise ValidationFailed(
            f"{name} can only imply permissions already registered in project {project_id}; "
            f"register {', '.join(unknown)} first.",
            details=[{"loc": ["implies"], "msg": "not registered", "value": u} for u in unknown],
        )
    project = await db.get(Project, project_id)
    assert project is not None  # require() found it
    row = CustomPermission(
        project_id=project_id,
        name=name,
        description=description.strip(),
        implies=sorted(set(implies)),
        created_at=utcnow(),
        created_by=actor.user_id,
    )
    db.add(row)
    _audit(db, actor, project, "custom_permission.created", {"name": name, "implies": implies})
    await access_changed(db, project.org_id)  # instances re-read the org's permission names
    await db.flush()
    return row


async def delete(
    db: AsyncSession, keys: KeyManager, actor: Actor, project_id: int, name: str
) -> None:
    await keys.require(db, actor, project_id, Permission.API_KEY_WRITE)
    row = await db.scalar(
        select(CustomPermission).where(
            CustomPermission.project_id == project_id, CustomPermission.name == name
        )
    )
    if row is None:
        raise NotFound(f"No custom permission {name[:64]!r} in project {project_id}.")
    catalog = await custom_catalog(db, project_id)
    needed_by = sorted(n for n, implied in catalog.implies.items() if name in implied)
    if needed_by:
        raise PermissionDependency(
            f"Cannot delete {name}: {', '.join(needed_by)} implies it. Delete "
            f"{', '.join(needed_by)} first.",
            permission=name,
            required_by=needed_by,
        )
    # JSON containment differs by database; a project's keys are few (10 active by default,
    # revoked ones included here so that nothing is left holding the name), so filter here.
    holders = (await db.scalars(select(ApiKey).where(ApiKey.project_id == project_id))).all()
    stripped = []
    for key in holders:
        if name in key.permissions:
            key.permissions = [p for p in key.permissions if p != name]
            key.updated_at = utcnow()
            await key_changed(db, key)
            stripped.append(key.id)
    project = await db.get(Project, project_id)
    assert project is not None
    await db.delete(row)
    _audit(db, actor, project, "custom_permission.deleted", {"name": name, "keys": stripped})
    await access_changed(db, project.org_id)


def _audit(
    db: AsyncSession, actor: Actor, project: Project, action: str, data: dict[str, Any]
) -> None:
    db.add(actor.audit_event(action, data, org_id=project.org_id, project_id=project.id))
