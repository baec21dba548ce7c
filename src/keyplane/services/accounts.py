"""Organizations, users, projects, memberships and custom roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import (
    AuditEvent,
    CustomRole,
    Organization,
    OrgMember,
    Project,
    ProjectMember,
    User,
)
from keyplane.adapters.sql.repositories import access_changed, utcnow
from keyplane.domain.errors import Conflict, NotFound, ValidationFailed
from keyplane.domain.permissions import ORG_PERMISSIONS, closure, parse_permissions
from keyplane.domain.ratelimit import ENTERPRISE_DEFAULT, PLAN_LIMITS, Limits, Scope
from keyplane.domain.roles import BUILTIN_ROLE_PREFIXES, OrgRole, ProjectRole
from keyplane.services.passwords import MIN_PASSWORD_LENGTH, hash_password

PLANS = ("standard", "professional", "enterprise")


def _member_event(
    db: AsyncSession,
    action: str,
    org_id: int,
    *,
    project_id: int | None = None,
    actor_user_id: int | None = None,
    **data: Any,
) -> None:
    """Membership changes go to the audit log like key events (issue 7)."""
    db.add(
        AuditEvent(
            org_id=org_id,
            project_id=project_id,
            action=action,
            actor_user_id=actor_user_id,
            data=data,
            created_at=utcnow(),
        )
    )


def _check_plan(plan: str) -> None:
    if plan not in PLANS:
        raise ValidationFailed(f"Unknown plan {plan!r}; choose one of {', '.join(PLANS)}.")


async def create_org(db: AsyncSession, name: str, plan: str = "standard") -> Organization:
    _check_plan(plan)
    org = Organization(name=name, plan=plan, created_at=utcnow())
    db.add(org)
    await db.flush()
    return org


async def set_plan(
    db: AsyncSession,
    org_id: int,
    plan: str,
    per_minute: int | None = None,
    per_day: int | None = None,
) -> Organization:
    """Change an organization's plan; enterprise organizations may carry custom limits."""
    _check_plan(plan)
    org = await db.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organization with id {org_id}.")
    if plan != "enterprise" and (per_minute is not None or per_day is not None):
        raise ValidationFailed(
            f"Custom limits are for the enterprise plan; the {plan} plan has fixed limits of "
            f"{PLAN_LIMITS[plan].per_minute}/min and {PLAN_LIMITS[plan].per_day}/day."
        )
    if per_minute is not None or per_day is not None:
        Limits(  # validates the ranges, naming what is wrong
            per_minute=per_minute or ENTERPRISE_DEFAULT.per_minute,
            per_day=per_day or ENTERPRISE_DEFAULT.per_day,
        )
    org.plan = plan
    org.rate_limit_per_minute = per_minute if plan == "enterprise" else None
    org.rate_limit_per_day = per_day if plan == "enterprise" else None
    await access_changed(db, org_id)
    return org


async def set_limit_scope(db: AsyncSession, org_id: int, scope: str) -> Organization:
    """Who shares a rate-limit budget: each key, each project, or the whole organization."""
    if scope not in Scope._value2member_map_:
        raise ValidationFailed(f"Unknown limit scope {scope!r}; choose one of {', '.join(Scope)}.")
    org = await db.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organization with id {org_id}.")
    org.rate_limit_scope = scope
    await access_changed(db, org_id)
    return org


def normalize_email(email: str) -> str:
    """How an email is stored and compared: trimmed, lower case."""
    return email.strip().lower()


async def create_user(db: AsyncSession, email: str, password: str) -> User:
    email = normalize_email(email)
    if "@" not in email:
        raise ValidationFailed(f"{email!r} is not an email address.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    if await db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with the email {email} already exists.")
    user = User(email=email, password_hash=hash_password(password), created_at=utcnow())
    db.add(user)
    await db.flush()
    return user


async def user_by_email(db: AsyncSession, email: str) -> User:
    user = await db.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"No user with the email {email}.")
    return user


async def set_org_role(
    db: AsyncSession, org_id: int, user_id: int, role: str, actor_user_id: int | None = None
) -> None:
    org_role = OrgRole(role) if role in OrgRole._value2member_map_ else None
    if org_role is None:
        raise ValidationFailed(
            f"Unknown organization role {role!r}; choose one of {', '.join(OrgRole)}."
        )
    member = await db.get(OrgMember, (org_id, user_id))
    if member is None:
        db.add(OrgMember(org_id=org_id, user_id=user_id, role=org_role))
    else:
        member.role = org_role
    _member_event(
        db, "member.org_role_set", org_id, actor_user_id=actor_user_id, user_id=user_id, role=role
    )
    await access_changed(db, org_id)


async def create_project(db: AsyncSession, org_id: int, name: str) -> Project:
    if await db.get(Organization, org_id) is None:
        raise NotFound(f"No organization with id {org_id}.")
    project = Project(org_id=org_id, name=name, created_at=utcnow())
    db.add(project)
    await db.flush()
    return project


async def get_project(db: AsyncSession, project_id: int) -> Project:
    project = await db.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id}.")
    return project


async def add_project_role(
    db: AsyncSession, project_id: int, user_id: int, role: str, actor_user_id: int | None = None
) -> None:
    project = await get_project(db, project_id)
    if role not in ProjectRole._value2member_map_:
        custom = await db.scalar(
            select(CustomRole.id).where(
                CustomRole.org_id == project.org_id, CustomRole.name == role
            )
        )
        if custom is None:
            raise ValidationFailed(
                f"Unknown project role {role!r}; use {', '.join(ProjectRole)} or a custom role "
                "of this organization."
            )
    if await db.get(ProjectMember, (project_id, user_id, role)) is None:
        db.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
    _member_event(
        db,
        "member.project_role_added",
        project.org_id,
        project_id=project_id,
        actor_user_id=actor_user_id,
        user_id=user_id,
        role=role,
    )
    await access_changed(db, project.org_id)


async def remove_project_member(
    db: AsyncSession, project_id: int, user_id: int, actor_user_id: int | None = None
) -> None:
    project = await get_project(db, project_id)
    for member in (
        await db.scalars(
            select(ProjectMember).where(
                ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
            )
        )
    ).all():
        await db.delete(member)
    _member_event(
        db,
        "member.project_removed",
        project.org_id,
        project_id=project_id,
        actor_user_id=actor_user_id,
        user_id=user_id,
    )
    await access_changed(db, project.org_id)


async def define_custom_role(
    db: AsyncSession, org_id: int, name: str, permissions: list[str]
) -> CustomRole:
    """Create or replace a named set of project permissions."""
    if name.startswith(BUILTIN_ROLE_PREFIXES):
        raise ValidationFailed("Custom role names may not start with o_ or p_.")
    granted = closure(parse_permissions(permissions))
    if granted & ORG_PERMISSIONS:
        raise ValidationFailed("Custom project roles hold project permissions only.")
    role = await db.scalar(
        select(CustomRole).where(CustomRole.org_id == org_id, CustomRole.name == name)
    )
    if role is None:
        role = CustomRole(org_id=org_id, name=name, permissions=sorted(granted))
        db.add(role)
    else:
        role.permissions = sorted(granted)
    _member_event(db, "custom_role.defined", org_id, name=name, permissions=sorted(granted))
    await access_changed(db, org_id)
    await db.flush()
    return role


@dataclass(frozen=True)
class Bootstrap:
    org_id: int
    user_id: int
    project_id: int


async def bootstrap(
    db: AsyncSession,
    *,
    email: str,
    password: str,
    org_name: str = "My organization",
    project_name: str = "My project",
    plan: str = "standard",
) -> Bootstrap:
    """A first owner with an organization and a project, ready for keys."""
    try:
        user = await create_user(db, email, password)
    except IntegrityError as exc:  # pragma: no cover - raced with another bootstrap
        raise Conflict(f"A user with the email {email} already exists.") from exc
    org = await create_org(db, org_name, plan)
    await set_org_role(db, org.id, user.id, OrgRole.OWNER)
    project = await create_project(db, org.id, project_name)
    await add_project_role(db, project.id, user.id, ProjectRole.OWNER)
    return Bootstrap(org_id=org.id, user_id=user.id, project_id=project.id)
