"""Rate-limit headers on every authenticated response (DESIGN §5): the seed's X-RateLimit-*
trio and the IETF draft RateLimit / RateLimit-Policy structured fields."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.domain.ratelimit import Decision


def headers_for(decision: Decision, now: float | None = None) -> list[tuple[bytes, bytes]]:
    now = time.time() if now is None else now
    until_reset = max(0, decision.reset - int(now))
    policy = f'"minute";q={decision.limit};w=60, "day";q={decision.daily_limit};w=86400'
    values = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset),
        "RateLimit-Policy": policy,
        "RateLimit": f'"minute";r={decision.remaining};t={until_reset}',
    }
    return [(name.lower().encode(), value.encode()) for name, value in values.items()]


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
