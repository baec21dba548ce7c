"""Project → Alerts (issue 7): the project's security alerts, those not yet acknowledged first,
each with its key and details; acknowledging is a plain form with the session's CSRF token.
The alerts service holds the rules (who may list, who may acknowledge, the first one stands)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from keyplane.adapters.sql.models import ApiKey
from keyplane.api.deps import runtime
from keyplane.dashboard.key_pages import MAX_ID, actor_of, project_of
from keyplane.dashboard.web import PREFIX, Viewer, check_form_csrf, render, safe_next, viewer
from keyplane.domain.permissions import Permission
from keyplane.services import alerts

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Field = Annotated[str, Form(max_length=1000)]
OPEN_SHOWN = 200
HANDLED_SHOWN = 50


async def key_names(
    db: AsyncSession, project_id: int, items: list[dict[str, Any]]
) -> dict[str, str]:
    """The names of the keys the alerts are about (revoked ones included), for display."""
    ids = {a["key_id"] for a in items if a["key_id"]}
    if not ids:
        return {}
    rows = await db.execute(
        select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids), ApiKey.project_id == project_id)
    )
    return {key_id: name for key_id, name in rows.all()}


@router.get("/projects/{project_id}/alerts")
async def alerts_page(request: Request, me: ViewerDep, project_id: Id) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    async with rt.sessions() as db:
        held = await rt.keys.require(db, actor_of(request, me), project_id, Permission.API_KEY_READ)
        open_items, more_open = await alerts.list_alerts(
            db, project_id, limit=OPEN_SHOWN, unacknowledged=True
        )
        handled, _ = await alerts.list_alerts(
            db, project_id, limit=HANDLED_SHOWN, acknowledged=True
        )
        names = await key_names(db, project_id, open_items + handled)
    done = request.query_params.get("done") == "ack"
    return render(
        request,
        "alerts.html",
        {
            "section": "alerts",
            "project": project,
            "open_alerts": open_items,
            "more_open": more_open is not None,
            "handled": handled,
            "key_names": names,
            "can_write": held is None or Permission.API_KEY_WRITE in held,
            "back": f"{PREFIX}/projects/{project_id}/alerts",
            "notice": "Alert acknowledged." if done else None,
        },
        me=me,
    )


@router.post("/projects/{project_id}/alerts/{alert_id}/acknowledge")
async def acknowledge(
    request: Request,
    me: ViewerDep,
    project_id: Id,
    alert_id: Id,
    csrf: Field = "",
    back: Field = "",
) -> Response:
    check_form_csrf(me.csrf_token, csrf or None)
    project_of(me, project_id)
    rt = runtime(request)
    async with rt.transaction() as db:
        await rt.keys.require(db, actor_of(request, me), project_id, Permission.API_KEY_WRITE)
        await alerts.acknowledge(db, project_id, alert_id, me.user_id)
    target = safe_next(back or None)
    if target == PREFIX:
        target = f"{PREFIX}/projects/{project_id}/alerts"
    if "done=ack" not in target:
        target += ("&" if "?" in target else "?") + "done=ack"
    return RedirectResponse(target, status_code=303)
