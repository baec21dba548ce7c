"""CORS for the API (issue 11). Browsers ask before sending a key cross-origin (a preflight);
it is answered for every /v1/ path so that the real request arrives and gets a readable
answer: for a test key marked for browser use its data, for any other key the
`secret_key_in_browser` refusal (see services/browser_guard.py), which the page's developer
can then read in the console instead of an opaque CORS failure. Cookies are never allowed
cross-origin (no Access-Control-Allow-Credentials), so the dashboard session is not exposed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = b"GET, POST, PUT, PATCH, DELETE"
_HEADERS = b"Authorization, Content-Type, X-Request-ID"
_EXPOSED = (
    b"X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, "
    b"RateLimit-Policy, Retry-After, X-Request-ID"
)


class Cors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allow = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *allow,
                        (b"access-control-allow-methods", _METHODS),
                        (b"access-control-allow-headers", _HEADERS),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *allow,
                    (b"access-control-expose-headers", _EXPOSED),
                ]
            await send(message)

        await self.app(scope, receive, send_allowed)
