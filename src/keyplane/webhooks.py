"""Signing and verifying keyplane webhooks. Receivers can import this module (or copy it: it
needs only the standard library).

Every delivery carries `X-Keyplane-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 keyed with the endpoint's signing secret over `f"{t}.{body}"`. Check it with

    from keyplane.webhooks import verify_signature
    if not verify_signature(secret, request.headers["X-Keyplane-Signature"], raw_body):
        return 400

The timestamp is signed too, so a captured delivery cannot be replayed after `tolerance`
seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Keyplane-Signature"
EVENT_HEADER = "X-Keyplane-Event"
DELIVERY_HEADER = "X-Keyplane-Delivery"
DEFAULT_TOLERANCE = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for `body`, sent at `timestamp` (now by default)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when `header` is a signature of `body` under `secret` made within `tolerance`
    seconds of `now`. Several `v1=` values are accepted (any may match), so that a sender
    can sign with an old and a new secret during a secret rotation."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
