"""Reseller clients (issue 12): an organization admin marks a member as a client and assigns
them one or more projects (chatbots). A client reaches exactly those projects — in the
dashboard, in key management and with their user keys — whatever their roles would grant.

Enforcement lives in one place, `repositories.project_access`, which every path (API request,
key management, dashboard) asks. Every change here bumps the organization's access version,
so that cached permissions are dropped on the next request in every process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import (
    ApiKey,
    ClientAssignment,
    OrgMember,
    OrgSso,
    Project,
    ProjectMember,
    User,
)
from keyplane.adapters.sql.repositories import access_changed, utcnow
from keyplane.domain.errors import Conflict, NotFound
from keyplane.domain.keys import KeyKind
from keyplane.domain.permissions import Permission
from keyplane.domain.roles import OrgRole, ProjectRole
from keyplane.services import accounts, members
from keyplane.services.keys import Actor, KeyManager

# A client's organization role: it grants nothing org-wide (no member list, no settings), so
# that a client never sees other clients or their projects.
CLIENT_ORG_ROLE = OrgRole.MEMBER


async def _require(
    db: AsyncSession, actor_id: int | None, org_id: int, permission: Permission
) -> None:
    """An admin's right to do this; None is the operator (the CLI), who may do anything."""
    if actor_id is not None:
        await members.require(db, actor_id, org_id, permission)


async def _member(db: AsyncSession, org_id: int, user_id: int) -> OrgMember:
    row = await db.get(OrgMember, (org_id, user_id))
    if row is None:
        raise NotFound("No such member of this organization.")
    return row


async def set_client(
    db: AsyncSession, actor_id: int | None, org_id: int, user_id: int, *, client: bool
) -> None:
    """Make a member a client (confined to assigned projects, org role o_member) or a regular
    member again (their assignments are dropped; their roles apply as before)."""
    await _require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    row = await _member(db, org_id, user_id)
    if client and row.role == OrgRole.OWNER:
        raise Conflict("An owner cannot be a client; change their role first.")
    if client and user_id == actor_id:
        raise Conflict("You cannot make yourself a client; ask another admin.")
    row.client = client
    if client:
        row.role = CLIENT_ORG_ROLE
    else:
        await db.execute(
            delete(ClientAssignment).where(
                ClientAssignment.org_id == org_id, ClientAssignment.user_id == user_id
            )
        )
    accounts._member_event(
        db,
        "member.client_set" if client else "member.client_unset",
        org_id,
        actor_user_id=actor_id,
        user_id=user_id,
    )
    await access_changed(db, org_id)


async def is_client(db: AsyncSession, org_id: int, user_id: int) -> bool:
    return bool(
        await db.scalar(
            select(OrgMember.client).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
        )
    )


async def assign(
    db: AsyncSession, actor_id: int | None, org_id: int, user_id: int, project_id: int, role: str
) -> None:
    """Give a client a project with a project role (which decides, e.g., whether they may
    manage its keys)."""
    await _require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    row = await _member(db, org_id, user_id)
    if not row.client:
        raise Conflict("Only clients get project assignments; mark the member as a client first.")
    project = await db.get(Project, project_id)
    if project is None or project.org_id != org_id:
        raise NotFound(f"No project {project_id} in this organization.")
    if not role:  # the organization's SSO default, else a member's rights
        role = await db.scalar(
            select(OrgSso.default_project_role).where(OrgSso.org_id == org_id)
        ) or str(ProjectRole.MEMBER)
    await accounts.add_project_role(db, project_id, user_id, role, actor_id)
    if await db.get(ClientAssignment, (user_id, project_id)) is None:
        db.add(
            ClientAssignment(
                user_id=user_id,
                project_id=project_id,
                org_id=org_id,
                created_at=utcnow(),
                created_by=actor_id,
            )
        )
    accounts._member_event(
        db,
        "client.assigned",
        org_id,
        project_id=project_id,
        actor_user_id=actor_id,
        user_id=user_id,
        role=role,
    )
    await access_changed(db, org_id)


async def unassign(
    db: AsyncSession, actor_id: int | None, org_id: int, user_id: int, project_id: int
) -> None:
    """Take a project away from a client; their user keys lose it on the next request."""
    await _require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    row = await db.get(ClientAssignment, (user_id, project_id))
    if row is None or row.org_id != org_id:
        raise NotFound("That project is not assigned to this client.")
    await db.delete(row)
    await db.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    accounts._member_event(
        db,
        "client.unassigned",
        org_id,
        project_id=project_id,
        actor_user_id=actor_id,
        user_id=user_id,
    )
    await access_changed(db, org_id)


@dataclass
class ClientKey:
    id: str
    name: str
    kind: str
    mode: str
    hint: str
    project_id: int | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass
class Client:
    user_id: int
    email: str
    projects: list[tuple[int, str, tuple[str, ...]]] = field(
        default_factory=list
    )  # id, name, roles
    keys: list[ClientKey] = field(default_factory=list)


def _active() -> ColumnElement[bool]:
    return or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > utcnow())


async def _client_keys(db: AsyncSession, org_id: int, user_id: int) -> list[ApiKey]:
    """A client's live keys in the organization: their user keys and the project keys they
    created."""
    rows = await db.scalars(
        select(ApiKey)
        .where(ApiKey.org_id == org_id, _active())
        .where(
            or_(
                (ApiKey.kind == KeyKind.USER) & (ApiKey.user_id == user_id),
                (ApiKey.kind == KeyKind.PROJECT) & (ApiKey.created_by == user_id),
            )
        )
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows.all())


async def overview(db: AsyncSession, actor_id: int | None, org_id: int) -> list[Client]:
    """The reseller view: every client, their assigned projects and their keys."""
    await _require(db, actor_id, org_id, Permission.MEMBER_READ)
    rows = (
        await db.execute(
            select(User.id, User.email)
            .join(OrgMember, OrgMember.user_id == User.id)
            .where(OrgMember.org_id == org_id, OrgMember.client.is_(True))
            .order_by(User.email)
        )
    ).all()
    clients = {uid: Client(uid, email) for uid, email in rows}
    if not clients:
        return []
    assignments = (
        await db.execute(
            select(ClientAssignment.user_id, Project.id, Project.name)
            .join(Project, Project.id == ClientAssignment.project_id)
            .where(ClientAssignment.org_id == org_id)
            .order_by(Project.name, Project.id)
        )
    ).all()
    roles: dict[tuple[int, int], list[str]] = {}
    for uid, pid, role in (
        await db.execute(
            select(ProjectMember.user_id, ProjectMember.project_id, ProjectMember.role).where(
                ProjectMember.user_id.in_(clients)
            )
        )
    ).all():
        roles.setdefault((uid, pid), []).append(role)
    for uid, pid, name in assignments:
        if uid in clients:
            clients[uid].projects.append((pid, name, tuple(sorted(roles.get((uid, pid), [])))))
    for client in clients.values():
        client.keys = [
            ClientKey(
                id=k.id,
                name=k.name,
                kind=k.kind,
                mode=k.mode,
                hint=k.hint,
                project_id=k.project_id,
                created_at=k.created_at,
                last_used_at=k.last_used_at,
            )
            for k in await _client_keys(db, org_id, client.user_id)
        ]
    return list(clients.values())


async def revoke_everything(
    db: AsyncSession, keys: KeyManager, actor: Actor, org_id: int, user_id: int
) -> int:
    """One click: revoke every key a client holds in the organization (their user keys and the
    project keys they created), effective on the next request. Returns how many."""
    await _require(db, actor.user_id, org_id, Permission.MEMBER_WRITE)
    if not await is_client(db, org_id, user_id):
        raise NotFound("No such client in this organization.")
    held = await _client_keys(db, org_id, user_id)
    for row in held:
        await keys.revoke(db, actor, row)
    accounts._member_event(
        db,
        "client.keys_revoked",
        org_id,
        actor_user_id=actor.user_id,
        user_id=user_id,
        count=len(held),
    )
    return len(held)
