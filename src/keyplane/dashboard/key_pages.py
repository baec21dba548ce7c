"""Project → Settings → API Keys, Account → API Keys, and each key's usage page.

The pages are rendered here from the key service; the changes (create, edit, delete, reveal)
go through the JSON key-management API with the session's CSRF token, so every business rule
lives in one place (services/keys.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from keyplane.adapters.sql.models import ApiKey
from keyplane.adapters.sql.repositories import aware, custom_catalog, utcnow
from keyplane.api.deps import client_ip, runtime
from keyplane.dashboard.chart import usage_chart
from keyplane.dashboard.web import PREFIX, Viewer, render, viewer
from keyplane.domain.custom_permissions import CustomCatalog
from keyplane.domain.errors import NotFound
from keyplane.domain.permissions import (
    PROJECT_KEY_PERMISSIONS,
    PROJECT_PERMISSIONS,
    Permission,
    catalog,
)
from keyplane.services import alerts, usage
from keyplane.services.keys import MAX_NAME_LENGTH, Actor, describe

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
MAX_ID = 2**63 - 1


def actor_of(request: Request, me: Viewer) -> Actor:
    rt = runtime(request)
    return Actor(
        user_id=me.user_id,
        ip=client_ip(request, rt.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


def permission_groups(
    grantable: frozenset[Permission], held: frozenset[Permission]
) -> list[dict[str, Any]]:
    """The picker's rows, grouped by resource in catalog order. Every grantable permission is
    listed so that editing a key can show what it holds; only `held` ones are offered."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in catalog():
        permission = Permission(str(entry["name"]))
        if permission not in grantable:
            continue
        groups.setdefault(permission.resource, []).append(entry | {"held": permission in held})
    return [
        {"resource": resource, "permissions": items, "offered": any(i["held"] for i in items)}
        for resource, items in groups.items()
    ]


def custom_groups(custom: CustomCatalog) -> list[dict[str, Any]]:
    """The project's own permissions (issue 10), after the built-in ones: whoever may create
    keys in the project may grant them, so they are always offered. Without them in the
    picker, editing a key in the dashboard would drop them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(custom.names):
        implied = sorted(custom.closure(custom.implies[name]) - {name})
        entry = {"name": name, "description": "", "implies": implied, "held": True}
        groups.setdefault(name.split(":", 1)[0], []).append(entry)
    return [
        {"resource": resource, "permissions": items, "offered": True}
        for resource, items in groups.items()
    ]


def _rows(rows: list[ApiKey]) -> list[dict[str, Any]]:
    now = utcnow()
    shown = []
    for row in rows:
        key = describe(row)
        key["in_grace"] = row.revoked_at is not None
        expires = aware(row.expires_at)
        key["expired"] = expires is not None and expires <= now
        shown.append(key)
    return shown


@router.get("")
async def home(me: ViewerDep) -> Response:
    for choice in me.projects:  # the first project whose keys this person may see
        if Permission.API_KEY_READ in choice.permissions:
            return RedirectResponse(f"{PREFIX}/projects/{choice.id}/settings/api-keys", 303)
    return RedirectResponse(f"{PREFIX}/account/api-keys", 303)


@router.get("/switch")
async def switch(me: ViewerDep, project: Annotated[int, Query(ge=1, le=MAX_ID)]) -> Response:
    """The header's project switcher (a plain GET form, so it works without JavaScript)."""
    if me.project(project) is None:
        raise NotFound(f"No project with id {project} that you can access.")
    return RedirectResponse(f"{PREFIX}/projects/{project}/settings/api-keys", 303)


def project_of(me: Viewer, project_id: int) -> Any:
    project = me.project(project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id} that you can access.")
    return project


@router.get("/projects/{project_id}/settings/api-keys")
async def project_keys(
    request: Request, me: ViewerDep, project_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    async with rt.sessions() as db:
        rows = await rt.keys.list_project_keys(db, actor_of(request, me), project_id)
        custom = await custom_catalog(db, project_id)
    held = project.permissions
    active = sum(1 for r in rows if r.revoked_at is None)
    limit = rt.settings.max_keys_per_project
    return render(
        request,
        "keys.html",
        {
            "section": "project-keys",
            "kind": "project",
            "title": "API Keys",
            "project": project,
            "api_base": f"/v1/projects/{project_id}/api-keys",
            "usage_base": f"{PREFIX}/projects/{project_id}/settings/api-keys",
            "keys": _rows(rows),
            "groups": permission_groups(PROJECT_KEY_PERMISSIONS, held) + custom_groups(custom),
            "can_write": Permission.API_KEY_WRITE in held,
            "active": active,
            "limit": limit,
            "max_name": MAX_NAME_LENGTH,
            "org_id": project.org_id,
        },
        me=me,
    )


@router.get("/account/api-keys")
async def account_keys(
    request: Request, me: ViewerDep, org: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> Response:
    rt = runtime(request)
    org_id = org if org is not None else (me.orgs[0][0] if me.orgs else None)
    if org_id is not None and me.org_role(org_id) is None:
        raise NotFound(f"No organization {org_id} that you belong to.")
    async with rt.sessions() as db:
        rows = await rt.keys.list_user_keys(db, me.user_id)
    # A user key may hold what its owner holds on any project of the organization.
    held: frozenset[Permission] = frozenset()
    for choice in me.projects:
        if choice.org_id == org_id:
            held |= choice.permissions
    return render(
        request,
        "keys.html",
        {
            "section": "account-keys",
            "kind": "user",
            "title": "Account API Keys",
            "project": None,
            "api_base": "/v1/me/api-keys",
            "usage_base": f"{PREFIX}/account/api-keys",
            "keys": _rows([r for r in rows if org_id is None or r.org_id == org_id]),
            "groups": permission_groups(PROJECT_PERMISSIONS, held),
            "can_write": bool(held),
            "active": None,
            "limit": None,
            "max_name": MAX_NAME_LENGTH,
            "org_id": org_id,
        },
        me=me,
    )


Group = Literal["hour", "day"]
_WINDOWS = {"hour": timedelta(hours=48), "day": timedelta(days=30)}


async def _usage_page(
    request: Request, me: Viewer, row: ApiKey, group_by: Group, back: str, project: Any
) -> Response:
    rt = runtime(request)
    end = utcnow()
    start = end - _WINDOWS[group_by]
    async with rt.sessions() as db:
        report = await usage.report(db, row.id, start, end, group_by, rt.usage.counts)
        key_alerts: list[dict[str, Any]] = []
        if project is not None:  # alerts belong to projects; user keys have none of their own
            key_alerts, _ = await alerts.list_alerts(db, project.id, limit=20, key_id=row.id)
    totals = {klass: sum(int(p[klass]) for p in report["data"]) for klass in usage.STATUS_CLASSES}
    return render(
        request,
        "usage.html",
        {
            "section": "project-keys" if project else "account-keys",
            "project": project,
            "key": describe(row),
            "group_by": group_by,
            "chart": usage_chart(report["data"], start, end, group_by),
            "totals": totals,
            "permissions_used": report["permissions"],
            "unused": sorted(set(row.permissions) - set(report["permissions"])),
            "back": back,
            "key_alerts": key_alerts,
            "key_names": {},
            "can_write": project is not None and Permission.API_KEY_WRITE in project.permissions,
            "here": request.url.path + (f"?group_by={group_by}"),
        },
        me=me,
    )


@router.get("/projects/{project_id}/settings/api-keys/{key_id}/usage")
async def project_key_usage(
    request: Request,
    me: ViewerDep,
    project_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    key_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
    group_by: Group = "hour",
) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    async with rt.sessions() as db:
        row, _ = await rt.keys.project_key(
            db, actor_of(request, me), project_id, key_id, Permission.API_KEY_READ
        )
    back = f"{PREFIX}/projects/{project_id}/settings/api-keys"
    return await _usage_page(request, me, row, group_by, back, project)


@router.get("/account/api-keys/{key_id}/usage")
async def user_key_usage(
    request: Request,
    me: ViewerDep,
    key_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
    group_by: Group = "hour",
) -> Response:
    rt = runtime(request)
    async with rt.sessions() as db:
        row = await rt.keys.user_key(db, me.user_id, key_id)
    return await _usage_page(request, me, row, group_by, f"{PREFIX}/account/api-keys", None)
