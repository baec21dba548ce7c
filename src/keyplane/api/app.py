"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from keyplane import __version__, dashboard
from keyplane.api import errors
from keyplane.api.cors import Cors
from keyplane.api.limits import BodyLimit
from keyplane.api.middleware import RequestContext
from keyplane.api.ratelimit_headers import RateLimitHeaders
from keyplane.api.routers import (
    alerts,
    api_keys,
    conversations,
    custom_permissions,
    data_providers,
    deployments,
    exports,
    files,
    key_verification,
    labels,
    operations,
    permissions,
    projects,
    secret_scanning,
    sessions,
    snippets,
    tables,
    topics,
    unkey,
    users,
    webhooks,
)
from keyplane.api.routers import metrics as metrics_api
from keyplane.api.schemas import errors_doc
from keyplane.observability import Metrics, configure_logging
from keyplane.runtime import Runtime
from keyplane.settings import Settings

DESCRIPTION = """API keys for multi-project AI-agent platforms.

Authenticate with `Authorization: Bearer sk_live_…`. Every error is JSON
`{"error": "<code>", "message": "…"}`; see DESIGN §4 for the codes."""


def create_app(runtime: Runtime | None = None, settings: Settings | None = None) -> FastAPI:
    """The app. With `runtime` given (tests, embedding) the caller owns its lifecycle;
    otherwise the app starts one from `settings` on startup and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        started = await Runtime.start(settings or Settings())
        app.state.runtime = started
        metrics.watch(started)
        try:
            yield
        finally:
            await started.close()

    app = FastAPI(title="keyplane", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    metrics = Metrics()
    app.state.metrics = metrics
    if runtime is not None:
        app.state.runtime = runtime
        metrics.watch(runtime)
    errors.install(app)
    platform = (
        conversations,
        users,
        labels,
        topics,
        snippets,
        data_providers,
        tables,
        files,
        metrics_api,
        deployments,
        exports,
    )
    security = (alerts, webhooks, secret_scanning)
    verification = (key_verification, unkey, custom_permissions)
    for module in (
        permissions,
        projects,
        *platform,
        api_keys,
        *verification,
        *security,
        sessions,
        operations,
    ):
        # Any endpoint may answer these, whatever its own errors: unreadable or oversized
        # bodies, and the rate limit.
        app.include_router(module.router, responses=errors_doc(400, 413, 422, 429))

    dashboard.install(app)  # after errors.install: it wraps the JSON error handler for its pages

    configured = runtime.settings if runtime else settings or Settings()
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(Cors)
    app.add_middleware(
        BodyLimit,
        max_bytes=configured.max_body_bytes,
        # File uploads may be larger: the file's own limit plus room for the multipart framing.
        upload_bytes=configured.max_file_bytes + 64 * 1024,
    )
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: sees every response
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and `keyplane serve --workers N`."""
    settings = Settings()
    configure_logging(json_format=settings.log_format == "json")
    return create_app(settings=settings)
