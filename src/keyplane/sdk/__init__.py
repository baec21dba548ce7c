"""The keyplane Python SDK: `Client` (sync) and `AsyncClient` (async), httpx-based.

    from keyplane.sdk import Client
    client = Client(api_key="sk_live_…", project_id=123, base_url="http://127.0.0.1:8000")
    page = client.conversations.list(limit=50, status="unresolved")

Without arguments the client reads KEYPLANE_API_KEY / BOTBRAINS_API_KEY,
KEYPLANE_PROJECT_ID / BOTBRAINS_PROJECT_ID and KEYPLANE_BASE_URL."""

from keyplane.sdk import errors, models
from keyplane.sdk.async_client import AsyncClient
from keyplane.sdk.client import Client
from keyplane.sdk.errors import (
    AuthenticationError,
    InsufficientPermissions,
    KeyplaneError,
    NotFound,
    PermissionDenied,
    RateLimitExceeded,
    ValidationError,
)
from keyplane.sdk.webhooks import WebhookSignatureError, parse_webhook, verify_webhook_signature

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "InsufficientPermissions",
    "KeyplaneError",
    "NotFound",
    "PermissionDenied",
    "RateLimitExceeded",
    "ValidationError",
    "WebhookSignatureError",
    "errors",
    "models",
    "parse_webhook",
    "verify_webhook_signature",
]
