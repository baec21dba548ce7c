"""A pure ASGI middleware bounding request bodies: a huge body gets a clear 413 instead of
being buffered in memory."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.domain.errors import PayloadTooLarge

# File uploads (POST /v1/projects/{id}/files) have their own, larger limit.
_UPLOAD = re.compile(r"^/v1/projects/[^/]+/files/?$")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("method") == "POST" and _UPLOAD.match(scope.get("path", ""))
        limit = self.upload_bytes if upload else self.default_bytes
        refusal = f"The request body is larger than {limit} bytes; send less per request."
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            scope.setdefault("state", {})["error_code"] = "payload_too_large"
            body = json.dumps({"error": "payload_too_large", "message": refusal}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(refusal)
            return message

        await self.app(scope, counted, send)
