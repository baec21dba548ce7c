"""The web dashboard (DESIGN §11): server-rendered Jinja2 pages under /dashboard, a stylesheet
and one small script, no front-end build step and nothing fetched from elsewhere."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from keyplane.api.errors import status_of
from keyplane.dashboard import (
    alert_pages,
    auth_pages,
    client_pages,
    compliance_pages,
    incident_pages,
    key_pages,
    member_pages,
    sso_pages,
)
from keyplane.dashboard.web import (
    HERE,
    PREFIX,
    SignInRequired,
    Viewer,
    login_url,
    render,
    viewer,
)
from keyplane.domain.errors import KeyplaneError


def install(app: FastAPI) -> None:
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.include_router(auth_pages.router)
    app.include_router(key_pages.router)
    app.include_router(member_pages.router)
    app.include_router(alert_pages.router)
    app.include_router(compliance_pages.router)
    app.include_router(incident_pages.router)
    app.include_router(client_pages.router)
    app.include_router(sso_pages.router)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(PREFIX, status_code=303)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    # Errors on dashboard pages are pages (with the same status and message as the API's
    # JSON body); everywhere else the API's JSON error answers.
    json_handler = app.exception_handlers[KeyplaneError]

    async def _domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KeyplaneError)
        if not request.url.path.startswith(PREFIX + "/") and request.url.path != PREFIX:
            answered = json_handler(request, exc)
            response: Response = await answered if inspect.isawaitable(answered) else answered
            return response
        request.state.error_code = exc.code
        try:  # keep the header and navigation for a signed-in person
            me: Viewer | None = await viewer(request)
        except SignInRequired:
            me = None
        return render(
            request,
            "error.html",
            {"code": exc.code, "message": exc.message, "status": status_of(exc)},
            status_code=status_of(exc),
            me=me,
        )

    app.add_exception_handler(KeyplaneError, _domain)
