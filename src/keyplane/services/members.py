"""Members of an organization: pending invitations by email, role changes and removal.

Who may do this is decided by the organization role (`member:read` to look, `member:write`
to change); the roles themselves and the project grants are accounts.py's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import (
    ClientAssignment,
    Invitation,
    OrgMember,
    Project,
    ProjectMember,
    User,
)
from keyplane.adapters.sql.repositories import access_changed, utcnow
from keyplane.domain.errors import Conflict, InsufficientPermissions, NotFound, ValidationFailed
from keyplane.domain.permissions import Permission
from keyplane.domain.roles import ORG_ROLE_PERMISSIONS, OrgRole, ProjectRole
from keyplane.services import accounts

MAX_EMAIL = 320


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    org_role: str
    project_roles: tuple[str, ...]
    client: bool = False


async def org_permissions(db: AsyncSession, user_id: int, org_id: int) -> frozenset[Permission]:
    role = await db.scalar(
        select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    )
    if role is None:
        raise NotFound(f"No organization {org_id} that you belong to.")
    return ORG_ROLE_PERMISSIONS[OrgRole(role)]


async def require(db: AsyncSession, user_id: int, org_id: int, permission: Permission) -> None:
    if permission not in await org_permissions(db, user_id, org_id):
        raise InsufficientPermissions(
            f"You need {permission} in this organization (an owner or admin role).",
            required=str(permission),
        )


async def members(db: AsyncSession, org_id: int, project_id: int | None) -> list[Member]:
    rows = (
        await db.execute(
            select(User.id, User.email, OrgMember.role, OrgMember.client)
            .join(OrgMember, OrgMember.user_id == User.id)
            .where(OrgMember.org_id == org_id)
            .order_by(User.email)
        )
    ).all()
    project_roles: dict[int, list[str]] = {}
    if project_id is not None:
        for user_id, role in (
            await db.execute(
                select(ProjectMember.user_id, ProjectMember.role).where(
                    ProjectMember.project_id == project_id
                )
            )
        ).all():
            project_roles.setdefault(user_id, []).append(role)
    return [
        Member(uid, email, role, tuple(sorted(project_roles.get(uid, []))), bool(client))
        for uid, email, role, client in rows
    ]


async def pending(db: AsyncSession, org_id: int) -> list[Invitation]:
    rows = await db.scalars(
        select(Invitation).where(Invitation.org_id == org_id).order_by(Invitation.created_at)
    )
    return list(rows.all())


def _clean_email(email: str) -> str:
    email = accounts.normalize_email(email)
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > MAX_EMAIL or any(c.isspace() for c in email):
        raise ValidationFailed(
            "Enter the email address of the person to invite, e.g. jane@example.com.",
            details=[{"loc": ["email"], "msg": "not an email address"}],
        )
    return email


def _org_role(role: str) -> OrgRole:
    if role not in OrgRole._value2member_map_:
        raise ValidationFailed(
            f"Unknown organization role; choose one of {', '.join(OrgRole)}.",
            details=[{"loc": ["org_role"], "msg": "unknown role"}],
        )
    return OrgRole(role)


async def invite(
    db: AsyncSession,
    actor_id: int,
    org_id: int,
    email: str,
    org_role: str,
    project_id: int | None = None,
    project_role: str | None = None,
) -> Invitation:
    """A pending membership; it becomes one when the person signs in and accepts it."""
    await require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    email = _clean_email(email)
    role = _org_role(org_role)
    if project_id is not None:
        project = await db.get(Project, project_id)
        if project is None or project.org_id != org_id:
            raise NotFound(f"No project {project_id} in this organization.")
        if project_role not in ProjectRole._value2member_map_:
            raise ValidationFailed(f"Choose a project role: {', '.join(ProjectRole)}.")
    member = await db.scalar(
        select(OrgMember.user_id)
        .join(User, User.id == OrgMember.user_id)
        .where(OrgMember.org_id == org_id, User.email == email)
    )
    if member is not None:
        raise Conflict(f"{email} is already a member of this organization.")
    invitation = await db.scalar(
        select(Invitation).where(Invitation.org_id == org_id, Invitation.email == email)
    )
    if invitation is None:
        invitation = Invitation(org_id=org_id, email=email, created_at=utcnow())
        db.add(invitation)
    invitation.org_role = role
    invitation.project_id = project_id
    invitation.project_role = project_role if project_id is not None else None
    invitation.invited_by = actor_id
    accounts._member_event(
        db,
        "member.invited",
        org_id,
        project_id=project_id,
        actor_user_id=actor_id,
        email=email,
        role=str(role),
    )
    await db.flush()
    return invitation


async def revoke_invitation(
    db: AsyncSession, actor_id: int, org_id: int, invitation_id: int
) -> None:
    await require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    invitation = await db.get(Invitation, invitation_id)
    if invitation is None or invitation.org_id != org_id:
        raise NotFound("No such invitation; it may have been accepted or withdrawn already.")
    await db.delete(invitation)
    accounts._member_event(
        db, "member.invitation_withdrawn", org_id, actor_user_id=actor_id, email=invitation.email
    )


async def invitations_for(db: AsyncSession, email: str) -> list[Invitation]:
    rows = await db.scalars(
        select(Invitation)
        .where(Invitation.email == accounts.normalize_email(email))
        .order_by(Invitation.id)
    )
    return list(rows.all())


async def answer(db: AsyncSession, user_id: int, invitation_id: int, *, accept: bool) -> int:
    """Accept (join with the invited roles) or decline an invitation to one's own email."""
    user = await db.get(User, user_id)
    invitation = await db.get(Invitation, invitation_id)
    if user is None or invitation is None or invitation.email != user.email:
        raise NotFound("No such invitation for you; it may have been withdrawn.")
    org_id = invitation.org_id
    if accept:
        await accounts.set_org_role(db, org_id, user_id, invitation.org_role, user_id)
        if invitation.project_id is not None and invitation.project_role:
            await accounts.add_project_role(
                db, invitation.project_id, user_id, invitation.project_role, user_id
            )
    await db.delete(invitation)
    accounts._member_event(
        db,
        "member.invitation_accepted" if accept else "member.invitation_declined",
        org_id,
        actor_user_id=user_id,
        user_id=user_id,
    )
    return org_id


async def _owners(db: AsyncSession, org_id: int) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(OrgMember)
        .where(OrgMember.org_id == org_id, OrgMember.role == OrgRole.OWNER)
    )
    return int(count or 0)


async def _member_role(db: AsyncSession, org_id: int, user_id: int) -> str:
    role = await db.scalar(
        select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    )
    if role is None:
        raise NotFound("No such member of this organization.")
    return role


async def change_role(
    db: AsyncSession, actor_id: int, org_id: int, user_id: int, org_role: str
) -> None:
    await require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    role = _org_role(org_role)
    current = await _member_role(db, org_id, user_id)
    client = await db.scalar(
        select(OrgMember.client).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    )
    if client and role != OrgRole.MEMBER:
        # Any other role grants organization-wide sight (members, every project) that would
        # show a client the other clients.
        raise Conflict(
            "Clients keep the o_member role; make them a regular member first to give another role."
        )
    if current == OrgRole.OWNER and role != OrgRole.OWNER and await _owners(db, org_id) <= 1:
        raise Conflict("An organization keeps at least one owner; make someone else owner first.")
    await accounts.set_org_role(db, org_id, user_id, role, actor_id)


async def remove(db: AsyncSession, actor_id: int, org_id: int, user_id: int) -> None:
    """Remove someone from the organization and all its projects; their user keys lose
    access to it on the very next request."""
    await require(db, actor_id, org_id, Permission.MEMBER_WRITE)
    current = await _member_role(db, org_id, user_id)
    if current == OrgRole.OWNER and await _owners(db, org_id) <= 1:
        raise Conflict("An organization keeps at least one owner; make someone else owner first.")
    projects = select(Project.id).where(Project.org_id == org_id)
    await db.execute(
        delete(ProjectMember).where(
            ProjectMember.user_id == user_id, ProjectMember.project_id.in_(projects)
        )
    )
    await db.execute(
        delete(ClientAssignment).where(
            ClientAssignment.org_id == org_id, ClientAssignment.user_id == user_id
        )
    )
    await db.execute(
        delete(OrgMember).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    )
    accounts._member_event(db, "member.removed", org_id, actor_user_id=actor_id, user_id=user_id)
    await access_changed(db, org_id)
