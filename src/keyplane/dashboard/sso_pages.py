"""SSO sign-in pages and the organization's SSO and branding settings (issue 12).

`/dashboard/sso/{org_id}` is an organization's own (branded) sign-in page; its button starts
the OpenID Connect flow, and the provider sends the browser back to `/dashboard/sso/callback`.
A cookie holds the flow's state, so that only the browser that started a sign-in can finish
it. Every failure shows the sign-in page again with what went wrong (never a 500)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from keyplane.api.deps import runtime, set_signed_in_cookies
from keyplane.api.errors import status_of
from keyplane.dashboard.auth_pages import ORG_COOKIE, login_page
from keyplane.dashboard.web import (
    PREFIX,
    REFUSALS,
    Field,
    Id,
    Viewer,
    ViewerDep,
    check_form_csrf,
    org_name,
    render,
    run_change,
    safe_next,
)
from keyplane.domain.errors import SsoFailed
from keyplane.domain.permissions import Permission
from keyplane.domain.roles import ProjectRole
from keyplane.services import branding, members, sessions, sso
from keyplane.services.login_throttle import TrustedDevices

log = structlog.get_logger(__name__)
router = APIRouter(prefix=PREFIX, include_in_schema=False)
STATE_COOKIE = "keyplane_oidc_state"
CALLBACK = f"{PREFIX}/sso/callback"


def redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back; register it with the provider."""
    return str(request.base_url).rstrip("/") + CALLBACK


@router.get("/brand/{org_id}.css")
async def brand_css(request: Request, org_id: Id) -> Response:
    """The organization's colour as a stylesheet (the pages allow no inline styles)."""
    async with runtime(request).sessions() as db:
        brand = await branding.get(db, org_id)
    colour = brand.color if brand is not None and brand.color else None
    css = f":root {{ --accent: {colour}; --accent-dark: {colour}; }}\n" if colour else ""
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/sso/callback")
async def callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    rt = runtime(request)
    try:
        if error:
            log.warning("sso.provider_error", error=error[:100])
            detail = f": {error_description[:200]}" if error_description else ""
            raise SsoFailed(
                f"The identity provider did not sign you in ({error[:100]}{detail}); try again "
                "or ask your administrator."
            )
        user_id, _org_id, target = await rt.oidc.finish(
            rt.transaction,
            rt.keyring,
            state=state[:200],
            code=code[:2000],
            browser_state=request.cookies.get(STATE_COOKIE),
            redirect_uri=redirect_uri(request),
        )
        async with rt.transaction() as db:
            started = await sessions.start_after_sso(db, user_id, TrustedDevices(rt.keyring))
    except SsoFailed as failure:
        # The state cookie stays: a forged callback must not spoil a sign-in under way (the
        # state is single use and expires with the cookie anyway).
        return await login_page(request, next_path=PREFIX, error=failure.message, status=400)
    response = RedirectResponse(safe_next(target), status_code=303)
    set_signed_in_cookies(request, response, started)
    response.delete_cookie(STATE_COOKIE, path=f"{PREFIX}/sso")
    return response


@router.get("/sso/{org_id}")
async def org_login(request: Request, org_id: Id, next: str | None = None) -> Response:
    response = await login_page(
        request, next_path=safe_next(next), status=200, org_id=org_id, always_password=False
    )
    response.set_cookie(
        ORG_COOKIE, str(org_id), httponly=True, samesite="lax", max_age=400 * 86400, path=PREFIX
    )
    return response


@router.get("/sso/{org_id}/start")
async def start(request: Request, org_id: Id, next: str | None = None) -> Response:
    target = safe_next(next)
    rt = runtime(request)
    try:
        async with rt.transaction() as db:
            url, state = await rt.oidc.start(db, org_id, redirect_uri(request), target)
    except SsoFailed as error:
        return await login_page(
            request,
            next_path=target,
            error=error.message,
            status=400,
            org_id=org_id,
            always_password=False,
        )
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider's redirect back is a top-level navigation from another site.
    response.set_cookie(
        STATE_COOKIE,
        state,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(sso.LOGIN_LIFETIME.total_seconds()),
        path=f"{PREFIX}/sso",
    )
    return response


# --- settings --------------------------------------------------------------------------------
NOTICES = {
    "sso": "SSO settings saved. Sign in through your organization's page to try them.",
    "sso-removed": "SSO removed; members sign in with their passwords.",
    "brand": "Branding saved.",
}


async def _settings(
    request: Request, me: Viewer, org_id: int, *, error: str | None = None, status: int = 200
) -> Response:
    name = org_name(me, org_id)
    async with runtime(request).sessions() as db:
        await members.require(db, me.user_id, org_id, Permission.ORG_WRITE)
        config = await sso.get_config(db, org_id)
        brand = await branding.get(db, org_id)
    return render(
        request,
        "org_settings.html",
        {
            "section": "org-settings",
            "org_id": org_id,
            "org_name": name,
            "sso": config,
            "branding": brand,
            "redirect_uri": redirect_uri(request),
            "login_url": str(request.base_url).rstrip("/") + f"{PREFIX}/sso/{org_id}",
            "project_roles": list(ProjectRole),
            "notice": None if error else NOTICES.get(request.query_params.get("done", "")),
            "error": error,
        },
        status_code=status,
        me=me,
    )


@router.get("/orgs/{org_id}/settings")
async def settings_page(request: Request, me: ViewerDep, org_id: Id) -> Response:
    return await _settings(request, me, org_id)


@router.post("/orgs/{org_id}/settings/sso")
async def save_sso(
    request: Request,
    me: ViewerDep,
    org_id: Id,
    issuer: Field = "",
    client_id: Field = "",
    client_secret: Field = "",
    allowed_domains: Field = "",
    default_project_role: Field = "p_member",
    password_login: Field = "",
    jit_clients: Field = "",
    enabled: Field = "",
    remove: Field = "",
    csrf: Field = "",
) -> Response:
    check_form_csrf(me.csrf_token, csrf or None)
    rt = runtime(request)
    try:
        async with rt.transaction() as db:
            await members.require(db, me.user_id, org_id, Permission.ORG_WRITE)
            if remove:
                await sso.remove(db, org_id, me.user_id)
            else:
                await sso.configure(
                    db,
                    rt.keyring,
                    org_id,
                    issuer=issuer,
                    client_id=client_id,
                    client_secret=client_secret or None,  # empty: keep the stored one
                    allowed_domains=[allowed_domains],
                    default_project_role=default_project_role,
                    password_login=bool(password_login),
                    jit_clients=bool(jit_clients),
                    enabled=bool(enabled),
                    actor_user_id=me.user_id,
                    allow_http_loopback=rt.settings.oidc_allow_http_loopback,
                )
    except REFUSALS as refusal:
        return await _settings(
            request, me, org_id, error=refusal.message, status=status_of(refusal)
        )
    rt.oidc.forget()
    done = "sso-removed" if remove else "sso"
    return RedirectResponse(f"{PREFIX}/orgs/{org_id}/settings?done={done}", status_code=303)


@router.post("/orgs/{org_id}/settings/branding")
async def save_branding(
    request: Request,
    me: ViewerDep,
    org_id: Id,
    product_name: Field = "",
    logo_url: Field = "",
    color: Field = "",
    base_url: Field = "",
    csrf: Field = "",
) -> Response:
    async def change(db: AsyncSession) -> object:
        await members.require(db, me.user_id, org_id, Permission.ORG_WRITE)
        return await branding.configure(
            db,
            org_id,
            product_name=product_name,
            logo_url=logo_url,
            color=color,
            base_url=base_url,
            actor_user_id=me.user_id,
        )

    async def reshow(error: str, status: int) -> Response:
        return await _settings(request, me, org_id, error=error, status=status)

    done_url = f"{PREFIX}/orgs/{org_id}/settings?done=brand"
    return await run_change(request, me, csrf, change, done_url=done_url, reshow=reshow)
