"""Authenticating and authorizing a request made with an API key (DESIGN §4).

Checks run cheapest first: header shape, key shape and checksum (no storage), then the
in-process cache, and only on a miss one indexed database lookup. In steady state a request
touches no database; changes reach the cache through direct invalidation in this process and
through the change feed (`services/changes.py`) from every other writer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from keyplane.adapters.memory.lru import IndexedLRUCache, LRUCache, RecentSet
from keyplane.adapters.memory.ratelimit import MemoryRateLimiter
from keyplane.domain.errors import (
    InsufficientPermissions,
    InvalidApiKey,
    KeyplaneError,
    MalformedApiKey,
    MalformedAuthorization,
    ProjectMismatch,
    RateLimitExceeded,
    WrongEnvironment,
)
from keyplane.domain.keyformat import Mode, parse
from keyplane.domain.keys import KeyKind, VerifiedKey, bearer_token
from keyplane.domain.permission_query import Query
from keyplane.domain.permissions import Permission
from keyplane.domain.ratelimit import MAX_PER_MINUTE, Decision, Limits
from keyplane.services.auth_failures import AuthFailureMonitor
from keyplane.services.crypto import Keyring
from keyplane.services.ratelimit import NO_VERSIONS, RateLimiter, Versions

KeyLoader = Callable[[list[bytes]], Awaitable[VerifiedKey | None]]
# (user id, project id) -> (org id, permissions) or None when the user cannot reach it
AccessLoader = Callable[[int, int], Awaitable[tuple[int, frozenset[Permission]] | None]]

# org id -> every custom permission name registered in its projects
CustomLoader = Callable[[int], Awaitable[frozenset[str]]]
# (the key, the project it is checked on) -> whether the caller may know the key exists
Visibility = Callable[[VerifiedKey, int | None], Awaitable[bool]]
SERVICE_FAILURE_FACTOR = 100
NO_SUCH_KEY = (
    "No such API key; it may have been mistyped, or it belongs to another keyplane installation."
)

_NO_ACCESS: tuple[int, frozenset[Permission]] = (0, frozenset())
# Enum members read through the class cost a __getattr__ call each in Python 3.11; the hot
# path reads them from module globals. A Check is built from a complete tuple (skipping the
# named tuple's Python constructor) on every verification.
_PROJECT = KeyKind.PROJECT
_TEST = Mode.TEST
_new_tuple = tuple.__new__
# Failed authentications that count towards a burst. A missing header is not an attempt.
_FAILURES = (
    MalformedAuthorization,
    MalformedApiKey,
    InvalidApiKey,
    WrongEnvironment,
    RateLimitExceeded,
)


@dataclass(frozen=True, slots=True)
class Admission:
    """What the request gate decided: the key, the principal when authorized, the
    rate-limit decision (None when no limiter answered) and the error to answer with."""

    key: VerifiedKey
    principal: Principal | None
    decision: Decision | None
    error: KeyplaneError | None

    def enforce(self) -> None:
        if self.error is not None:
            raise self.error


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling a project endpoint, and what they may do there."""

    key: VerifiedKey
    project_id: int
    permissions: frozenset[Permission]

    @property
    def mode(self) -> Mode:
        return self.key.mode


class Check(NamedTuple):
    """The outcome of verifying a key for another API: the key, the project it was checked
    on, the permission names it holds there, the rate-limit decision (None: not counted, or
    no limiter answered) and the error, if any. A tuple: built on every request."""

    key: VerifiedKey
    project_id: int | None
    permissions: frozenset[str]
    decision: Decision | None
    error: KeyplaneError | None

    @property
    def valid(self) -> bool:
        return self.error is None


class Verifier:
    def __init__(
        self,
        *,
        keyring: Keyring,
        load_key: KeyLoader,
        load_access: AccessLoader,
        limiter: RateLimiter | None = None,
        accept_test_keys: bool = True,
        cache_size: int = 100_000,
        auth_failures_per_minute: int = 30,
        clock: Callable[[], float] = time.time,
        failures: AuthFailureMonitor | None = None,
        load_custom: CustomLoader | None = None,
    ) -> None:
        self.keyring = keyring
        self._load_key = load_key
        self._load_access = load_access
        self.accept_test_keys = accept_test_keys
        self.keys: IndexedLRUCache[str, VerifiedKey, str] = IndexedLRUCache(cache_size, _key_id)
        self.access: LRUCache[tuple[int, int], tuple[int, frozenset[Permission]]] = LRUCache(
            cache_size
        )
        self.clock = clock
        self.limiter: RateLimiter = limiter or MemoryRateLimiter(clock=clock)
        # Failed lookups per client address: once over the limit, that address may still use
        # keys already verified (cache hits), but no more lookups: guessing is throttled,
        # valid keys in use are never slowed.
        self._failures = MemoryRateLimiter(max_buckets=100_000, clock=clock)
        self._failure_limits = Limits(per_minute=auth_failures_per_minute, per_day=10**9)
        # A service verifying its own clients' keys (POST /v1/keys/verify) sees every typo of
        # all of them: a far larger budget, still bounding the lookups one caller can cause.
        self._service_failure_limits = Limits(
            per_minute=min(auth_failures_per_minute * SERVICE_FAILURE_FACTOR, MAX_PER_MINUTE),
            per_day=10**9,
        )
        self._load_custom = load_custom
        # org id -> custom permission names registered in its projects
        self.custom: LRUCache[int, frozenset[str]] = LRUCache(max(1, cache_size // 10))
        # Keys that were valid once, by the first 56 bits of their lookup hash (an int is half
        # the size of the hash; a collision could only spare one throttled lookup). They outlive
        # cache invalidations, so that a throttled address can still re-load a key it was
        # already using.
        self._known: RecentSet[int] = RecentSet(cache_size)
        self._org_access_seen: dict[int, int] = {}
        # key id -> last use (unix seconds), drained by the change feed's periodic flush
        self.used: dict[str, float] = {}
        # Failed authentications by address, for burst alerts (counted in memory only).
        self.failures = failures

    async def verify(
        self,
        authorization: str | None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> VerifiedKey:
        """The issued key behind an Authorization header, or the error that says why not."""
        try:
            token = bearer_token(authorization)
        except _FAILURES as error:
            self._failed(client_ip, user_agent, error, None)
            raise
        key = await self.lookup(token, client_ip, user_agent)
        self.check_usable(key, client_ip, user_agent)
        return key

    async def lookup(
        self,
        token: str,
        client_ip: str | None,
        user_agent: str | None = None,
        service: str | None = None,
    ) -> VerifiedKey:
        """The issued key for a token, usable or not (revoked and expired keys included).
        `service`: the id of a service verifying keys on behalf of its own clients, whose
        failed lookups are throttled as that service's rather than by client address."""
        try:
            # The cache is keyed by the token itself: a hit needs no parsing and no HMAC, which
            # were two thirds of a verification's cost. Holding tokens in memory exposes
            # nothing new: this process holds the keyring, which decrypts every stored secret.
            key = self.keys.get(token)
            if key is None:
                key = await self._miss(token, client_ip, service)
            elif key.mode is Mode.TEST and not self.accept_test_keys:
                raise _test_keys_refused()
        except _FAILURES as error:
            self._failed(client_ip, user_agent, error, None)
            raise
        return key

    def check_usable(self, key: VerifiedKey, client_ip: str | None, user_agent: str | None) -> None:
        """Not revoked, not expired, and called from an allowed address."""
        now = self.clock()
        try:
            key.check_usable(now)
        except KeyplaneError as error:  # revoked or expired: a key we know, so name it
            self._failed(client_ip, user_agent, error, key.id)
            raise
        if key.ip_allowlist:
            key.check_ip(client_ip)
        self.used[key.id] = now

    def _failed(
        self, ip: str | None, user_agent: str | None, error: KeyplaneError, key_id: str | None
    ) -> None:
        if self.failures is not None:
            self.failures.record(ip, user_agent, error.code, key_id, self.clock())

    async def _miss(self, token: str, client_ip: str | None, service: str | None) -> VerifiedKey:
        secret = parse(token).value  # shape and checksum: bad input never reaches storage
        if secret.startswith("sk_test_") and not self.accept_test_keys:
            raise _test_keys_refused()
        lookup = self.keyring.lookup_hash(secret)
        failures = (
            [("ip:" + (client_ip or "unknown"), self._failure_limits)]
            if service is None
            else [("svc:" + service, self._service_failure_limits)]
        )
        throttle = self._failures.peek(failures)
        if not throttle.allowed and _known_id(lookup) not in self._known:
            retry = throttle.retry_after
            raise RateLimitExceeded(
                f"Too many failed authentication attempts from your address. Please retry "
                f"after {retry} seconds.",
                retry_after=retry,
            )
        lookups = [lookup] + [
            self.keyring.lookup_hash(secret, v) for v in self.keyring.versions[1:]
        ]
        key = await self._load_key(lookups)
        if key is None:
            self._failures.decide(failures)
            raise InvalidApiKey(NO_SUCH_KEY)
        self.keys.put(token, key)
        self._known.add(_known_id(lookup))
        return key

    async def authorize(
        self, key: VerifiedKey, project_id: int, permission: Permission
    ) -> Principal:
        """Check that `key` may use `permission` on `project_id`."""
        if key.kind is KeyKind.PROJECT:
            if key.project_id != project_id:
                raise _other_project(key, project_id)
            permissions = key.permissions
        else:
            held = await self._owner_holds(key, project_id)
            permissions = key.permissions & held
            if permission in key.permissions and permission not in held:
                raise InsufficientPermissions(
                    f"The owner of this user key no longer holds {permission} on project "
                    f"{project_id}; ask a project owner to grant it.",
                    required=str(permission),
                )
        if permission not in permissions:
            raise InsufficientPermissions(
                f"This key lacks the {permission} permission; add it to the key (API Keys → "
                "pencil icon) or use a key that has it.",
                required=str(permission),
            )
        return Principal(key=key, project_id=project_id, permissions=permissions)

    async def admit(
        self,
        authorization: str | None,
        client_ip: str | None,
        project_id: int | None,
        permission: Permission | None,
        user_agent: str | None = None,
    ) -> Admission:
        """The whole request gate: authenticate, count the request against its rate limits
        (one limiter round trip, which also tells whether another instance changed the key
        since it was cached), then authorize when a permission is asked for on a project.

        Authentication errors raise at once. A rate-limit rejection or an authorization error
        comes back in the Admission, so that the caller can put the rate-limit headers on
        that response too: every authenticated response carries them."""
        key = await self.verify(authorization, client_ip, user_agent)
        outcome = await self.limiter.hit(
            key.org_id, key.budgets(await self._budget_project(key, project_id)), key.id
        )
        decision = None
        if outcome is not None:  # None: the shared limiter is down and failing open
            decision, versions = outcome
            if self._stale(key, versions):
                key = await self.verify(authorization, client_ip, user_agent)
        if decision is not None and not decision.allowed:
            return Admission(key, None, decision, rate_limit_error(decision))
        try:
            principal = await self._authorize_if(key, project_id, permission)
        except KeyplaneError as error:
            return Admission(key, None, decision, error)
        return Admission(key, principal, decision, None)

    async def check(
        self,
        token: str,
        *,
        client_ip: str | None,
        project_id: int | None = None,
        query: Query | None = None,
        visible: Visibility | None = None,
        service: str | None = None,
        user_agent: str | None = None,
    ) -> Check:
        """Verify a key for another API (issue 10): the same gate as `admit`, for a key
        given as such and permissions of any name (built-in or the project's own).

        Raises only when there is no key to speak of (malformed, unknown, or one `visible`
        says the caller may not know about: answered exactly as an unknown key). Everything
        else comes back in the Check, with the rate-limit decision once it was counted."""
        key = self.keys.get(token)  # the steady state, without a coroutine for lookup()
        if key is None or (key.mode is _TEST and not self.accept_test_keys):
            key = await self.lookup(token, client_ip, user_agent, service)
        project_key = key.kind is _PROJECT
        target = key.project_id if project_key else project_id
        if visible is not None and not await visible(key, target):
            raise InvalidApiKey(NO_SUCH_KEY)
        if key.revoked_at is None and key.expires_at is None and not key.ip_allowlist:
            self.used[key.id] = self.clock()  # check_usable's work when there is nothing to check
        else:
            try:
                self.check_usable(key, client_ip, user_agent)
            except KeyplaneError as error:
                return Check(key, target, frozenset(), None, error)
        budget = target if project_key else await self._budget_project(key, target)
        outcome = await self.limiter.hit(key.org_id, key.budgets(budget), key.id)
        decision = None
        if outcome is not None:
            decision, versions = outcome
            if (
                versions is not NO_VERSIONS
                and (versions.key is not None or versions.access is not None)
                and self._stale(key, versions)
            ):
                key = await self.lookup(token, client_ip, user_agent, service)
                try:
                    self.check_usable(key, client_ip, user_agent)
                except KeyplaneError as error:
                    return Check(key, target, frozenset(), decision, error)
        held: frozenset[str] = frozenset()
        try:
            if project_key and project_id is None:  # the common case, inline
                held = key.names
            else:
                held = await self.held_names(key, project_id)
            if decision is not None and not decision.allowed:
                return Check(key, target, held, decision, rate_limit_error(decision))
            if query is not None and not (
                query.name in held if query.op is None else query.allows(held)
            ):
                missing = query.missing(held)
                raise InsufficientPermissions(
                    f"This key lacks the {missing} permission; add it to the key (API Keys → "
                    "pencil icon) or use a key that has it.",
                    required=missing,
                )
        except KeyplaneError as error:
            return Check(key, target, held, decision, error)
        checked: Check = _new_tuple(Check, (key, target, held, decision, None))
        return checked

    async def held_names(self, key: VerifiedKey, project_id: int | None) -> frozenset[str]:
        """Every permission name `key` holds on `project_id` (None: the key's own project,
        or for a user key its scopes): built-in and, for project keys, the project's own."""
        if key.kind is KeyKind.PROJECT:
            if project_id is not None and project_id != key.project_id:
                raise _other_project(key, project_id)
            return key.names
        if project_id is None:
            return key.permissions
        return key.permissions & await self._owner_holds(key, project_id)

    async def _owner_holds(self, key: VerifiedKey, project_id: int) -> frozenset[Permission]:
        """What a user key's owner holds on a project; ProjectMismatch when they hold nothing
        there or the project is in another organization (a user key is account-wide within
        the organization it was created in)."""
        assert key.user_id is not None
        org_id, held = await self.user_access(key.user_id, project_id)
        if not held or org_id != key.org_id:
            raise ProjectMismatch(
                f"This user key cannot reach project {project_id}: its owner has no access "
                "to it in the key's organization. Use a project key of that project."
            )
        return held

    async def custom_names(self, org_id: int) -> frozenset[str]:
        """The custom permission names of an organization's projects, cached like keys."""
        names = self.custom.get(org_id)
        if names is None:
            names = await self._load_custom(org_id) if self._load_custom else frozenset()
            self.custom.put(org_id, names)
        return names

    async def _budget_project(self, key: VerifiedKey, project_id: int | None) -> int | None:
        """Which project's budget a request is charged to: a project key's own; for a user
        key the path's project, but only one its owner can reach — nobody may drain the
        budget of a project they have no access to."""
        if key.kind is KeyKind.PROJECT:
            return key.project_id
        if project_id is None or key.user_id is None:
            return None
        org_id, held = await self.user_access(key.user_id, project_id)
        return project_id if held and org_id == key.org_id else None

    async def _authorize_if(
        self, key: VerifiedKey, project_id: int | None, permission: Permission | None
    ) -> Principal | None:
        if project_id is None or permission is None:
            return None
        return await self.authorize(key, project_id, permission)

    def _stale(self, key: VerifiedKey, versions: Versions) -> bool:
        stale = False
        if versions.key is not None and versions.key > key.version:
            self.invalidate_key(key.id)
            stale = True
        if versions.access is not None:
            seen = self._org_access_seen.get(key.org_id)
            self._org_access_seen[key.org_id] = versions.access
            if seen is not None and versions.access > seen:
                self.invalidate_org(key.org_id)
                stale = True
        return stale

    async def user_access(self, user_id: int, project_id: int) -> tuple[int, frozenset[Permission]]:
        """A user's current (org id, permissions) on a project, cached like keys."""
        access = self.access.get((user_id, project_id))
        if access is None:
            access = await self._load_access(user_id, project_id) or _NO_ACCESS
            self.access.put((user_id, project_id), access)
        return access

    # --- invalidation ------------------------------------------------------------------------
    def invalidate_key(self, key_id: str) -> None:
        self.keys.pop_by_index(key_id)

    def invalidate_org(self, org_id: int) -> None:
        """Memberships, roles or settings of an organization changed: re-read its keys (they
        carry its rate limits) and everyone's access (cheap, and changes are rare)."""
        self.keys.evict_where(lambda _token, key: key.org_id == org_id)
        self.access.clear()
        self.custom.evict_where(lambda org, _names: org == org_id)

    def drain_used(self) -> dict[str, float]:
        used, self.used = self.used, {}
        return used


def _key_id(key: VerifiedKey) -> str:
    return key.id


def _known_id(lookup: bytes) -> int:
    return int.from_bytes(lookup[:7])


def _test_keys_refused() -> WrongEnvironment:
    return WrongEnvironment(
        "This server does not accept sk_test_ keys; use an sk_live_ key here, or send "
        "test traffic to a server started with KEYPLANE_ACCEPT_TEST_KEYS=true."
    )


def rate_limit_error(decision: Decision) -> RateLimitExceeded:
    seconds = decision.retry_after
    if decision.daily_exceeded:
        return RateLimitExceeded(
            f"Daily quota of {decision.daily_limit} requests exceeded. Please retry after "
            f"{seconds} seconds, when the quota resets at 00:00 UTC.",
            retry_after=seconds,
        )
    return RateLimitExceeded(
        f"Rate limit exceeded. Please retry after {seconds} seconds.", retry_after=seconds
    )


def _other_project(key: VerifiedKey, project_id: int) -> ProjectMismatch:
    """The refusal of a project key used on another project."""
    return ProjectMismatch(
        f"This key belongs to project {key.project_id}, not project {project_id}; "
        f"use a key created in project {project_id}."
    )
