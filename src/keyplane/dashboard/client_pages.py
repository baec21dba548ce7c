"""Organization → Clients, the reseller view (issue 12): every client with the chatbots
assigned to them, their keys and last use; make a member a client, assign or unassign
projects, and revoke everything a client holds in one click. Plain forms with the session's
CSRF token; each change redirects back."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from keyplane.api.deps import runtime
from keyplane.dashboard.key_pages import actor_of
from keyplane.dashboard.web import (
    PREFIX,
    Change,
    Field,
    Id,
    Viewer,
    ViewerDep,
    form_id,
    member_access,
    org_name,
    org_projects,
    render,
    run_change,
)
from keyplane.domain.roles import ProjectRole
from keyplane.services import clients, members, sso

router = APIRouter(prefix=PREFIX, include_in_schema=False)

NOTICES = {
    "client": "Member is now a client: they reach only the projects you assign them.",
    "member": "Member is a regular member again; their organization role applies.",
    "assigned": "Project assigned. It applies to the client's very next request.",
    "unassigned": "Project unassigned. The client's keys lost it on their very next request.",
    "revoked": "Every key this client held is revoked.",
}


async def _page(
    request: Request, me: Viewer, org_id: int, *, error: str | None = None, status: int = 200
) -> Response:
    rt = runtime(request)
    name = org_name(me, org_id)
    async with rt.sessions() as db:
        can_write = await member_access(db, me, org_id)
        listed = await clients.overview(db, me.user_id, org_id)
        everyone = await members.members(db, org_id, None)
        projects = await org_projects(db, org_id)
        config = await sso.get_config(db, org_id)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        "clients.html",
        {
            "section": "clients",
            "org_id": org_id,
            "org_name": name,
            "clients": listed,
            "candidates": [m for m in everyone if not m.client and m.org_role != "o_owner"],
            "projects": projects,
            "project_names": {pid: pname for pid, pname in projects},
            "project_roles": list(ProjectRole),
            "default_role": config.default_project_role if config else ProjectRole.MEMBER,
            "can_write": can_write,
            "notice": None if error else notice,
            "error": error,
        },
        status_code=status,
        me=me,
    )


@router.get("/orgs/{org_id}/clients")
async def clients_page(request: Request, me: ViewerDep, org_id: Id) -> Response:
    return await _page(request, me, org_id)


async def _change(
    request: Request, me: Viewer, org_id: int, csrf: str, done: str, change: Change
) -> Response:
    async def reshow(error: str, status: int) -> Response:
        return await _page(request, me, org_id, error=error, status=status)

    done_url = f"{PREFIX}/orgs/{org_id}/clients?done={done}"
    return await run_change(request, me, csrf, change, done_url=done_url, reshow=reshow)


@router.post("/orgs/{org_id}/clients")
async def make_client(
    request: Request, me: ViewerDep, org_id: Id, user: Field = "", csrf: Field = ""
) -> Response:
    user_id = form_id(user) or 0

    async def change(db: AsyncSession) -> object:
        await clients.set_client(db, me.user_id, org_id, user_id, client=True)
        return None

    return await _change(request, me, org_id, csrf, "client", change)


@router.post("/orgs/{org_id}/clients/{user_id}/release")
async def release(
    request: Request, me: ViewerDep, org_id: Id, user_id: Id, csrf: Field = ""
) -> Response:
    async def change(db: AsyncSession) -> object:
        await clients.set_client(db, me.user_id, org_id, user_id, client=False)
        return None

    return await _change(request, me, org_id, csrf, "member", change)


@router.post("/orgs/{org_id}/clients/{user_id}/assign")
async def assign(
    request: Request,
    me: ViewerDep,
    org_id: Id,
    user_id: Id,
    project: Field = "",
    role: Field = "",
    csrf: Field = "",
) -> Response:
    project_id = form_id(project) or 0

    async def change(db: AsyncSession) -> object:
        await clients.assign(db, me.user_id, org_id, user_id, project_id, role)
        return None

    return await _change(request, me, org_id, csrf, "assigned", change)


@router.post("/orgs/{org_id}/clients/{user_id}/projects/{project_id}/unassign")
async def unassign(
    request: Request, me: ViewerDep, org_id: Id, user_id: Id, project_id: Id, csrf: Field = ""
) -> Response:
    async def change(db: AsyncSession) -> object:
        await clients.unassign(db, me.user_id, org_id, user_id, project_id)
        return None

    return await _change(request, me, org_id, csrf, "unassigned", change)


@router.post("/orgs/{org_id}/clients/{user_id}/revoke-keys")
async def revoke_keys(
    request: Request, me: ViewerDep, org_id: Id, user_id: Id, csrf: Field = ""
) -> Response:
    rt = runtime(request)
    actor = actor_of(request, me)

    async def change(db: AsyncSession) -> object:
        return await clients.revoke_everything(db, rt.keys, actor, org_id, user_id)

    return await _change(request, me, org_id, csrf, "revoked", change)
