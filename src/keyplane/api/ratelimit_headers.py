"""Rate-limit headers on every authenticated response (DESIGN §5): the seed's X-RateLimit-*
trio and the IETF draft RateLimit / RateLimit-Policy structured fields."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.domain.ratelimit import Decision


def headers_for(decision: Decision, now: float | None = None) -> list[tuple[bytes, bytes]]:
    """The five headers, as raw ASGI pairs (built directly: this runs on every response)."""
    now = time.time() if now is None else now
    limit, remaining, reset = decision.limit, decision.remaining, decision.reset
    until_reset = reset - int(now)
    return [
        (b"x-ratelimit-limit", b"%d" % limit),
        (b"x-ratelimit-remaining", b"%d" % remaining),
        (b"x-ratelimit-reset", b"%d" % reset),
        (
            b"ratelimit-policy",
            b'"minute";q=%d;w=60, "day";q=%d;w=86400' % (limit, decision.daily_limit),
        ),
        (b"ratelimit", b'"minute";r=%d;t=%d' % (remaining, until_reset if until_reset > 0 else 0)),
    ]


class RateLimitHeaders:
    """Adds the headers for the decision the request gate left in `request.state`, whatever
    the response: success, 4xx or 429."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = state.get("ratelimit")
                if isinstance(decision, Decision):
                    message["headers"] = [*message.get("headers", []), *headers_for(decision)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
