"""Protect your own API with keyplane keys (issue 10): an ASGI middleware and a
FastAPI/Starlette dependency that verify the request's key, check one permission and the rate
limit, and hand the key's identity to the handler.

Two ways to run it:

- `Keyplane.from_env()` / `Keyplane.local(settings)`: in-process, against the same database
  and Redis as the keyplane server. No network hop; the same verified-key cache, rate limiter
  and change feed as the server, so a revocation is seen on the very next request (with
  Redis) or within the change feed's poll (without).
- `Keyplane.remote(url, root_key)`: through a keyplane server's POST /v1/keys/verify with a
  user key holding api_key:read. Valid answers are cached for `cache_seconds` (1 s by
  default) and serve at most the `remaining` requests the server granted; invalid answers are
  never cached, so a refusal is immediate. A revocation reaches a remote verifier within
  `cache_seconds`; cached requests reach the server's usage counts only through later ones.

    keyplane = Keyplane.from_env()
    app = FastAPI()
    keyplane.install(app)

    @app.get("/invoices")
    async def invoices(key: Identity = Depends(keyplane.require("invoices:read"))) -> dict:
        return {"project": key.project_id}

Refusals are keyplane's JSON errors (DESIGN §4) with its status codes and headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.adapters.memory.lru import LRUCache
from keyplane.api.errors import STATUS, error_response
from keyplane.domain.errors import KeyplaneError
from keyplane.domain.keys import bearer_token
from keyplane.domain.permission_query import Query, single
from keyplane.runtime import Runtime
from keyplane.settings import Settings

__all__ = ["Identity", "Keyplane", "KeyplaneMiddleware", "RateLimit", "Rejected"]

_STATUS_BY_CODE = {cls.code: status for cls, status in STATUS.items()}
# A named tuple's constructor is Python code; building from a complete tuple skips it. An
# Identity and a RateLimit are built on every verified request.
_new_tuple = tuple.__new__
_RATELIMIT_NAMES = frozenset((b"x-ratelimit-limit", b"x-ratelimit-remaining", b"x-ratelimit-reset"))


class RateLimit(NamedTuple):
    limit: int
    remaining: int
    reset: int  # unix seconds when `remaining` is back at `limit`

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


class Identity(NamedTuple):
    """Who is calling: the verified key, its project and what it may do there. (A tuple:
    one is built for every request.)"""

    key_id: str
    kind: str  # "project" or "user"
    project_id: int | None
    mode: str  # "live" or "test"
    permissions: frozenset[str]
    ratelimit: RateLimit | None = None

    def has(self, permission: str) -> bool:
        return permission in self.permissions


class Rejected(HTTPException):
    """A refused request, answered with keyplane's JSON error body by `Keyplane.install`'s
    handler and by the middleware (plain Starlette answers `{"detail": message}`)."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str],
        ratelimit: RateLimit | None = None,
    ) -> None:
        if ratelimit is not None:
            headers = {**headers, **ratelimit.headers()}
        super().__init__(status, detail=str(body.get("message", "")), headers=headers)
        self.body = body

    @classmethod
    def of(cls, error: KeyplaneError, ratelimit: RateLimit | None = None) -> Rejected:
        response = error_response(error)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        body = {"error": error.code, "message": error.message, **error.extra}
        headers.pop("content-type", None)
        return cls(response.status_code, body, headers, ratelimit)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status_code, headers=self.headers)


Verify = Callable[
    [str | None, Query | None, int | None, str | None, str | None], Awaitable[Identity]
]


@lru_cache(maxsize=256)
def _query(permission: str | None) -> Query | None:
    return None if permission is None else single(permission)


class Keyplane:
    """A key verifier for your API; build it with `local`, `from_env` or `remote`."""

    def __init__(
        self,
        verify: Verify,
        start: Callable[[], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._verify = verify
        self._start = start
        self._close = close

    # --- constructors --------------------------------------------------------------------
    @classmethod
    def from_env(cls) -> Keyplane:
        """In-process, configured like `keyplane serve` (KEYPLANE_DATABASE_URL, …)."""
        return cls.local()

    @classmethod
    def local(cls, settings: Settings | None = None, *, runtime: Runtime | None = None) -> Keyplane:
        """In-process against keyplane's database and Redis. With `runtime` given (a running
        keyplane in this process) it is used as is and not closed."""
        return _Local(settings, runtime).keyplane()

    @classmethod
    def remote(
        cls,
        url: str,
        root_key: str,
        *,
        cache_seconds: float = 1.0,
        timeout: float = 5.0,
        cache_size: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Keyplane:
        """Through a keyplane server (POST /v1/keys/verify) with a user key holding
        api_key:read."""
        return _Remote(url, root_key, cache_seconds, timeout, cache_size, transport).keyplane()

    # --- use -----------------------------------------------------------------------------
    async def verify(
        self,
        authorization: str | None,
        *,
        permission: str | None = None,
        project_id: int | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> Identity:
        """The identity behind an Authorization header; raises Rejected."""
        return await self._verify(
            authorization, _query(permission), project_id, client_ip, user_agent
        )

    def require(self, permission: str | None = None) -> Callable[..., Awaitable[Identity]]:
        """A FastAPI dependency: `key: Identity = Depends(keyplane.require("invoices:read"))`.
        Puts the rate-limit headers on the response."""
        query = _query(permission)

        async def dependency(request: Request, response: Response) -> Identity:
            # Straight from the ASGI scope: `request.headers` and `request.client` build
            # objects, and `response.headers.update` re-encodes and searches every name, which
            # together cost more than the verification itself.
            scope = request.scope
            authorization = user_agent = None
            for name, value in scope["headers"]:  # the first of each, as request.headers
                if name == b"authorization":
                    if authorization is None:
                        authorization = value.decode("latin-1")
                elif name == b"user-agent" and user_agent is None:
                    user_agent = value.decode("latin-1")
            client = scope.get("client")
            identity = await self._verify(
                authorization, query, None, client[0] if client else None, user_agent
            )
            if identity.ratelimit is not None:
                raw = response.raw_headers
                if raw and any(name in _RATELIMIT_NAMES for name, _ in raw):  # set twice
                    raw[:] = [h for h in raw if h[0] not in _RATELIMIT_NAMES]
                raw += identity.ratelimit.raw_headers()
            return identity

        return dependency

    def install(self, app: Any) -> None:
        """Answer refusals with keyplane's error bodies, and start and stop the verifier with
        the app (a FastAPI or Starlette application)."""

        async def handler(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, Rejected)
            return exc.response()

        app.add_exception_handler(Rejected, handler)
        original = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(target: Any) -> AsyncIterator[Any]:
            await self._start()
            try:
                async with original(target) as state:
                    yield state
            finally:
                await self._close()

        app.router.lifespan_context = lifespan

    async def start(self) -> None:
        await self._start()

    async def close(self) -> None:
        await self._close()


class KeyplaneMiddleware:
    """ASGI middleware: every HTTP request must carry a key holding `permission` (when
    given); the identity is left in `request.state.keyplane`. Paths in `exclude` (exact, or
    prefixes ending in '/') pass unchecked."""

    def __init__(
        self,
        app: ASGIApp,
        keyplane: Keyplane,
        permission: str | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.keyplane = keyplane
        self.query = _query(permission)
        self.exact = frozenset(p for p in exclude if not p.endswith("/"))
        self.prefixes = tuple(p for p in exclude if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in self.exact or (self.prefixes and path.startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return
        authorization = user_agent = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
        client = scope.get("client")
        try:
            identity = await self.keyplane._verify(
                authorization, self.query, None, client[0] if client else None, user_agent
            )
        except Rejected as rejected:
            await rejected.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["keyplane"] = identity
        if identity.ratelimit is None:
            await self.app(scope, receive, send)
            return
        extra = identity.ratelimit.raw_headers()

        # A plain function handing back send's awaitable: no coroutine of its own for each
        # message.
        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                message["headers"] = (
                    headers + extra if type(headers) is list else [*(headers or ()), *extra]
                )
            return send(message)

        await self.app(scope, receive, send_with_headers)


# --- in-process ------------------------------------------------------------------------------
class _Local:
    def __init__(self, settings: Settings | None, runtime: Runtime | None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.owned = runtime is None
        self.lock = asyncio.Lock()

    def keyplane(self) -> Keyplane:
        return Keyplane(self.verify, self.begin, self.close)

    async def begin(self) -> None:
        await self.start()

    async def start(self) -> Runtime:
        if self.runtime is not None:
            return self.runtime
        async with self.lock:
            if self.runtime is None:
                # The server migrates its database; a library never does. Only the change
                # feed (cache invalidation, usage flushes) runs here: webhooks, anomaly
                # detection and the like are the server's business.
                runtime = await Runtime.start(
                    self.settings or Settings(), migrate=False, background=False
                )
                await runtime.changes.start()
                self.runtime = runtime
        return self.runtime

    async def close(self) -> None:
        if self.owned and self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            await runtime.close()

    async def verify(
        self,
        authorization: str | None,
        query: Query | None,
        project_id: int | None,
        client_ip: str | None,
        user_agent: str | None,
    ) -> Identity:
        rt = self.runtime or await self.start()
        try:
            key, target, held, decision, error = await rt.verifier.check(
                bearer_token(authorization),
                client_ip=client_ip,
                project_id=project_id,
                query=query,
                user_agent=user_agent,
            )
        except KeyplaneError as failure:
            raise Rejected.of(failure) from None
        ratelimit: RateLimit | None = (
            None
            if decision is None
            else _new_tuple(
                RateLimit, (decision.limit, decision.remaining, -(-decision.reset_ms // 1000))
            )
        )
        rt.usage.record(
            key.id,
            None if query is None else query.name if query.op is None else str(query),
            200 if error is None else _STATUS_BY_CODE.get(error.code, 400),
            time.time(),
            client_ip,
            user_agent,
        )
        if error is not None:
            raise Rejected.of(error, ratelimit)
        identity: Identity = _new_tuple(
            Identity, (key.id, key.kind, target, key.mode, held, ratelimit)
        )
        return identity


# --- through a keyplane server ---------------------------------------------------------------
@dataclass
class _Cached:
    identity: Identity
    until: float  # monotonic
    remaining: int


class _Remote:
    def __init__(
        self,
        url: str,
        root_key: str,
        cache_seconds: float,
        timeout: float,
        cache_size: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/keys/verify"
        self.headers = {"Authorization": f"Bearer {root_key}"}
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.transport = transport
        self.cache: LRUCache[tuple[str, str | None, int | None, str | None], _Cached] = LRUCache(
            cache_size
        )
        self.client: httpx.AsyncClient | None = None

    def keyplane(self) -> Keyplane:
        return Keyplane(self.verify, self.start, self.close)

    async def start(self) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.timeout, transport=self.transport)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def verify(
        self,
        authorization: str | None,
        query: Query | None,
        project_id: int | None,
        client_ip: str | None,
        user_agent: str | None,
    ) -> Identity:
        try:
            token = bearer_token(authorization)
        except KeyplaneError as error:
            raise Rejected.of(error) from None
        permission = None if query is None else str(query)
        slot = (token, permission, project_id, client_ip)
        cached = self.cache.get(slot)
        if cached is not None and cached.remaining > 0 and time.monotonic() < cached.until:
            cached.remaining -= 1
            limit = cached.identity.ratelimit
            if limit is None:
                return cached.identity
            return cached.identity._replace(ratelimit=limit._replace(remaining=cached.remaining))
        body = await self._ask(token, permission, project_id, client_ip)
        limit = body.get("ratelimit")
        ratelimit = RateLimit(**limit) if isinstance(limit, dict) else None
        if not body.get("valid"):
            self.cache.evict_where(lambda s, _c: s == slot)
            code = str(body.get("code", "invalid_api_key"))
            extra: dict[str, Any] = {k: body[k] for k in ("required", "retry_after") if k in body}
            error_body = {"error": code, "message": str(body.get("message", "")), **extra}
            raise Rejected(
                _STATUS_BY_CODE.get(code, 401), error_body, _headers_for(code, extra), ratelimit
            )
        identity = Identity(
            key_id=str(body["key_id"]),
            kind=str(body["kind"]),
            project_id=body.get("project_id"),
            mode=str(body["mode"]),
            permissions=frozenset(body.get("permissions") or ()),
            ratelimit=ratelimit,
        )
        if self.cache_seconds > 0:
            remaining = ratelimit.remaining if ratelimit is not None else 1_000_000
            self.cache.put(
                slot, _Cached(identity, time.monotonic() + self.cache_seconds, remaining)
            )
        return identity

    async def _ask(
        self, token: str, permission: str | None, project_id: int | None, client_ip: str | None
    ) -> dict[str, Any]:
        if self.client is None:
            await self.start()
        assert self.client is not None
        payload: dict[str, Any] = {"key": token}
        if permission is not None:
            payload["permission"] = permission
        if project_id is not None:
            payload["project_id"] = project_id
        if client_ip is not None and _is_address(client_ip):  # not e.g. "testclient"
            payload["ip"] = client_ip
        try:
            response = await self.client.post(self.url, json=payload, headers=self.headers)
        except httpx.HTTPError:
            raise _unavailable("keyplane could not be reached to verify the key") from None
        if response.status_code == 422 and response.json().get("error") == "validation_error":
            detail = response.json()
            if any(d.get("loc") == ["body", "key"] for d in detail.get("details", [])):
                # The client's key itself is unusable (too long, NUL bytes): its problem.
                raise Rejected(
                    401,
                    {"error": "malformed_api_key", "message": detail["message"]},
                    _headers_for("malformed_api_key", {}),
                )
        if response.status_code != 200:
            # The verifier's own key or configuration is wrong: the operator's problem,
            # never the client's fault, and never a secret in the answer.
            raise _unavailable(
                f"keyplane refused this service's verification request ({response.status_code})"
            )
        body: dict[str, Any] = response.json()
        return body


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _headers_for(code: str, extra: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if _STATUS_BY_CODE.get(code) == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="keyplane", error="invalid_token"'
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return headers


def _unavailable(message: str) -> Rejected:
    return Rejected(
        503,
        {"error": "verifier_unavailable", "message": message + "; retry shortly."},
        {"Retry-After": "1"},
    )
