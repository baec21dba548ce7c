"""Per-key usage without a database write per request (issue 7).

Each process counts requests in memory by (key, UTC hour, status class, permission) and adds
the counts to `key_usage_hourly` in one batch per flush; a failed flush keeps its counts for
the next one, so nothing counted is lost while the process lives."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.database import dialect_insert
from keyplane.adapters.sql.models import ApiKey, KeyClient, KeyUsageHourly
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import ValidationFailed

HOUR = 3600
STATUS_CLASSES = ("success", "client_error", "rate_limited", "server_error")
# 403s are stored apart so that anomaly detection can see permission-error bursts; reports
# show them within client_error.
FORBIDDEN = "forbidden"
_REPORTED_AS = {FORBIDDEN: "client_error"}
MAX_RANGE = timedelta(days=366)

UsageKey = tuple[str, int, str, str]  # key id, hour (unix seconds), status class, permission


def status_class(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status == 403:
        return FORBIDDEN
    if status >= 400:
        return "client_error"
    return "success"


@dataclass(slots=True)  # one per (key, address) until the next flush: no __dict__ each
class ClientSeen:
    first: float
    last: float
    count: int
    user_agent: str | None


Clients = dict[tuple[str, str], ClientSeen]  # (key id, client address) -> what was seen


class UsageBuffer:
    def __init__(self, max_entries: int = 50_000) -> None:
        self.counts: Counter[UsageKey] = Counter()
        self.clients: Clients = {}
        self.max_entries = max_entries
        self._hour = 0

    def record(
        self,
        key_id: str,
        permission: str | None,
        status: int,
        at: float,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        hour = int(at) // HOUR * HOUR
        if hour == self._hour:  # the same int object in every entry of the hour
            hour = self._hour
        else:
            self._hour = hour
        klass = "success" if status < 400 else status_class(status)  # no call when it succeeded
        self.counts[(key_id, hour, klass, permission or "")] += 1
        client = (key_id, (ip or "unknown")[:64])
        seen = self.clients.get(client)
        if seen is None:
            # Interned: most clients send one of a few User-Agents, and each request decodes
            # its own copy.
            agent = sys.intern(user_agent[:400]) if user_agent else None
            self.clients[client] = ClientSeen(at, at, 1, agent)
        else:
            seen.last, seen.count = at, seen.count + 1

    @property
    def full(self) -> bool:
        return len(self.counts) + len(self.clients) >= self.max_entries

    def drain(self) -> tuple[Counter[UsageKey], Clients]:
        drained = self.counts, self.clients
        self.counts, self.clients = Counter(), {}
        return drained

    def restore(self, counts: Counter[UsageKey], clients: Clients) -> None:
        self.counts.update(counts)
        for client, seen in clients.items():
            newer = self.clients.get(client)
            if newer is None:
                self.clients[client] = seen
            else:
                newer.first, newer.count = seen.first, newer.count + seen.count


async def add_counts(db: AsyncSession, counts: Counter[UsageKey]) -> None:
    """Add counts to the hourly rows: multi-row upserts of ROWS_PER_STATEMENT rows."""
    if not counts:
        return
    rows = [
        {
            "key_id": key_id,
            "hour": datetime.fromtimestamp(hour, UTC),
            "status_class": klass,
            "permission": permission,
            "count": count,
        }
        for (key_id, hour, klass, permission), count in counts.items()
    ]
    for chunk in _chunks(rows):
        statement = dialect_insert(db)(KeyUsageHourly).values(chunk)
        statement = statement.on_conflict_do_update(
            index_elements=["key_id", "hour", "status_class", "permission"],
            set_={"count": KeyUsageHourly.count + statement.excluded.count},
        )
        await db.execute(statement)


# Rows per multi-row upsert: a statement may carry at most 32,767 bind parameters (asyncpg;
# SQLite's default is 32,766), and compiling one for tens of thousands of rows took more
# memory than the whole key cache. 1,000 rows of six columns stay far below both.
ROWS_PER_STATEMENT = 1_000


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start : start + ROWS_PER_STATEMENT]


async def add_clients(db: AsyncSession, clients: Clients) -> None:
    """Merge the clients seen since the last flush: multi-row upserts, as counts."""
    if not clients:
        return
    rows = [
        {
            "key_id": key_id,
            "ip": ip,
            "user_agent": seen.user_agent,
            "first_seen": datetime.fromtimestamp(seen.first, UTC),
            "last_seen": datetime.fromtimestamp(seen.last, UTC),
            "count": seen.count,
        }
        for (key_id, ip), seen in clients.items()
    ]
    for chunk in _chunks(rows):
        statement = dialect_insert(db)(KeyClient).values(chunk)
        statement = statement.on_conflict_do_update(
            index_elements=["key_id", "ip"],
            set_={
                "count": KeyClient.count + statement.excluded.count,
                "last_seen": statement.excluded.last_seen,
                "user_agent": statement.excluded.user_agent,
            },
        )
        await db.execute(statement)


async def clients_since(
    db: AsyncSession, key_id: str, since: datetime, pending: Clients | None = None
) -> list[dict[str, Any]]:
    """The addresses that used a key since `since`, most recent first, including this
    process's unflushed sightings."""
    merged: dict[str, dict[str, Any]] = {}
    rows = await db.scalars(
        select(KeyClient).where(KeyClient.key_id == key_id, KeyClient.last_seen >= since)
    )
    for row in rows.all():
        last = row.last_seen if row.last_seen.tzinfo else row.last_seen.replace(tzinfo=UTC)
        merged[row.ip] = {
            "ip": row.ip,
            "user_agent": row.user_agent,
            "last_seen": last,
            "requests": row.count,
        }
    for (pending_key, ip), seen in (pending or {}).items():
        last = datetime.fromtimestamp(seen.last, UTC)
        if pending_key != key_id or last < since:
            continue
        entry = merged.setdefault(
            ip, {"ip": ip, "user_agent": seen.user_agent, "last_seen": last, "requests": 0}
        )
        entry["requests"] += seen.count
        entry["last_seen"] = max(entry["last_seen"], last)
    ordered = sorted(merged.values(), key=lambda c: c["last_seen"], reverse=True)
    return [c | {"last_seen": c["last_seen"].isoformat().replace("+00:00", "Z")} for c in ordered]


async def rotation(
    db: AsyncSession, row: ApiKey, pending: Clients | None = None
) -> dict[str, Any] | None:
    """For a rotated key in its grace period: its replacement, when the grace ends, and how
    many systems (client addresses) still used the old secret since the rotation. When that
    reaches zero, revoking the old secret is safe. None for any other key."""
    grace_ends = aware(row.revoked_at)
    if grace_ends is None or grace_ends <= utcnow():
        return None
    successor = await db.scalar(select(ApiKey).where(ApiKey.rotated_from == row.id))
    if successor is None:
        return None
    rotated_at = aware(successor.created_at) or utcnow()
    since = await clients_since(db, row.id, rotated_at, pending)
    return {
        "replaced_by": successor.id,
        "rotated_at": rotated_at,
        "grace_ends_at": grace_ends,
        "still_used_by": len(since),
    }


async def report(
    db: AsyncSession,
    key_id: str,
    start: datetime | None,
    end: datetime | None,
    group_by: str,
    pending: Counter[UsageKey] | None = None,
) -> dict[str, Any]:
    """Counts by period and status class, and which permissions the key actually used;
    `pending` adds this process's not yet flushed counts, so the report is current."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=7)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("from and to need a timezone, e.g. 2026-01-01T00:00:00Z.")
    if start > end or end - start > MAX_RANGE:
        raise ValidationFailed("Give from before to, at most 366 days apart.")
    rows = (
        await db.execute(
            select(KeyUsageHourly).where(
                KeyUsageHourly.key_id == key_id,
                KeyUsageHourly.hour >= start.replace(minute=0, second=0, microsecond=0),
                KeyUsageHourly.hour <= end,
            )
        )
    ).scalars()
    entries = [(row.hour, row.status_class, row.permission, row.count) for row in rows]
    for (pending_key, hour_s, klass, permission), count in (pending or Counter()).items():
        hour_at = datetime.fromtimestamp(hour_s, UTC)
        if pending_key == key_id and start.replace(minute=0, second=0) <= hour_at <= end:
            entries.append((hour_at, klass, permission, count))
    periods: dict[str, dict[str, int]] = {}
    permissions: Counter[str] = Counter()
    for moment, klass, permission, count in entries:
        hour = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        period = hour if group_by == "hour" else hour.replace(hour=0)
        label = period.isoformat().replace("+00:00", "Z")
        bucket = periods.setdefault(label, dict.fromkeys(STATUS_CLASSES, 0))
        bucket[_REPORTED_AS.get(klass, klass)] += count
        if permission:
            permissions[permission] += count
    data = [
        {"period": label, **counts, "total": sum(counts.values())}
        for label, counts in sorted(periods.items())
    ]
    return {"data": data, "permissions": dict(sorted(permissions.items()))}
