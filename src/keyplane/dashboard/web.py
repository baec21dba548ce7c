"""What every dashboard page shares: the templates, the signed-in viewer with their
organizations and projects (for the switcher), CSRF checks on forms, and display filters."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi import Path as InPath  # pathlib.Path is the templates folder
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from keyplane.adapters.sql.models import Invitation, Organization, OrgMember, Project, User
from keyplane.adapters.sql.repositories import aware, project_access, utcnow
from keyplane.api.deps import current_session, runtime
from keyplane.api.errors import status_of
from keyplane.domain.errors import (
    Conflict,
    CsrfFailed,
    InsufficientPermissions,
    NotFound,
    ValidationFailed,
)
from keyplane.domain.permissions import Permission
from keyplane.services import alerts, branding, members
from keyplane.services.branding import Branding
from keyplane.services.sessions import SignedIn

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
PREFIX = "/dashboard"
# Before sign-in there is no session to hold a CSRF token: the login form uses a random
# token in a cookie that must match the form field (double submit), so another site cannot
# sign a browser into an account of its choosing.
LOGIN_CSRF_COOKIE = "keyplane_login_csrf"


class SignInRequired(Exception):
    """Raised by pages without a valid session; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class ProjectChoice:
    id: int
    name: str
    org_id: int
    permissions: frozenset[Permission]


@dataclass
class Viewer:
    """The signed-in person and what the header's switcher offers them."""

    token: str
    session: SignedIn
    email: str
    orgs: list[tuple[int, str, str]] = field(default_factory=list)  # id, name, role
    projects: list[ProjectChoice] = field(default_factory=list)
    invitations: int = 0  # pending invitations to this person's email
    open_alerts: dict[int, int] = field(default_factory=dict)  # project id -> unacknowledged
    brands: dict[int, Branding] = field(default_factory=dict)  # org id -> white-label settings

    @property
    def user_id(self) -> int:
        return self.session.user_id

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def project(self, project_id: int) -> ProjectChoice | None:
        return next((p for p in self.projects if p.id == project_id), None)

    def org_role(self, org_id: int) -> str | None:
        return next((role for oid, _name, role in self.orgs if oid == org_id), None)

    def brand_for(self, org_id: int | None) -> Branding | None:
        """The branding of the organization a page is about, else of the person's first one."""
        if org_id is None and self.orgs:
            org_id = self.orgs[0][0]
        return None if org_id is None else self.brands.get(org_id)


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer, or a redirect to the login page (which brings them back)."""
    found = await current_session(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    token, signed_in = found
    async with runtime(request).sessions() as db:
        user = await db.get(User, signed_in.user_id)
        assert user is not None
        me = Viewer(token=token, session=signed_in, email=user.email)
        memberships = (
            await db.execute(
                select(Organization.id, Organization.name, OrgMember.role)
                .join(OrgMember, OrgMember.org_id == Organization.id)
                .where(OrgMember.user_id == user.id)
                .order_by(Organization.name, Organization.id)
            )
        ).all()
        me.orgs = [(oid, name, role) for oid, name, role in memberships]
        me.invitations = int(
            await db.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.email == user.email)
            )
            or 0
        )
        for org_id, _name, _role in me.orgs:
            for project_id, name in await org_projects(db, org_id):
                access = await project_access(db, user.id, project_id)
                if access is not None:
                    me.projects.append(ProjectChoice(project_id, name, org_id, access[1]))
        me.brands = await branding.for_orgs(db, [oid for oid, _n, _r in me.orgs])
        # The navigation's alert badge, for the projects whose alerts this person may see.
        me.open_alerts = await alerts.open_counts(
            db, [p.id for p in me.projects if Permission.API_KEY_READ in p.permissions]
        )
    return me


# The parameters of organization pages: the signed-in viewer, an id in the path, a form field.
ViewerDep = Annotated[Viewer, Depends(viewer)]
Id = Annotated[int, InPath(ge=1, le=2**63 - 1)]
Field = Annotated[str, Form(max_length=1000)]


async def member_access(db: AsyncSession, me: Viewer, org_id: int) -> bool:
    """Refuse a viewer who may not see the organization's members; True when they may also
    change them (the Members and Clients pages show their forms only then)."""
    await members.require(db, me.user_id, org_id, Permission.MEMBER_READ)
    return Permission.MEMBER_WRITE in await members.org_permissions(db, me.user_id, org_id)


async def org_projects(db: AsyncSession, org_id: int) -> list[tuple[int, str]]:
    """An organization's projects as (id, name), by name: the order every page lists them in."""
    rows = await db.execute(
        select(Project.id, Project.name)
        .where(Project.org_id == org_id)
        .order_by(Project.name, Project.id)
    )
    return [(pid, pname) for pid, pname in rows]


def check_form_csrf(expected: str, sent: str | None) -> None:
    if sent is None or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfFailed(
            "This form has expired or did not come from this dashboard; reload the page and "
            "try again."
        )


# The refusals a dashboard form answers by showing its page again with the message; anything
# else is a fault and goes to the error pages.
REFUSALS = (ValidationFailed, Conflict, NotFound, InsufficientPermissions)
# One change a form makes, run inside a transaction.
Change = Callable[[AsyncSession], Awaitable[object]]
# Shows the form's page again with an error message and the status that refusal maps to.
Reshow = Callable[[str, int], Awaitable[Response]]


def org_name(me: Viewer, org_id: int) -> str:
    """The name of one of the viewer's organizations; any other id is not found."""
    for oid, name, _role in me.orgs:
        if oid == org_id:
            return name
    raise NotFound(f"No organization {org_id} that you belong to.")


def form_id(value: str) -> int | None:
    """An id sent in a form field (a select's value), or None when it is not a valid one."""
    return int(value) if value.isdigit() and len(value) < 19 else None


async def run_change(
    request: Request, me: Viewer, csrf: str, change: Change, *, done_url: str, reshow: Reshow
) -> Response:
    """Run one form's change; on a refusal show the page again with the message (and status),
    else redirect to `done_url` so a reload never repeats the change."""
    check_form_csrf(me.csrf_token, csrf or None)
    try:
        async with runtime(request).transaction() as db:
            await change(db)
    except REFUSALS as refusal:
        return await reshow(refusal.message, status_of(refusal))
    return RedirectResponse(done_url, status_code=303)


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def login_url(next_path: str | None = None) -> str:
    url = f"{PREFIX}/login"
    return f"{url}?next={quote(next_path, safe='/')}" if next_path else url


def safe_next(next_path: str | None) -> str:
    """Only ever redirect within the dashboard after sign-in (no open redirect)."""
    if next_path and next_path.startswith(PREFIX + "/") and "//" not in next_path:
        return next_path
    return PREFIX


def ago(value: str | datetime | None, never: str = "never") -> str:
    """'never', 'just now', '3 minutes ago', '2 days ago'."""
    if value is None:
        return never
    moment = aware(datetime.fromisoformat(value) if isinstance(value, str) else value)
    assert moment is not None
    seconds = int((utcnow() - moment).total_seconds())
    if seconds < 0:
        return until(moment)
    if seconds < 45:
        return "just now"
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            n = max(1, round(seconds / size)) if unit == "minute" else seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"  # pragma: no cover - covered by the first branch


def until(value: str | datetime | None) -> str:
    """'in 3 days' for a future time."""
    if value is None:
        return "never"
    moment = aware(datetime.fromisoformat(value) if isinstance(value, str) else value)
    assert moment is not None
    seconds = int((moment - utcnow()).total_seconds())
    if seconds <= 0:
        return ago(moment)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"in {n} {unit}{'s' if n != 1 else ''}"
    return "in less than a minute"


def day(value: str | datetime | None) -> str:
    if value is None:
        return ""
    moment = aware(datetime.fromisoformat(value) if isinstance(value, str) else value)
    assert moment is not None
    return moment.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["ago"] = ago
templates.env.filters["until"] = until
templates.env.filters["day"] = day


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    me: Viewer | None = None,
) -> Response:
    """Render a page. Pages are never cached (they may show key details) and may not be
    framed (clickjacking the reveal button)."""
    brand: Branding | None = context.get("brand")
    if brand is None and me is not None:
        project = context.get("project")
        brand = me.brand_for(project.org_id if project is not None else context.get("org_id"))
    response = templates.TemplateResponse(
        request,
        name,
        {
            "me": me,
            "prefix": PREFIX,
            **context,
            "brand": brand,
            # Where API calls go: a reseller's own API address when set, else this server.
            "api_url": brand.base_url
            if brand is not None and brand.base_url
            else str(request.base_url).rstrip("/"),
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # A white-label logo is the one image from elsewhere: allow exactly its origin.
    logo = f" {brand.logo_origin}" if brand is not None and brand.logo_origin else ""
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' data:{logo}; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response
