"""Receiving keyplane webhooks: check the signature over the raw body before trusting it.

    from keyplane.sdk import parse_webhook
    event = parse_webhook(secret, request.headers["X-Keyplane-Signature"], raw_body)
    if event["event"] == "user.updated": ...

`verify_webhook_signature` is keyplane.webhooks.verify_signature (the same code the server
signs with): HMAC-SHA256 under the subscription's secret over "<timestamp>.<body>", with the
timestamp within `tolerance` seconds so that a captured delivery cannot be replayed later."""

from __future__ import annotations

import json
from typing import Any

from keyplane.webhooks import DEFAULT_TOLERANCE, SIGNATURE_HEADER
from keyplane.webhooks import verify_signature as verify_webhook_signature


class WebhookSignatureError(ValueError):
    """The delivery's signature does not match the secret, or it is too old: answer 400 and
    do not act on it."""


def parse_webhook(
    secret: str, header: str | None, body: bytes | str, tolerance: int = DEFAULT_TOLERANCE
) -> dict[str, Any]:
    """The event of a verified delivery: {event, project_id, mode, created_at, data}."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if not verify_webhook_signature(secret, header, raw, tolerance):
        raise WebhookSignatureError(
            f"The {SIGNATURE_HEADER} header does not sign this body with this secret (or is "
            f"older than {tolerance} seconds); pass the raw request body, unparsed."
        )
    event: dict[str, Any] = json.loads(raw)
    return event


__all__ = ["WebhookSignatureError", "parse_webhook", "verify_webhook_signature"]
