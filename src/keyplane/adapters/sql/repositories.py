"""Queries on the verification path and the change feed; kept together because they are what
every API process runs, and their cost is what DESIGN §10 bounds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import cast

from sqlalchemy import BindParameter, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import (
    ApiKey,
    ChangeEvent,
    ClientAssignment,
    CustomPermission,
    CustomRole,
    Organization,
    OrgMember,
    Project,
    ProjectMember,
)
from keyplane.domain.custom_permissions import CustomCatalog
from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import KeyKind, VerifiedKey, parse_ip_allowlist
from keyplane.domain.permissions import Permission
from keyplane.domain.ratelimit import (
    ENTERPRISE_DEFAULT,
    Limits,
    Scope,
    effective_limits,
    shared_limits,
)
from keyplane.domain.roles import OrgRole, project_permissions


def utcnow() -> datetime:
    return datetime.now(UTC)


def epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as every JSON body shows times."""
    moment = aware(moment)
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def org_limits(org: Organization) -> Limits:
    """The organization's shared budget: its plan's, or an enterprise's custom limits."""
    custom = None
    if org.rate_limit_per_minute is not None or org.rate_limit_per_day is not None:
        fallback = ENTERPRISE_DEFAULT
        custom = shared_limits(
            org.rate_limit_per_minute or fallback.per_minute,
            org.rate_limit_per_day or fallback.per_day,
        )
    return effective_limits(org.plan, custom, None)


# The verifier caches up to 100,000 keys per process, and most of them carry one of a few
# permission sets: one shared object each instead of one per key (with the shared limits, a
# third of a cached key's memory). Bounded, and immutable, so sharing is safe.
@lru_cache(maxsize=4096)
def _permission_sets(names: tuple[str, ...]) -> tuple[frozenset[Permission], frozenset[str]]:
    """Built-in permissions, and the rest: custom permissions of the key's project."""
    known = Permission._value2member_map_
    return (
        frozenset(Permission(p) for p in names if p in known),
        frozenset(p for p in names if p not in known),
    )


@lru_cache(maxsize=4096)
def _org_id(org_id: int) -> int:
    """One int object per organization rather than one per cached key (each row decodes its
    own)."""
    return org_id


def to_verified(row: ApiKey, org: Organization) -> VerifiedKey:
    shared = org_limits(org)
    own = effective_limits(org.plan, shared, row.rate_limit) if row.rate_limit else None
    permissions, custom_permissions = _permission_sets(tuple(row.permissions))
    return VerifiedKey(
        id=row.id,
        kind=KeyKind(row.kind),
        mode=Mode(row.mode),
        org_id=_org_id(row.org_id),
        project_id=row.project_id,
        user_id=row.user_id,
        permissions=permissions,
        custom_permissions=custom_permissions,
        expires_at=epoch(row.expires_at),
        revoked_at=epoch(row.revoked_at),
        ip_allowlist=parse_ip_allowlist(row.ip_allowlist or ()),
        version=row.version,
        scope=Scope(org.rate_limit_scope),
        scope_limits=shared,
        own_limits=own,
        allow_browser=bool(row.allow_browser) and row.mode == Mode.TEST,
    )


async def key_by_lookup(db: AsyncSession, lookups: Sequence[bytes]) -> VerifiedKey | None:
    found = (
        await db.execute(
            select(ApiKey, Organization)
            .join(Organization, Organization.id == ApiKey.org_id)
            .where(ApiKey.lookup.in_(lookups))
        )
    ).first()
    return None if found is None else to_verified(found[0], found[1])


async def assigned(db: AsyncSession, user_id: int, project_id: int) -> bool:
    row = await db.get(ClientAssignment, (user_id, project_id))
    return row is not None


async def project_access(
    db: AsyncSession, user_id: int, project_id: int
) -> tuple[int, frozenset[Permission]] | None:
    """(org id, permissions) of a user on a project, or None when they cannot reach it."""
    project = await db.get(Project, project_id)
    if project is None:
        return None
    member = (
        await db.execute(
            select(OrgMember.role, OrgMember.client).where(
                OrgMember.org_id == project.org_id, OrgMember.user_id == user_id
            )
        )
    ).first()
    if member is None:  # project roles only count for members of the organization
        return None
    org_role, client = member
    if client and not await assigned(db, user_id, project_id):
        # A reseller's client reaches only the projects assigned to them (issue 12), whatever
        # their roles would grant; the caller's cache is dropped on every assignment change.
        return None
    roles = (
        await db.scalars(
            select(ProjectMember.role).where(
                ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
            )
        )
    ).all()
    custom: dict[str, frozenset[Permission]] = {}
    if any(not r.startswith("p_") for r in roles):
        for role in (
            await db.scalars(select(CustomRole).where(CustomRole.org_id == project.org_id))
        ).all():
            custom[role.name] = frozenset(
                Permission(p) for p in role.permissions if p in Permission._value2member_map_
            )
    permissions = project_permissions(OrgRole(org_role), roles, custom)
    if not permissions:
        return None
    return project.org_id, permissions


# Session.info entries naming what a transaction changed, so that after the commit its own
# process drops the cached copies and tells other processes through Redis (other processes
# also learn it from the change feed).
CHANGED_KEYS = "keyplane.changed_keys"  # key id -> (org id, new version)
CHANGED_ORGS = "keyplane.changed_orgs"  # org id -> new access version


async def record_change(db: AsyncSession, scope: str, ref: str | int) -> None:
    db.add(ChangeEvent(scope=scope, ref=str(ref), created_at=utcnow()))


async def key_changed(db: AsyncSession, row: ApiKey) -> None:
    """A key's permissions, settings or state changed: bump its version and announce it."""
    row.version = (row.version or 1) + 1
    await record_change(db, "key", row.id)
    db.info.setdefault(CHANGED_KEYS, {})[row.id] = (row.org_id, row.version)


async def access_changed(db: AsyncSession, org_id: int) -> None:
    """Memberships, roles or organization settings changed: every cached permission and key
    of the organization must be re-read."""
    version = await db.scalar(
        update(Organization)
        .where(Organization.id == org_id)
        .values(access_version=Organization.access_version + 1)
        .returning(Organization.access_version)
    )
    await record_change(db, "org", org_id)
    db.info.setdefault(CHANGED_ORGS, {})[org_id] = int(version or 0)


async def latest_change(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.coalesce(func.max(ChangeEvent.seq), 0))) or 0)


async def changes_since(
    db: AsyncSession, seq: int, window: timedelta
) -> list[tuple[int, str, str]]:
    """Events after `seq`, plus every event of the last `window`: on PostgreSQL a sequence
    number can commit after a higher one was already read, so a bare `seq >` would skip it."""
    rows = await db.execute(
        select(ChangeEvent.seq, ChangeEvent.scope, ChangeEvent.ref)
        .where((ChangeEvent.seq > seq) | (ChangeEvent.created_at > utcnow() - window))
        .order_by(ChangeEvent.seq)
    )
    return [(r.seq, r.scope, r.ref) for r in rows]


async def touch_last_used(db: AsyncSession, used: Iterable[tuple[str, float]]) -> None:
    """Called with a batch at most once a minute per process: one statement executed for
    every key (the driver pipelines them), never moving a time backwards."""
    params = [{"key_id": key_id, "at": datetime.fromtimestamp(at, UTC)} for key_id, at in used]
    if not params:
        return
    keys = cast(Table, ApiKey.__table__)  # Core: an executemany, not the ORM's bulk update
    at: BindParameter[datetime] = bindparam("at")
    statement = (
        update(keys)
        .where(keys.c.id == bindparam("key_id"))
        .where(or_(keys.c.last_used_at.is_(None), keys.c.last_used_at < at))
        .values(last_used_at=at)
    )
    await db.execute(statement, params)


async def custom_names_in_org(db: AsyncSession, org_id: int) -> frozenset[str]:
    """Every custom permission registered in any project of an organization."""
    rows = await db.scalars(
        select(CustomPermission.name)
        .join(Project, Project.id == CustomPermission.project_id)
        .where(Project.org_id == org_id)
    )
    return frozenset(rows.all())


async def custom_catalog(db: AsyncSession, project_id: int) -> CustomCatalog:
    """The custom permissions registered for a project, with what each implies."""
    rows = await db.scalars(
        select(CustomPermission).where(CustomPermission.project_id == project_id)
    )
    return CustomCatalog({r.name: frozenset(r.implies) for r in rows.all()})
