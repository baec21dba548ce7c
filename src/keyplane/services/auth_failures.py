"""Bursts of failed authentication per client address (issue 7).

The request path only counts, in memory, by (address, window); when an address reaches the
threshold within a window it is queued, and the change feed's background loop writes one
alert (and with it one audit event) for it. The alerts table's dedup key makes that one per
address and window across every process."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey
from keyplane.services.alerts import AlertSpec, raise_alert

MAX_KEY_IDS = 10


@dataclass
class Burst:
    first: float
    last: float
    count: int = 0
    user_agent: str | None = None
    codes: Counter[str] = field(default_factory=Counter)
    key_ids: list[str] = field(default_factory=list)


Window = tuple[str, int]  # client address, window start (unix seconds)


class AuthFailureMonitor:
    def __init__(self, threshold: int, window_seconds: int, max_entries: int = 100_000) -> None:
        self.threshold = threshold
        self.window = window_seconds
        self.max_entries = max_entries
        self.bursts: dict[Window, Burst] = {}
        self.due: list[Window] = []

    def record(
        self, ip: str | None, user_agent: str | None, code: str, key_id: str | None, at: float
    ) -> None:
        """Count one failed authentication. Never the presented secret: only its outcome."""
        start = int(at) // self.window * self.window
        slot = ((ip or "unknown")[:64], start)
        burst = self.bursts.get(slot)
        if burst is None:
            if len(self.bursts) >= self.max_entries:
                self._prune(start)
                if len(self.bursts) >= self.max_entries:
                    return  # bounded memory under a flood of addresses
            burst = self.bursts[slot] = Burst(first=at, last=at)
        burst.count += 1
        burst.last = at
        burst.codes[code] += 1
        if user_agent and burst.user_agent is None:
            burst.user_agent = user_agent[:400]
        if key_id is not None and key_id not in burst.key_ids and len(burst.key_ids) < MAX_KEY_IDS:
            burst.key_ids.append(key_id)
        if burst.count == self.threshold:
            self.due.append(slot)

    def _prune(self, current_start: int) -> None:
        self.bursts = {w: b for w, b in self.bursts.items() if w[1] >= current_start}

    def drain(self, now: float) -> list[tuple[Window, Burst]]:
        """The bursts that reached the threshold since the last drain; forgets past windows."""
        due, self.due = self.due, []
        found = [(slot, self.bursts[slot]) for slot in due if slot in self.bursts]
        self._prune(int(now) // self.window * self.window - self.window)
        return found


async def report(db: AsyncSession, window_seconds: int, bursts: list[tuple[Window, Burst]]) -> int:
    """One alert + audit event per address and window; returns how many were new."""
    written = 0
    for (ip, start), burst in bursts:
        key = await db.get(ApiKey, burst.key_ids[0]) if burst.key_ids else None
        which = f" (key {key.id}, {', '.join(sorted(burst.codes))})" if key else ""
        alert = await raise_alert(
            db,
            AlertSpec(
                kind="auth_failure_burst",
                severity="high",
                message=(
                    f"{burst.count} failed authentications from {ip} within "
                    f"{window_seconds} seconds{which}."
                ),
                window=str(start),
                subject=ip,
                org_id=key.org_id if key else None,
                project_id=key.project_id if key else None,
                key_id=key.id if key else None,
                details={
                    "ip": ip,
                    "count": burst.count,
                    "errors": dict(burst.codes),
                    "key_ids": burst.key_ids,
                    "window_start": start,
                    "window_seconds": window_seconds,
                },
                ip=ip,
                user_agent=burst.user_agent,
            ),
        )
        written += alert is not None
    return written
