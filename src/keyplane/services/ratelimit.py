"""The rate-limiter port: one call per request decides every budget that applies and, with a
shared backend, reports the change versions other instances published (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keyplane.domain.errors import KeyplaneError
from keyplane.domain.ratelimit import Decision, Limits


class LimiterUnavailable(KeyplaneError):
    """The shared limiter (Redis) could not be reached and the failure mode is `closed`."""

    code = "rate_limiter_unavailable"


@dataclass(frozen=True, slots=True)
class Versions:
    """Change versions seen by the shared backend (None: backend does not track them)."""

    key: int | None = None
    access: int | None = None


NO_VERSIONS = Versions()


class RateLimiter(Protocol):
    async def hit(
        self, org_id: int, budgets: list[tuple[str, Limits]], key_id: str
    ) -> tuple[Decision, Versions] | None:
        """Count one request against every budget if all admit it; nothing otherwise. None
        when the backend is unreachable and configured to fail open."""
        ...

    async def publish(
        self, org_id: int, key_versions: dict[str, int], access_version: int | None
    ) -> None:
        """Tell every instance that keys or an organization's access changed."""
        ...

    async def close(self) -> None: ...
