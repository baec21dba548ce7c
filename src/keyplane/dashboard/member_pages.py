"""Organization → Members: invite by email (a pending membership), change roles, remove; and
Account → Invitations, where the invited person accepts or declines. Plain forms with the
session's CSRF token; each change redirects back (a reload never repeats it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from keyplane.adapters.sql.models import Organization
from keyplane.api.deps import runtime
from keyplane.dashboard.web import (
    PREFIX,
    Change,
    Field,
    Id,
    Viewer,
    ViewerDep,
    check_form_csrf,
    form_id,
    member_access,
    org_name,
    render,
    run_change,
)
from keyplane.domain.roles import OrgRole, ProjectRole
from keyplane.services import members

router = APIRouter(prefix=PREFIX, include_in_schema=False)

NOTICES = {
    "invited": "Invitation saved. It stays pending until the person signs in and accepts it.",
    "withdrawn": "Invitation withdrawn.",
    "role": "Role changed. It applies to the very next request.",
    "removed": "Member removed from the organization and its projects.",
    "accepted": "Invitation accepted: you are now a member.",
    "declined": "Invitation declined.",
}


async def _page(
    request: Request, me: Viewer, org_id: int, *, error: str | None = None, status: int = 200
) -> Response:
    rt = runtime(request)
    name = org_name(me, org_id)
    async with rt.sessions() as db:
        can_write = await member_access(db, me, org_id)
        listed = await members.members(db, org_id, None)
        invited = await members.pending(db, org_id)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        "members.html",
        {
            "section": "members",
            "org_id": org_id,
            "org_name": name,
            "members": listed,
            "invitations": invited,
            "can_write": can_write,
            "org_roles": list(OrgRole),
            "project_roles": list(ProjectRole),
            "org_projects": [p for p in me.projects if p.org_id == org_id],
            "notice": None if error else notice,
            "error": error,
        },
        status_code=status,
        me=me,
    )


@router.get("/orgs/{org_id}/members")
async def members_page(request: Request, me: ViewerDep, org_id: Id) -> Response:
    return await _page(request, me, org_id)


async def _change(
    request: Request, me: Viewer, org_id: int, csrf: str, done: str, change: Change
) -> Response:
    async def reshow(error: str, status: int) -> Response:
        return await _page(request, me, org_id, error=error, status=status)

    done_url = f"{PREFIX}/orgs/{org_id}/members?done={done}"
    return await run_change(request, me, csrf, change, done_url=done_url, reshow=reshow)


@router.post("/orgs/{org_id}/members/invite")
async def invite(
    request: Request,
    me: ViewerDep,
    org_id: Id,
    email: Field = "",
    org_role: Field = "o_member",
    project: Field = "",
    project_role: Field = "",
    csrf: Field = "",
) -> Response:
    project_id = form_id(project)

    async def change(db: AsyncSession) -> object:
        return await members.invite(
            db, me.user_id, org_id, email, org_role, project_id, project_role or None
        )

    return await _change(request, me, org_id, csrf, "invited", change)


@router.post("/orgs/{org_id}/invitations/{invitation_id}/withdraw")
async def withdraw(
    request: Request, me: ViewerDep, org_id: Id, invitation_id: Id, csrf: Field = ""
) -> Response:
    async def change(db: AsyncSession) -> object:
        await members.revoke_invitation(db, me.user_id, org_id, invitation_id)
        return None

    return await _change(request, me, org_id, csrf, "withdrawn", change)


@router.post("/orgs/{org_id}/members/{user_id}/role")
async def change_role(
    request: Request, me: ViewerDep, org_id: Id, user_id: Id, org_role: Field = "", csrf: Field = ""
) -> Response:
    async def change(db: AsyncSession) -> object:
        await members.change_role(db, me.user_id, org_id, user_id, org_role)
        return None

    return await _change(request, me, org_id, csrf, "role", change)


@router.post("/orgs/{org_id}/members/{user_id}/remove")
async def remove(
    request: Request, me: ViewerDep, org_id: Id, user_id: Id, csrf: Field = ""
) -> Response:
    async def change(db: AsyncSession) -> object:
        await members.remove(db, me.user_id, org_id, user_id)
        return None

    return await _change(request, me, org_id, csrf, "removed", change)


# --- the invited person's side ---------------------------------------------------------------
@router.get("/account/invitations")
async def my_invitations(request: Request, me: ViewerDep) -> Response:
    async with runtime(request).sessions() as db:
        mine = await members.invitations_for(db, me.email)
        names = {
            i.org_id: n
            for i in mine
            if (n := await db.scalar(select(Organization.name).where(Organization.id == i.org_id)))
        }
    return render(
        request,
        "invitations.html",
        {
            "section": "invitations",
            "invitations": mine,
            "org_names": names,
            "notice": NOTICES.get(request.query_params.get("done", "")),
        },
        me=me,
    )


@router.post("/account/invitations/{invitation_id}")
async def answer_invitation(
    request: Request, me: ViewerDep, invitation_id: Id, answer: Field = "", csrf: Field = ""
) -> Response:
    check_form_csrf(me.csrf_token, csrf or None)
    accept = answer == "accept"
    async with runtime(request).transaction() as db:
        await members.answer(db, me.user_id, invitation_id, accept=accept)
    done = "accepted" if accept else "declined"
    return RedirectResponse(f"{PREFIX}/account/invitations?done={done}", status_code=303)
