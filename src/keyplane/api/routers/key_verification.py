"""POST /v1/keys/verify: keyplane keys for any API (issue 10)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from keyplane.api.deps import RuntimeDep, client_ip, observe
from keyplane.api.errors import status_of
from keyplane.api.schemas import errors_doc
from keyplane.api.schemas_verify import VerifyKeyRequest, VerifyKeyResponse
from keyplane.domain.keys import VerifiedKey
from keyplane.domain.permission_query import Query, single
from keyplane.runtime import Runtime
from keyplane.services import key_verification as kv

router = APIRouter(tags=["key verification"])


async def verifying_key(request: Request, rt: Runtime) -> VerifiedKey:
    """The calling service's own key: counted and rate limited like any request."""
    ip = client_ip(request, rt.settings.trusted_proxies)
    request.state.client_ip = ip
    started = time.perf_counter()
    admission = await rt.verifier.admit(
        request.headers.get("authorization"), ip, None, None, request.headers.get("user-agent")
    )
    observe(request, admission, time.perf_counter() - started)
    admission.enforce()
    kv.require_verifier_key(admission.key)
    return admission.key


def record_usage(rt: Runtime, request: Request, outcome: kv.Outcome, label: str | None) -> None:
    """The verified key's own usage: a verification is a request made with that key."""
    if outcome.check is None:
        return
    status = 200 if outcome.error is None else status_of(outcome.error)
    rt.usage.record(
        outcome.check.key.id,
        label,
        status,
        time.time(),
        getattr(request.state, "verified_ip", None),
        request.headers.get("user-agent"),
    )


@router.post(
    "/v1/keys/verify",
    response_model=VerifyKeyResponse,
    responses=errors_doc(401, 403, 422),
)
async def verify_key(request: Request, body: VerifyKeyRequest, rt: RuntimeDep) -> dict[str, object]:
    """Verify a keyplane key for your own API: validity, one permission, the rate limit.

    Authenticate with a user key holding api_key:read. Answers 200 whatever the outcome:
    read `valid` and `code` (VALID or an error code of DESIGN §4). Keys outside your reach
    are answered as not existing (invalid_api_key)."""
    caller = await verifying_key(request, rt)
    query: Query | None = single(body.permission) if body.permission else None
    await kv.check_names(rt.verifier, caller.org_id, query)
    request.state.verified_ip = body.ip
    outcome = await kv.verify_for(
        rt.verifier,
        caller,
        body.key,
        query=query,
        project_id=body.project_id,
        client_ip=body.ip,
    )
    record_usage(rt, request, outcome, str(query) if query else None)
    return outcome.to_json()
