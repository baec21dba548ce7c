"""Request-scoped dependencies: the runtime, the caller's identity and their permission."""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from keyplane.domain.errors import (
    CsrfFailed,
    InsufficientPermissions,
    MissingAuthorization,
    ValidationFailed,
)
from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import IpNetwork, KeyKind
from keyplane.domain.permissions import Permission
from keyplane.observability import Metrics
from keyplane.runtime import Runtime
from keyplane.services import sessions
from keyplane.services.auth import Admission, Principal
from keyplane.services.browser_guard import browser_origin
from keyplane.services.keys import Actor
from keyplane.services.login_throttle import DEVICE_LIFETIME, LoginGuard, TrustedDevices
from keyplane.services.sessions import SignedIn, Started

MAX_ID = 2**63 - 1
SESSION_COOKIE = "keyplane_session"
# A browser that signed in before: its wrong passwords count against itself, not the email.
DEVICE_COOKIE = "keyplane_device"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id")]


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def _runtime_dependency(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, and that
    # hand-off cost more than the whole handler of a small request.
    return runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime_dependency)]


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def client_ip(request: Request, trusted_proxies: list[str]) -> str | None:
    """The client's address: the peer, or with trusted proxies in front the right-most
    X-Forwarded-For entry that is not itself a trusted proxy."""
    client = request.scope.get("client")  # as request.client, without building an Address
    peer: str | None = client[0] if client else None
    if not trusted_proxies or peer is None:
        return peer
    trusted = _networks(tuple(trusted_proxies))

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


def is_https(request: Request, trusted_proxies: list[str]) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a trusted proxy that
    says so with X-Forwarded-Proto (an untrusted client could claim anything)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else None
    if not trusted_proxies or peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if not any(address in net for net in _networks(tuple(trusted_proxies))):
        return False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    _set_cookie(request, response, SESSION_COOKIE, token, sessions.SESSION_LIFETIME)


def set_signed_in_cookies(request: Request, response: Response, started: Started) -> None:
    """After a sign-in: the session, and this browser as a trusted device."""
    set_session_cookie(request, response, started.token)
    set_device_cookie(request, response, started.device)


def set_device_cookie(request: Request, response: Response, device: str) -> None:
    _set_cookie(request, response, DEVICE_COOKIE, device, DEVICE_LIFETIME)


def _set_cookie(
    request: Request, response: Response, name: str, value: str, lifetime: timedelta
) -> None:
    """Sign-in cookies: never readable by scripts, not sent on cross-site subrequests, and
    Secure whenever the browser speaks HTTPS to us (or the operator forces it)."""
    settings = runtime(request).settings
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure or is_https(request, settings.trusted_proxies),
        max_age=int(lifetime.total_seconds()),
        path="/",
    )


def login_guard(request: Request) -> LoginGuard:
    """How a password typed in this request is throttled (services.login_throttle)."""
    rt = runtime(request)
    s = rt.settings
    policy = sessions.policy_from(
        s.login_max_failures, s.login_failure_window_seconds, s.login_lockout_seconds
    )
    return LoginGuard(policy, TrustedDevices(rt.keyring), request.cookies.get(DEVICE_COOKIE))


def observe(request: Request, admission: Admission, seconds: float) -> None:
    """Leave the gate's outcome for the response headers, logs and metrics."""
    # Straight into the scope's state dict, which `request.state` wraps: its attribute
    # setter is Python code, and this runs on every authenticated request.
    state = request.scope.setdefault("state", {})
    decision = state["ratelimit"] = admission.decision
    state["key_id"] = admission.key.id
    metrics: Metrics = request.app.state.metrics
    metrics.verify_seconds.observe(seconds)
    result = "unavailable" if decision is None else "allowed" if decision.allowed else "rejected"
    metrics.decisions_by_result[result].inc()


def _utf8_path(request: Request) -> None:
    """Starlette turns percent-encoded bytes that are not UTF-8 into U+FFFD; an id such as a
    user's external id or a label name must not be silently stored that way."""
    raw = request.scope.get("raw_path") or b""
    if raw.isascii() and b"%" not in raw:
        return  # nothing percent-encoded, and ASCII is UTF-8: the common case, decided here
    try:
        urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The path is not UTF-8 once percent-decoded; percent-encode UTF-8 bytes only.",
            details=[{"loc": ["path"], "msg": "not UTF-8"}],
        ) from None


async def _browser_check(
    request: Request,
    rt: Runtime,
    admission: Admission,
    project_id: int | None,
    headers: Mapping[str, str],
) -> None:
    """Refuse a key sent from a web page (before authorization: a key used there is exposed
    whatever it may do). `headers`: the gate's, from `_gate_headers`."""
    origin = browser_origin(headers)
    if origin is not None:
        await rt.browser_guard.check(
            admission.key,
            origin,
            project_id,
            request.state.client_ip,
            headers.get("user-agent"),
        )


# What the request gate reads of the headers: the key, the client's agent, and the signs of a
# browser (services/browser_guard.browser_origin).
_GATE_HEADERS = frozenset(
    (b"authorization", b"user-agent", b"origin", b"sec-fetch-site", b"sec-fetch-dest", b"referer")
)


def _gate_headers(request: Request) -> dict[str, str]:
    """The gate's headers in one pass over the raw list, the first of each name as
    `request.headers` gives it (each of its lookups is a scan of its own, and a missing
    header an exception)."""
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        if name in _GATE_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


_PROJECT_ID: TypeAdapter[int] = TypeAdapter(ProjectId)


def _path_project_id(request: Request) -> int:
    """The path's project id, validated as `ProjectId` is. Read here rather than declared as
    a parameter of the guard: the endpoint declares it too, and FastAPI validated it twice on
    every request (a tenth of what authentication cost)."""
    raw: str = request.path_params["project_id"]
    # The common case, decided exactly as pydantic would; anything else goes through it.
    if len(raw) <= 19 and raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    try:
        return _PROJECT_ID.validate_python(raw)
    except ValidationError as error:
        # As FastAPI reports a path parameter, before anything is authenticated.
        raise RequestValidationError(
            [{**detail, "loc": ("path", "project_id")} for detail in error.errors()]
        ) from None


async def _key_principal(
    request: Request, permission: Permission, project_id: int, headers: Mapping[str, str]
) -> Principal:
    """The request gate for an API key on a project: authenticate, rate-limit, refuse a key
    sent from a browser, authorize `permission`. Raises the first error. `headers`: the
    gate's, from `_gate_headers`."""
    rt = runtime(request)
    started = time.perf_counter()
    ip = client_ip(request, rt.settings.trusted_proxies)
    request.scope.setdefault("state", {})["client_ip"] = ip
    admission = await rt.verifier.admit(
        headers.get("authorization"), ip, project_id, permission, headers.get("user-agent")
    )
    observe(request, admission, time.perf_counter() - started)
    request.scope["state"]["permission"] = str(permission)
    await _browser_check(request, rt, admission, project_id, headers)
    admission.enforce()
    assert admission.principal is not None
    _utf8_path(request)
    return admission.principal


def require(permission: Permission) -> Any:
    """A dependency that authenticates the API key and checks `permission` on the path's
    project. Returns the Principal."""

    async def guard(request: Request) -> Principal:
        project_id = _path_project_id(request)
        return await _key_principal(request, permission, project_id, _gate_headers(request))

    # The guard remembers its permission so that tests can enumerate which endpoint needs
    # which permission (the permission-by-endpoint matrix).
    guard.permission = permission  # type: ignore[attr-defined]
    return Depends(guard)


async def current_session(request: Request) -> tuple[str, SignedIn] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with runtime(request).sessions() as db:
        signed_in = await sessions.resolve(db, token)
    return None if signed_in is None else (token, signed_in)


async def management_actor(request: Request) -> Actor:
    """The caller of a key-management endpoint: a signed-in user (cookie + CSRF token on every
    change) or a user key. Project keys can never manage keys."""
    rt = runtime(request)
    ip = client_ip(request, rt.settings.trusted_proxies)
    request.state.client_ip = ip
    headers = _gate_headers(request)
    agent = headers.get("user-agent")
    authorization = headers.get("authorization")
    if authorization is None:
        found = await current_session(request)
        if found is None:
            raise MissingAuthorization(
                "Sign in to the dashboard, or send a user key with api_key permissions as "
                "'Authorization: Bearer <key>'."
            )
        _token, signed_in = found
        if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != (
            signed_in.csrf_token
        ):
            raise CsrfFailed(
                f"This change needs the {CSRF_HEADER} header of your session; reload the page "
                "and try again."
            )
        request.state.signed_in = signed_in
        return Actor(user_id=signed_in.user_id, ip=ip, user_agent=agent)
    # Path parameters are validated after dependencies run: only trust an id in range.
    raw_project = str(request.path_params.get("project_id", ""))
    in_range = raw_project.isascii() and raw_project.isdigit() and len(raw_project) < 19
    project_id = int(raw_project) if in_range else None
    started = time.perf_counter()
    admission = await rt.verifier.admit(authorization, ip, project_id, None, agent)
    observe(request, admission, time.perf_counter() - started)
    await _browser_check(request, rt, admission, project_id, headers)
    admission.enforce()
    key = admission.key
    if key.kind is KeyKind.PROJECT:
        raise InsufficientPermissions(
            "Project keys cannot manage API keys; use the dashboard or a user key with "
            "api_key:write.",
            required=str(Permission.API_KEY_WRITE),
        )
    return Actor(
        user_id=key.user_id, key_id=key.id, key_scopes=key.permissions, ip=ip, user_agent=agent
    )


ActorDep = Annotated[Actor, Depends(management_actor)]


@dataclass(frozen=True)
class ProjectCaller:
    """Who calls a project endpoint that both people and keys use (webhooks): the actor for
    audit, and the mode it works in (a key's own; None for a dashboard session, which sees
    both modes)."""

    actor: Actor
    mode: Mode | None


def caller(permission: Permission) -> Any:
    """Like `require`, but a signed-in dashboard user (cookie, plus the CSRF token on a
    change) may call too, checked against their own permissions on the project. Keys of
    either kind are admitted (rate-limited, IP-checked, mode-bound) exactly as by `require`."""

    async def guard(request: Request) -> ProjectCaller:
        project_id = _path_project_id(request)
        rt = runtime(request)
        headers = _gate_headers(request)
        if headers.get("authorization") is None:
            actor = await management_actor(request)  # the session path
            async with rt.sessions() as db:
                await rt.keys.require(db, actor, project_id, permission)
            return ProjectCaller(actor, None)
        principal = await _key_principal(request, permission, project_id, headers)
        key = principal.key
        actor = Actor(
            user_id=key.user_id,
            key_id=key.id,
            key_scopes=principal.permissions,
            ip=request.state.client_ip,
            user_agent=request.headers.get("user-agent"),
        )
        return ProjectCaller(actor, key.mode)

    guard.permission = permission  # type: ignore[attr-defined]
    return Depends(guard)
