"""Unkey's v2 key verification API on keyplane (issue 10): `POST /v2/keys.verifyKey` with
Unkey's request and response shapes, so that a service using the `unkey-py` client switches to
a self-hosted keyplane by changing only its server URL. The root key is a keyplane user key
with api_key:read; Unkey keyspaces are keyplane project ids.

Codes: VALID; NOT_FOUND (unknown, malformed or out-of-reach keys); DISABLED (revoked);
EXPIRED; INSUFFICIENT_PERMISSIONS; RATE_LIMITED; FORBIDDEN (project mismatch, IP allowlist,
refused test key). Unkey's `credits` and named `ratelimits` have no keyplane counterpart and
are ignored: the key's own keyplane limits always apply.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from keyplane.api.deps import RuntimeDep
from keyplane.api.errors import status_of
from keyplane.api.routers.key_verification import record_usage, verifying_key
from keyplane.api.schemas import Storable
from keyplane.domain import errors as e
from keyplane.domain.permission_query import parse
from keyplane.services import key_verification as kv

router = APIRouter(tags=["unkey compatibility"])

_CODES: dict[str, str] = {
    kv.VALID: "VALID",
    e.InvalidApiKey.code: "NOT_FOUND",
    e.MalformedApiKey.code: "NOT_FOUND",
    e.ApiKeyRevoked.code: "DISABLED",
    e.ApiKeyExpired.code: "EXPIRED",
    e.InsufficientPermissions.code: "INSUFFICIENT_PERMISSIONS",
    e.RateLimitExceeded.code: "RATE_LIMITED",
}


class UnkeyVerifyRequest(BaseModel):
    # Unkey's clients send fields keyplane does not use (tags, credits, ratelimits…):
    # accepted and ignored, as a newer Unkey client's additions would be.
    model_config = ConfigDict(extra="allow")
    key: Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
    permissions: (
        Annotated[str, StringConstraints(min_length=1, max_length=1000), Storable] | None
    ) = None
    keyspaces: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None, max_length=100, description="keyplane project ids"
    )


class UnkeyMeta(BaseModel):
    requestId: str


class UnkeyRatelimit(BaseModel):
    exceeded: bool
    id: str
    name: str
    limit: int
    duration: int
    reset: int
    remaining: int
    autoApply: bool


class UnkeyVerifyData(BaseModel):
    valid: bool
    code: str
    keyId: str | None = None
    keyspaceId: str | None = None
    expires: int | None = None
    enabled: bool | None = None
    permissions: list[str] | None = None
    ratelimits: list[UnkeyRatelimit] | None = None


class UnkeyVerifyResponse(BaseModel):
    meta: UnkeyMeta
    data: UnkeyVerifyData


class UnkeyProblem(BaseModel):
    title: str
    detail: str
    status: int
    type: str
    model_config = ConfigDict(extra="allow")


class UnkeyErrorResponse(BaseModel):
    meta: UnkeyMeta
    error: UnkeyProblem


def _request_id(request: Request) -> str:
    return "req_" + uuid.uuid4().hex


def _error(request: Request, error: e.KeyplaneError) -> JSONResponse:
    """Unkey's error body (RFC 7807 inside `error`) for the caller's own failures."""
    status = 400 if isinstance(error, e.ValidationFailed) else status_of(error)
    request.state.error_code = error.code
    headers = (
        {"Retry-After": str(error.extra["retry_after"])} if "retry_after" in error.extra else {}
    )
    problem: dict[str, Any] = {
        "title": error.code.replace("_", " ").capitalize(),
        "detail": error.message,
        "status": status,
        "type": f"https://keyplane.dev/errors/{error.code}",
    }
    if status == 400:  # Unkey's bad-request body lists what is wrong, and where
        problem["errors"] = [
            {
                "location": "body." + ".".join(str(p) for p in d.get("loc", []) if p != "body"),
                "message": str(d.get("msg", error.message)),
            }
            for d in error.extra.get("details", [])
        ] or [{"location": "body", "message": error.message}]
    return JSONResponse(
        {"meta": {"requestId": _request_id(request)}, "error": problem},
        status_code=status,
        headers=headers,
    )


def _projects(keyspaces: list[str] | None) -> frozenset[int] | None:
    if keyspaces is None:
        return None
    return frozenset(int(k) for k in keyspaces if k.isascii() and k.isdigit() and len(k) < 19)


def _data(outcome: kv.Outcome) -> dict[str, Any]:
    code = _CODES.get(outcome.code, "FORBIDDEN")
    data: dict[str, Any] = {"valid": outcome.valid, "code": code}
    check = outcome.check
    if check is None or code == "NOT_FOUND":
        return data
    key = check.key
    data["keyId"] = key.id
    if check.project_id is not None:
        data["keyspaceId"] = str(check.project_id)
    if key.expires_at is not None:
        data["expires"] = int(key.expires_at * 1000)
    data["enabled"] = code != "DISABLED"
    data["permissions"] = sorted(check.permissions)
    decision = check.decision
    if decision is not None:
        data["ratelimits"] = [
            {
                "exceeded": not decision.allowed,
                "id": f"rl_{key.id}",
                "name": "requests",
                "limit": decision.limit,
                "duration": 60_000,
                "reset": decision.reset_ms,
                "remaining": decision.remaining,
                "autoApply": True,
            }
        ]
    return data


@router.post(
    "/v2/keys.verifyKey",
    response_model=UnkeyVerifyResponse,
    responses={s: {"model": UnkeyErrorResponse} for s in (400, 401, 403, 429)},
)
async def verify_key(request: Request, body: UnkeyVerifyRequest, rt: RuntimeDep) -> JSONResponse:
    """Unkey v2 `keys.verifyKey`: 200 with `{meta, data: {valid, code, keyId, …}}` for every
    verification outcome; the root key's own problems in Unkey's error shape."""
    try:
        caller = await verifying_key(request, rt)
        query = parse(body.permissions) if body.permissions else None
        await kv.check_names(rt.verifier, caller.org_id, query)
    except e.KeyplaneError as error:
        return _error(request, error)
    outcome = await kv.verify_for(
        rt.verifier,
        caller,
        body.key,
        query=query,
        project_id=None,
        client_ip=None,
        projects=_projects(body.keyspaces),
    )
    record_usage(rt, request, outcome, str(query) if query else None)
    return JSONResponse({"meta": {"requestId": _request_id(request)}, "data": _data(outcome)})
