"""A key's "Compromised?" page: the guide's "Respond to Compromises Quickly" on one page.

Stop the key (revoke it, or revoke and replace it with a new secret holding the same
settings, or rotate it with a grace period), then see what it did: the systems that used it,
the permissions it exercised, its alerts and its audit events. The page only reads; the
changes go through the JSON key-management API (services/keys.py holds the rules), like the
API Keys page's dialogs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from keyplane.adapters.sql.models import ApiKey
from keyplane.adapters.sql.repositories import aware, iso, utcnow
from keyplane.api.deps import runtime
from keyplane.dashboard.alert_pages import key_names
from keyplane.dashboard.key_pages import MAX_ID, actor_of, project_of
from keyplane.dashboard.web import PREFIX, Viewer, render, viewer
from keyplane.domain.permissions import Permission
from keyplane.services import alerts, audit, usage
from keyplane.services.keys import describe

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
Days = Annotated[int, Query(ge=1, le=90)]  # the page offers 1, 7 and 30
EVENTS_SHOWN = 100
# What the rotation form offers: 0 is what a compromise needs; the others are for planned
# rotations, where systems move to the new secret before the old one stops.
GRACE_CHOICES = [
    (0, "Immediately (a compromised key)"),
    (3600, "In 1 hour"),
    (86_400, "In 24 hours"),
    (7 * 86_400, "In 7 days"),
]


def state(row: ApiKey) -> str:
    revoked = aware(row.revoked_at)
    if revoked is None:
        expires = aware(row.expires_at)
        return "expired" if expires is not None and expires <= utcnow() else "active"
    return "grace" if revoked > utcnow() else "revoked"


def copy_body(row: ApiKey) -> dict[str, Any]:
    """What the create-key API needs for a new key with a revoked key's settings (same name,
    permissions, environment, allowlist, limits, label; the expiry only if still ahead)."""
    expires = aware(row.expires_at)
    body: dict[str, Any] = {
        "name": row.name,
        "permissions": sorted(row.permissions),
        "mode": row.mode,
        "ip_allowlist": list(row.ip_allowlist or []),
    }
    if row.rate_limit:
        body["rate_limit"] = row.rate_limit
    if row.label:
        body["label"] = row.label
    if expires is not None and expires > utcnow():
        body["expires_at"] = iso(expires)
    return body


@router.get("/projects/{project_id}/settings/api-keys/{key_id}/compromised")
async def compromised(
    request: Request,
    me: ViewerDep,
    project_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    key_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
    days: Days = 7,
) -> Response:
    project = project_of(me, project_id)
    rt = runtime(request)
    end = utcnow()
    start = end - timedelta(days=days)
    async with rt.sessions() as db:
        row = await rt.keys.project_key_record(db, actor_of(request, me), project_id, key_id)
        successor = await rt.keys.successor(db, row)
        rotation = await usage.rotation(db, row, rt.usage.clients)
        clients = await usage.clients_since(db, row.id, start, rt.usage.clients)
        report = await usage.report(db, row.id, start, end, "day", rt.usage.counts)
        events, _ = await audit.events(db, project_id, limit=EVENTS_SHOWN, involving=row.id)
        if successor is not None:  # the rotation is recorded on the new key
            rotated, _ = await audit.events(
                db, project_id, limit=1, action="api_key.rotated", key_id=successor.id
            )
            events = sorted(rotated + events, key=lambda e: e["id"], reverse=True)
        key_alerts, _ = await alerts.list_alerts(db, project_id, limit=50, key_id=row.id)
        names = await key_names(db, project_id, key_alerts)
    totals = {klass: sum(int(p[klass]) for p in report["data"]) for klass in usage.STATUS_CLASSES}
    base = f"{PREFIX}/projects/{project_id}/settings/api-keys"
    return render(
        request,
        "compromised.html",
        {
            "section": "project-keys",
            "project": project,
            "key": describe(row),
            "state": state(row),
            "successor": describe(successor) if successor else None,
            "rotation": rotation,
            "clients": clients,
            "days": days,
            "totals": totals,
            "daily": report["data"],
            "permissions_used": report["permissions"],
            "unused": sorted(set(row.permissions) - set(report["permissions"])),
            "events": events,
            "key_alerts": key_alerts,
            "key_names": names,
            "copy": copy_body(row),
            "grace_choices": GRACE_CHOICES,
            "can_write": Permission.API_KEY_WRITE in project.permissions,
            "api_base": f"/v1/projects/{project_id}/api-keys",
            "keys_page": base,
            "page_url": f"{base}/{row.id}/compromised",
            "back": f"{base}/{row.id}/compromised?days={days}",
        },
        me=me,
    )
