"""Sign in, sign out and change the password: plain HTML forms, each with a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from keyplane.adapters.sql.models import Organization
from keyplane.api.deps import (
    SESSION_COOKIE,
    login_guard,
    runtime,
    set_device_cookie,
    set_signed_in_cookies,
)
from keyplane.api.errors import status_of
from keyplane.dashboard.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    Viewer,
    check_form_csrf,
    new_login_token,
    render,
    safe_next,
    viewer,
)
from keyplane.domain.errors import (
    CsrfFailed,
    InvalidCredentials,
    LoginLocked,
    PasswordLoginDisabled,
    ValidationFailed,
)
from keyplane.services import branding, sessions, sso

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# The organization whose sign-in page this browser used last (not a secret: it only picks
# the branding and the SSO button of the sign-in page).
ORG_COOKIE = "keyplane_org"
# Form fields are bounded so that an oversized post is a clear message, not work.
Text = Annotated[str, Form(max_length=1000)]


async def login_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status: int,
    org_id: int | None = None,
    always_password: bool = True,
) -> Response:
    """The sign-in page; for an organization (its own sign-in page) with its branding, its
    'Sign in with SSO' button, and the password form unless it switched that off."""
    token = new_login_token()
    brand = config = None
    org_name = None
    if org_id is not None:
        async with runtime(request).sessions() as db:
            org_name = await db.scalar(select(Organization.name).where(Organization.id == org_id))
            if org_name is not None:
                brand = await branding.get(db, org_id)
                config = await sso.get_config(db, org_id)
        if org_name is None:
            org_id = None
    response = render(
        request,
        "login.html",
        {
            "csrf": token,
            "next": next_path,
            "email": email,
            "error": error,
            "org_id": org_id,
            "org_name": org_name,
            "brand": brand,
            "sso_enabled": config is not None and config.enabled,
            # The generic page always offers passwords: owners keep them when an organization
            # switched them off (they are refused for everyone else after the check).
            "password_login": always_password
            or config is None
            or config.password_login
            or not config.enabled,
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600, path=PREFIX
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    # Someone who signed in on an organization's own page comes back to its branding and
    # its SSO button (e.g. when their session expires).
    remembered = request.cookies.get(ORG_COOKIE, "")
    org_id = int(remembered) if remembered.isdigit() and len(remembered) < 19 else None
    return await login_page(request, next_path=safe_next(next), status=200, org_id=org_id)


@router.post("/login")
async def login(
    request: Request,
    email: Text = "",
    password: Text = "",
    csrf: Text = "",
    next: Text = PREFIX,
    org: Text = "",
) -> Response:
    target = safe_next(next)
    org_id = int(org) if org.isdigit() and len(org) < 19 else None

    async def again(message: str, status: int) -> Response:
        return await login_page(
            request, next_path=target, email=email, error=message, status=status, org_id=org_id
        )

    try:
        check_form_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf or None)
        if not email.strip() or not password:
            raise ValidationFailed("Enter your email and your password.")
        started = await sessions.sign_in(
            runtime(request).transaction, email, password, login_guard(request)
        )
    except CsrfFailed:
        return await again("The sign-in form had expired; please sign in again.", 403)
    except (InvalidCredentials, ValidationFailed, PasswordLoginDisabled) as error:
        return await again(error.message, status_of(error))
    except LoginLocked as error:
        response = await again(error.message, 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = RedirectResponse(target, status_code=303)
    set_signed_in_cookies(request, response, started)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Text = "") -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with runtime(request).sessions() as db:
            found = await sessions.resolve(db, token)
        if found is not None:
            check_form_csrf(found.csrf_token, csrf or None)
            async with runtime(request).transaction() as db:
                await sessions.logout(db, token)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account/password")
async def password_form(request: Request, me: Annotated[Viewer, Depends(viewer)]) -> Response:
    return render(request, "password.html", {"section": "password"}, me=me)


@router.post("/account/password")
async def change_password(
    request: Request,
    me: Annotated[Viewer, Depends(viewer)],
    current_password: Text = "",
    new_password: Text = "",
    confirm_password: Text = "",
    csrf: Text = "",
) -> Response:
    check_form_csrf(me.csrf_token, csrf or None)
    try:
        if new_password != confirm_password:
            raise ValidationFailed("The new password and its confirmation differ.")
        device = await sessions.change_password(
            runtime(request).transaction,
            me.token,
            current_password,
            new_password,
            login_guard(request),
        )
    except (InvalidCredentials, ValidationFailed, LoginLocked) as error:
        response = render(
            request,
            "password.html",
            {"section": "password", "error": error.message},
            status_code=status_of(error),
            me=me,
        )
        if isinstance(error, LoginLocked):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = render(
        request,
        "password.html",
        {
            "section": "password",
            "notice": "Password changed. Other sessions were signed out, and other browsers "
            "must sign in again before they are trusted.",
        },
        me=me,
    )
    # Every earlier device cookie died with the old password; this browser keeps its trust.
    set_device_cookie(request, response, device)
    return response
