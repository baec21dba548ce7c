"""Dashboard sign-in over JSON (the dashboard's forms use the same service)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyplane.api.deps import SESSION_COOKIE, RuntimeDep, current_session
from keyplane.api.schemas import Login, Reauthenticate, SessionOut, errors_doc
from keyplane.domain.errors import MissingAuthorization
from keyplane.services import sessions

router = APIRouter(prefix="/v1/session", tags=["session"])


@router.post("", response_model=SessionOut, responses=errors_doc(401, 422))
async def login(body: Login, response: Response, rt: RuntimeDep) -> SessionOut:
    async with rt.transaction() as db:
        token, signed_in = await sessions.login(db, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=rt.settings.session_cookie_secure,
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
    )
    return SessionOut(user_id=signed_in.user_id, csrf_token=signed_in.csrf_token)


@router.post("/reauthenticate", response_model=SessionOut, responses=errors_doc(401, 422))
async def reauthenticate(body: Reauthenticate, request: Request, rt: RuntimeDep) -> SessionOut:
    """Confirm the password again; revealing a secret needs this within the last 5 minutes."""
    found = await current_session(request)
    if found is None:
        raise MissingAuthorization("Sign in first.")
    async with rt.transaction() as db:
        signed_in = await sessions.reauthenticate(db, found[0], body.password)
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
