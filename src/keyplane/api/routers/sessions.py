"""Dashboard sign-in over JSON (the dashboard's forms use the same service)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyplane.api.deps import (
    SESSION_COOKIE,
    RuntimeDep,
    current_session,
    login_guard,
    set_signed_in_cookies,
)
from keyplane.api.schemas import Login, Reauthenticate, SessionOut, errors_doc
from keyplane.domain.errors import MissingAuthorization
from keyplane.services import sessions

router = APIRouter(prefix="/v1/session", tags=["session"])


@router.post("", response_model=SessionOut, responses=errors_doc(401, 403, 422, 429))
async def login(body: Login, request: Request, response: Response, rt: RuntimeDep) -> SessionOut:
    """Sign in. Repeated wrong passwords for one email lock it out for a while: 429
    login_locked with `retry_after` seconds. Members of an organization that signs in with
    SSO only get 403 password_login_disabled (after a correct password)."""
    started = await sessions.sign_in(
        rt.transaction, body.email, body.password, login_guard(request)
    )
    set_signed_in_cookies(request, response, started)
    return SessionOut(user_id=started.signed_in.user_id, csrf_token=started.signed_in.csrf_token)


@router.post("/reauthenticate", response_model=SessionOut, responses=errors_doc(401, 403, 422, 429))
async def reauthenticate(body: Reauthenticate, request: Request, rt: RuntimeDep) -> SessionOut:
    """Confirm the password again; revealing a secret needs this within the last 5 minutes."""
    found = await current_session(request)
    if found is None:
        raise MissingAuthorization("Sign in first.")
    signed_in = await sessions.confirm_password(
        rt.transaction, found[0], body.password, login_guard(request)
    )
    return SessionOut(user_id=signed_in.user_id, csrf_token=signed_in.csrf_token)


@router.delete("", status_code=204)
async def logout(request: Request, rt: RuntimeDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with rt.transaction() as db:
            await sessions.logout(db, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response
