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

from keyplane.adapters.memory.lru import LRUCache
from keyplane.domain.errors import (
    InsufficientPermissions,
    InvalidApiKey,
    ProjectMismatch,
    WrongEnvironment,
)
from keyplane.domain.keyformat import Mode, parse
from keyplane.domain.keys import KeyKind, VerifiedKey, bearer_token
from keyplane.domain.permissions import Permission
from keyplane.services.crypto import Keyring

KeyLoader = Callable[[list[bytes]], Awaitable[VerifiedKey | None]]
# (user id, project id) -> (org id, permissions) or None when the user cannot reach it
AccessLoader = Callable[[int, int], Awaitable[tuple[int, frozenset[Permission]] | None]]

_NO_ACCESS: tuple[int, frozenset[Permission]] = (0, frozenset())


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling a project endpoint, and what they may do there."""

    key: VerifiedKey
    project_id: int
    permissions: frozenset[Permission]

    @property
    def mode(self) -> Mode:
        return self.key.mode


class Verifier:
    def __init__(
        self,
        *,
        keyring: Keyring,
        load_key: KeyLoader,
        load_access: AccessLoader,
        accept_test_keys: bool = True,
        cache_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keyring = keyring
        self._load_key = load_key
        self._load_access = load_access
        self.accept_test_keys = accept_test_keys
        self.keys: LRUCache[bytes, VerifiedKey] = LRUCache(cache_size)
        self.access: LRUCache[tuple[int, int], tuple[int, frozenset[Permission]]] = LRUCache(
            cache_size
        )
        self.clock = clock
        # key id -> last use (unix seconds), drained by the change feed's periodic flush
        self.used: dict[str, float] = {}

    async def verify(self, authorization: str | None, client_ip: str | None = None) -> VerifiedKey:
        """The issued key behind an Authorization header, or the error that says why not."""
        parsed = parse(bearer_token(authorization))
        if parsed.mode is Mode.TEST and not self.accept_test_keys:
            raise WrongEnvironment(
                "This server does not accept sk_test_ keys; use an sk_live_ key here, or send "
                "test traffic to a server started with KEYPLANE_ACCEPT_TEST_KEYS=true."
            )
        lookup = self.keyring.lookup_hash(parsed.value)
        key = self.keys.get(lookup)
        if key is None:
            key = await self._miss(parsed.value, lookup)
        now = self.clock()
        key.check_usable(now)
        key.check_ip(client_ip)
        self.used[key.id] = now
        return key

    async def _miss(self, secret: str, lookup: bytes) -> VerifiedKey:
        lookups = [lookup] + [
            self.keyring.lookup_hash(secret, v) for v in self.keyring.versions[1:]
        ]
        key = await self._load_key(lookups)
        if key is None:
            raise InvalidApiKey(
                "No such API key; it may have been mistyped, or it belongs to another keyplane "
                "installation."
            )
        self.keys.put(lookup, key)
        return key

    async def authorize(
        self, key: VerifiedKey, project_id: int, permission: Permission
    ) -> Principal:
        """Check that `key` may use `permission` on `project_id`."""
        if key.kind is KeyKind.PROJECT:
            if key.project_id != project_id:
                raise ProjectMismatch(
                    f"This key belongs to project {key.project_id}, not project {project_id}; "
                    f"use a key created in project {project_id}."
                )
            permissions = key.permissions
        else:
            assert key.user_id is not None
            org_id, held = await self.user_access(key.user_id, project_id)
            # A user key is account-wide within the organization it was created in.
            if not held or org_id != key.org_id:
                raise ProjectMismatch(
                    f"This user key cannot reach project {project_id}: its owner has no access "
                    "to it in the key's organization. Use a project key of that project."
                )
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

    async def user_access(self, user_id: int, project_id: int) -> tuple[int, frozenset[Permission]]:
        """A user's current (org id, permissions) on a project, cached like keys."""
        access = self.access.get((user_id, project_id))
        if access is None:
            access = await self._load_access(user_id, project_id) or _NO_ACCESS
            self.access.put((user_id, project_id), access)
        return access

    # --- invalidation ------------------------------------------------------------------------
    def invalidate_key(self, key_id: str) -> None:
        self.keys.evict_where(lambda _lookup, key: key.id == key_id)

    def invalidate_access(self) -> None:
        """Memberships or roles changed: recompute every user's access on next use."""
        self.access.clear()

    def drain_used(self) -> dict[str, float]:
        used, self.used = self.used, {}
        return used
