"""Key management (DESIGN §7): project keys under a project, user keys under /v1/me."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator

from keyplane.adapters.sql.models import ApiKey
from keyplane.adapters.sql.repositories import utcnow
from keyplane.api.deps import ActorDep, ProjectId, RuntimeDep, login_guard
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import (
    ApiKeyCreated,
    ApiKeyDetail,
    ApiKeyList,
    ApiKeyOut,
    AuditPage,
    IsoDateTime,
    KeyCreate,
    KeyUpdate,
    RevealOut,
    RevealRequest,
    RotateRequest,
    UsageOut,
    UserKeyCreate,
    errors_doc,
    storable,
)
from keyplane.domain.errors import (
    InsufficientPermissions,
    ReauthenticationRequired,
    SessionRequired,
)
from keyplane.domain.permissions import Permission
from keyplane.runtime import Runtime
from keyplane.services import audit, sessions, usage
from keyplane.services.keys import Actor, IssuedKey, KeyChanges, KeySpec, describe

router = APIRouter(tags=["api keys"])

KeyId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
_PROJECT_KEYS = "/v1/projects/{project_id}/api-keys"
_USER_KEYS = "/v1/me/api-keys"
_ERRORS = errors_doc(400, 401, 403, 404, 409, 422)


def _spec(body: KeyCreate) -> KeySpec:
    return KeySpec(
        name=body.name,
        permissions=list(body.permissions),
        mode=body.mode,
        expires_at=body.expires_at,
        ip_allowlist=list(body.ip_allowlist),
        rate_limit=body.rate_limit.model_dump(exclude_none=True) if body.rate_limit else None,
        label=body.label,
        allow_browser=body.allow_browser,
    )


def _changes(body: KeyUpdate) -> KeyChanges:
    return KeyChanges(
        name=body.name,
        permissions=body.permissions,
        expires_at=body.expires_at,
        ip_allowlist=body.ip_allowlist,
        rate_limit=body.rate_limit.model_dump(exclude_none=True) if body.rate_limit else None,
        label=body.label,
        allow_browser=body.allow_browser,
        sent=frozenset(body.model_fields_set),
    )


async def _detail(rt: Runtime, row: ApiKey) -> dict[str, Any]:
    """A key with who uses it, and for a rotated key in its grace period how many systems
    still use the old secret: when that reaches zero, deleting it is safe."""
    async with rt.sessions() as db:
        clients = await usage.clients_since(
            db, row.id, utcnow() - timedelta(days=7), rt.usage.clients
        )
        rotation = await usage.rotation(db, row, rt.usage.clients)
    return describe(row) | {"clients": clients, "rotation": rotation}


def _created(issued: IssuedKey) -> dict[str, Any]:
    return describe(issued.row) | {"secret": issued.secret}


async def _reveal(
    request: Request, rt: Runtime, actor: Actor, body: RevealRequest | None, row: ApiKey
) -> dict[str, Any]:
    """Reveal needs a dashboard session whose password was confirmed in the last 5 minutes
    (or is confirmed by this very request); never an API key."""
    signed_in = getattr(request.state, "signed_in", None)
    if actor.key_id is not None or signed_in is None:
        raise SessionRequired(
            "Secrets can only be revealed from a signed-in dashboard session, never with an "
            "API key."
        )
    token = request.cookies["keyplane_session"]
    if body is not None and body.password is not None:
        signed_in = await sessions.confirm_password(
            rt.transaction, token, body.password, login_guard(request)
        )
    async with rt.transaction() as db:
        window = timedelta(seconds=rt.settings.reveal_reauth_seconds)
        if utcnow() - signed_in.password_verified_at > window:
            raise ReauthenticationRequired(
                "Enter your password again to reveal a secret; it is asked for when not "
                "entered within the last 5 minutes."
            )
        fresh = await db.merge(row)
        secret = rt.keys.reveal(db, actor, fresh)
    return {"id": row.id, "secret": secret}


# --- project keys ----------------------------------------------------------------------------
@router.get(_PROJECT_KEYS, response_model=ApiKeyList, responses=_ERRORS)
async def list_project_keys(
    project_id: ProjectId, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    async with rt.sessions() as db:
        rows = await rt.keys.list_project_keys(db, actor, project_id)
    return {"data": [describe(r) for r in rows], "limit": rt.settings.max_keys_per_project}


@router.post(_PROJECT_KEYS, status_code=201, response_model=ApiKeyCreated, responses=_ERRORS)
async def create_project_key(
    project_id: ProjectId, body: KeyCreate, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Create a project key. The response carries `secret`, shown this once only."""
    async with rt.transaction() as db:
        issued = await rt.keys.create_project_key(db, actor, project_id, _spec(body))
    return _created(issued)


@router.get(_PROJECT_KEYS + "/{key_id}", response_model=ApiKeyDetail, responses=_ERRORS)
async def get_project_key(
    project_id: ProjectId, key_id: KeyId, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    async with rt.sessions() as db:
        row, _ = await rt.keys.project_key(db, actor, project_id, key_id, Permission.API_KEY_READ)
    return await _detail(rt, row)


@router.patch(_PROJECT_KEYS + "/{key_id}", response_model=ApiKeyOut, responses=_ERRORS)
async def update_project_key(
    project_id: ProjectId, key_id: KeyId, body: KeyUpdate, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Rename, change permissions, expiry, IP allowlist or rate override; effective on the
    very next request."""
    async with rt.transaction() as db:
        row, held = await rt.keys.project_key(
            db, actor, project_id, key_id, Permission.API_KEY_WRITE
        )
        await rt.keys.update(db, actor, row, _changes(body), held)
    return describe(row)


@router.delete(_PROJECT_KEYS + "/{key_id}", status_code=204, responses=_ERRORS)
async def delete_project_key(
    project_id: ProjectId, key_id: KeyId, rt: RuntimeDep, actor: ActorDep
) -> Response:
    """Revoke at once: the next request with this key gets 401 api_key_revoked."""
    async with rt.transaction() as db:
        row, _ = await rt.keys.project_key(db, actor, project_id, key_id, Permission.API_KEY_WRITE)
        await rt.keys.revoke(db, actor, row)
    return Response(status_code=204)


@router.post(
    _PROJECT_KEYS + "/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=_ERRORS,
)
async def rotate_project_key(
    project_id: ProjectId,
    key_id: KeyId,
    rt: RuntimeDep,
    actor: ActorDep,
    body: RotateRequest | None = None,
) -> dict[str, Any]:
    body = body or RotateRequest()
    async with rt.transaction() as db:
        row, _ = await rt.keys.project_key(db, actor, project_id, key_id, Permission.API_KEY_WRITE)
        issued = await rt.keys.rotate(db, actor, row, body.grace_seconds)
    return _created(issued)


@router.post(_PROJECT_KEYS + "/{key_id}/reveal", response_model=RevealOut, responses=_ERRORS)
async def reveal_project_key(
    project_id: ProjectId,
    key_id: KeyId,
    request: Request,
    rt: RuntimeDep,
    actor: ActorDep,
    body: RevealRequest | None = None,
) -> dict[str, Any]:
    async with rt.sessions() as db:
        row, _ = await rt.keys.project_key(db, actor, project_id, key_id, Permission.API_KEY_WRITE)
    return await _reveal(request, rt, actor, body, row)


UsageGroup = Literal["hour", "day"]


async def _usage(
    rt: Runtime, row: ApiKey, start: datetime | None, end: datetime | None, group_by: str
) -> dict[str, Any]:
    async with rt.sessions() as db:
        result = await usage.report(db, row.id, start, end, group_by, rt.usage.counts)
    return {"key_id": row.id, "group_by": group_by, **result}


@router.get(_PROJECT_KEYS + "/{key_id}/usage", response_model=UsageOut, responses=_ERRORS)
async def project_key_usage(
    project_id: ProjectId,
    key_id: KeyId,
    rt: RuntimeDep,
    actor: ActorDep,
    start: Annotated[IsoDateTime | None, Query(alias="from")] = None,
    end: Annotated[IsoDateTime | None, Query(alias="to")] = None,
    group_by: UsageGroup = "hour",
) -> dict[str, Any]:
    """Requests by hour or day and status (success, 4xx, 429, 5xx), and the permissions the
    key actually used: what to keep and what to remove."""
    async with rt.sessions() as db:
        row, _ = await rt.keys.project_key(db, actor, project_id, key_id, Permission.API_KEY_READ)
    return await _usage(rt, row, start, end, group_by)


@router.get("/v1/projects/{project_id}/audit-events", response_model=AuditPage, responses=_ERRORS)
async def audit_events(
    project_id: ProjectId,
    rt: RuntimeDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    action: Annotated[str | None, Query(max_length=64), AfterValidator(storable)] = None,
    key_id: Annotated[str | None, Query(max_length=40), AfterValidator(storable)] = None,
) -> dict[str, Any]:
    """Key events of the project, newest first: who created, revealed, edited, rotated or
    deleted which key, from which address."""
    async with rt.sessions() as db:
        await rt.keys.require(db, actor, project_id, Permission.API_KEY_READ)
        items, last = await audit.events(
            db,
            project_id,
            limit=limit,
            before_id=decode_cursor(cursor),
            action=action,
            key_id=key_id,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


# --- user keys -------------------------------------------------------------------------------
def _owner(actor: Actor) -> int:
    if actor.user_id is None:  # pragma: no cover - the API never builds an operator actor
        raise SessionRequired("User keys belong to a signed-in user.")
    return actor.user_id


def _require_scope(actor: Actor, permission: Permission) -> None:
    if actor.key_scopes is not None and permission not in actor.key_scopes:
        raise InsufficientPermissions(
            f"This user key lacks {permission}, which managing keys needs.",
            required=str(permission),
        )


@router.get(_USER_KEYS, response_model=ApiKeyList, responses=_ERRORS)
async def list_user_keys(rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    _require_scope(actor, Permission.API_KEY_READ)
    async with rt.sessions() as db:
        rows = await rt.keys.list_user_keys(db, _owner(actor))
    return {"data": [describe(r) for r in rows]}


@router.post(_USER_KEYS, status_code=201, response_model=ApiKeyCreated, responses=_ERRORS)
async def create_user_key(body: UserKeyCreate, rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    """Create an account-wide key: on each project it holds its scopes ∩ your permissions
    there, re-evaluated on every request."""
    async with rt.transaction() as db:
        issued = await rt.keys.create_user_key(db, actor, _owner(actor), _spec(body), body.org_id)
    return _created(issued)


@router.get(_USER_KEYS + "/{key_id}", response_model=ApiKeyDetail, responses=_ERRORS)
async def get_user_key(key_id: KeyId, rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    _require_scope(actor, Permission.API_KEY_READ)
    async with rt.sessions() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
    return await _detail(rt, row)


@router.patch(_USER_KEYS + "/{key_id}", response_model=ApiKeyOut, responses=_ERRORS)
async def update_user_key(
    key_id: KeyId, body: KeyUpdate, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    _require_scope(actor, Permission.API_KEY_WRITE)
    async with rt.transaction() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
        held = await rt.keys.held_in_org(db, _owner(actor), row.org_id)
        if actor.key_scopes is not None:
            held &= actor.key_scopes
        await rt.keys.update(db, actor, row, _changes(body), held)
    return describe(row)


@router.delete(_USER_KEYS + "/{key_id}", status_code=204, responses=_ERRORS)
async def delete_user_key(key_id: KeyId, rt: RuntimeDep, actor: ActorDep) -> Response:
    _require_scope(actor, Permission.API_KEY_WRITE)
    async with rt.transaction() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
        await rt.keys.revoke(db, actor, row)
    return Response(status_code=204)


@router.post(
    _USER_KEYS + "/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=_ERRORS,
)
async def rotate_user_key(
    key_id: KeyId, rt: RuntimeDep, actor: ActorDep, body: RotateRequest | None = None
) -> dict[str, Any]:
    _require_scope(actor, Permission.API_KEY_WRITE)
    body = body or RotateRequest()
    async with rt.transaction() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
        issued = await rt.keys.rotate(db, actor, row, body.grace_seconds)
    return _created(issued)


@router.get(_USER_KEYS + "/{key_id}/usage", response_model=UsageOut, responses=_ERRORS)
async def user_key_usage(
    key_id: KeyId,
    rt: RuntimeDep,
    actor: ActorDep,
    start: Annotated[IsoDateTime | None, Query(alias="from")] = None,
    end: Annotated[IsoDateTime | None, Query(alias="to")] = None,
    group_by: UsageGroup = "hour",
) -> dict[str, Any]:
    _require_scope(actor, Permission.API_KEY_READ)
    async with rt.sessions() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
    return await _usage(rt, row, start, end, group_by)


@router.post(_USER_KEYS + "/{key_id}/reveal", response_model=RevealOut, responses=_ERRORS)
async def reveal_user_key(
    key_id: KeyId,
    request: Request,
    rt: RuntimeDep,
    actor: ActorDep,
    body: RevealRequest | None = None,
) -> dict[str, Any]:
    async with rt.sessions() as db:
        row = await rt.keys.user_key(db, _owner(actor), key_id)
    return await _reveal(request, rt, actor, body, row)
