"""Project → Compliance and Project → Webhooks (issue 11).

Compliance lists every key and webhook that can reach end users' personal data (full exports,
profiles, conversations), with owner, purpose and last use, exportable as CSV and JSON for
data-processing records and SOC 2 key inventories. Webhooks shows the project's
subscriptions, whether they are enabled (and why not), and their latest deliveries. Both need
api_key:read (they describe the project's access); the webhooks page also webhook:read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from keyplane.api.deps import runtime
from keyplane.dashboard.key_pages import MAX_ID, actor_of, project_of
from keyplane.dashboard.web import PREFIX, Viewer, render, viewer
from keyplane.domain.permissions import Permission
from keyplane.services import pii_inventory, webhooks

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
DELIVERIES_SHOWN = 10


@router.get("/projects/{project_id}/compliance")
async def compliance_page(
    request: Request,
    me: ViewerDep,
    project_id: Id,
    format: Annotated[str | None, Query(pattern="^(csv|json)$")] = None,
) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    async with rt.sessions() as db:
        await rt.keys.require(db, actor_of(request, me), project_id, Permission.API_KEY_READ)
        items = await pii_inventory.inventory(db, project_id)
    filename = f"keyplane-project-{project_id}-personal-data-access"
    if format == "csv":
        return Response(
            pii_inventory.to_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if format == "json":
        return JSONResponse(
            {"project_id": project_id, "data": items},
            headers={"Content-Disposition": f'attachment; filename="{filename}.json"'},
        )
    return render(
        request,
        "compliance.html",
        {"section": "compliance", "project": project, "items": items},
        me=me,
    )


@router.get("/projects/{project_id}/webhooks")
async def webhooks_page(request: Request, me: ViewerDep, project_id: Id) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    async with rt.sessions() as db:
        await rt.keys.require(db, actor_of(request, me), project_id, Permission.WEBHOOK_READ)
        rows = await webhooks.list_endpoints(db, project_id)
        hooks = []
        for row in rows:
            recent, _ = await webhooks.deliveries(
                db, project_id, row.id, limit=DELIVERIES_SHOWN, before_id=None
            )
            hooks.append(webhooks.describe(row) | {"deliveries": recent})
    return render(
        request,
        "webhooks.html",
        {"section": "webhooks", "project": project, "hooks": hooks},
        me=me,
    )
