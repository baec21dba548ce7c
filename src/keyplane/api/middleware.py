"""Request context: a request id (from X-Request-ID when sane, else new), bound into every log
line of the request, a structured access log line, and the request metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.observability import Metrics

log = structlog.get_logger("keyplane.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _SANE_ID.match(offered) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        status = 500
        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            # The template without convertors ("/users/{external_id}", not "{…:path}").
            route = getattr(scope.get("route"), "path_format", None) or "unmatched"
            error = state.get("error_code", "")
            key_id = state.get("key_id")
            if key_id is not None:  # authenticated: count it for the key's usage
                scope["app"].state.runtime.usage.record(
                    key_id,
                    state.get("permission"),
                    status,
                    time.time(),
                    state.get("client_ip"),
                    dict(scope.get("headers") or []).get(b"user-agent", b"").decode("latin-1"),
                )
            self.metrics.requests.labels(scope["method"], route, str(status), error).inc()
            self.metrics.request_seconds.labels(route).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],  # never the query string: it is the client's business
                status=status,
                error=error or None,
                key_id=key_id,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")
