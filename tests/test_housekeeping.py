"""Housekeeping: rows past their retention and expired rows are deleted, everything else is
kept (pending webhook deliveries whatever their age, audit events unless asked), on every
backend, through indexes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from keyplane.adapters.sql.models import (
    AuditEvent,
    ChangeEvent,
    KeyClient,
    KeyUsageHourly,
    LoginThrottle,
    Session,
    WebhookDelivery,
    WebhookEndpoint,
)
from keyplane.adapters.sql.repositories import utcnow
from keyplane.runtime import Runtime
from keyplane.services import housekeeping
from keyplane.services.anomalies import HISTORY, keys_used_in
from keyplane.services.audit import PRIVILEGE_WINDOW
from keyplane.services.housekeeping import Retention, sweep
from keyplane.services.keys import MAX_GRACE_SECONDS
from keyplane.settings import MIN_RETENTION_DAYS, Settings
from tests.conftest import World, query_plan

DAY = timedelta(days=1)


@pytest.fixture
async def quiet(world: World) -> World:
    """No background sweep racing the explicit ones."""
    for job in world.runtime.scheduled.values():
        await job.stop()
    return world


def _usage(key_id: str, hour: datetime) -> KeyUsageHourly:
    return KeyUsageHourly(
        key_id=key_id, hour=hour, status_class="success", permission="project:read", count=3
    )


def _client(ip: str, last_seen: datetime) -> KeyClient:
    return KeyClient(
        key_id="key_a", ip=ip, user_agent=None, first_seen=last_seen, last_seen=last_seen, count=1
    )


async def _count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _endpoint(world: World, now: datetime) -> int:
    async with world.runtime.transaction() as db:
        endpoint = WebhookEndpoint(
            org_id=world.org_id,
            project_id=world.project_id,
            url="https://hooks.example.com/keyplane",
            events=["alert.raised"],
            secret_version=1,
            secret_sealed=b"sealed",
            created_at=now,
        )
        db.add(endpoint)
        await db.flush()
        return endpoint.id


def _delivery(endpoint_id: int, status: str, created_at: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        endpoint_id=endpoint_id,
        event="alert.raised",
        body="{}",
        status=status,
        attempts=1,
        next_attempt_at=created_at,
        created_at=created_at,
    )


async def test_a_sweep_deletes_what_is_past_retention_and_keeps_the_rest(quiet: World) -> None:
    world, runtime, now = quiet, quiet.runtime, utcnow()
    endpoint_id = await _endpoint(world, now)
    async with runtime.transaction() as db:
        # Usage: 400 days kept.
        old_hours = [now - 401 * DAY - timedelta(hours=h) for h in (0, 1, 5, 30, 24 * 200)]
        db.add_all(_usage("key_a", hour) for hour in old_hours)
        db.add_all(_usage("key_a", hour) for hour in (now - 399 * DAY, now - timedelta(hours=1)))
        # Clients: 90 days since last seen.
        db.add_all(
            [_client("198.51.100.1", now - 91 * DAY), _client("198.51.100.2", now - 89 * DAY)]
        )
        # Webhook deliveries: 30 days, but never one still being retried.
        db.add_all(
            [
                _delivery(endpoint_id, "delivered", now - 31 * DAY),
                _delivery(endpoint_id, "failed", now - 31 * DAY),
                _delivery(endpoint_id, "pending", now - 31 * DAY),
                _delivery(endpoint_id, "delivered", now - 29 * DAY),
            ]
        )
        # Audit: kept forever unless a retention is set.
        db.add(AuditEvent(action="api_key.created", data={}, created_at=now - 3650 * DAY))
        # Expired things go whatever the retention settings.
        db.add_all(
            ChangeEvent(scope="key", ref=f"key_{n}", created_at=now - age)
            for n, age in enumerate((2 * timedelta(hours=1), timedelta(minutes=59)))
        )
        for token, expires in ((b"e" * 32, now - DAY), (b"a" * 32, now + DAY)):
            db.add(
                Session(
                    token_hash=token,
                    user_id=world.owner_id,
                    csrf_token="csrf",
                    created_at=now - 2 * DAY,
                    expires_at=expires,
                    password_verified_at=now - 2 * DAY,
                )
            )
        hour_ago = now - timedelta(hours=1)
        db.add_all(
            [
                LoginThrottle(subject="over@example.com", failures=2, window_started_at=hour_ago),
                LoginThrottle(  # its window is over, but its lockout is not
                    subject="locked@example.com",
                    failures=0,
                    window_started_at=hour_ago,
                    locked_until=now + timedelta(minutes=5),
                ),
                LoginThrottle(subject="recent@example.com", failures=1, window_started_at=now),
            ]
        )

    deleted = await sweep(runtime.sessions, Retention(), now)

    assert deleted == {
        "usage_rows": 5,
        "clients": 1,
        "webhook_deliveries": 2,
        "audit_events": 0,
        "change_events": 1,
        "sessions": 1,
        "sign_in_throttles": 1,
    }
    assert await _count(runtime, KeyUsageHourly) == 2
    assert await _count(runtime, KeyClient, KeyClient.ip == "198.51.100.2") == 1
    assert await _count(runtime, WebhookDelivery) == 2
    assert await _count(runtime, WebhookDelivery, WebhookDelivery.status == "pending") == 1
    assert await _count(runtime, AuditEvent, AuditEvent.action == "api_key.created") == 1
    assert await _count(runtime, Session) == 1
    assert await _count(runtime, ChangeEvent, ChangeEvent.ref.in_(["key_0", "key_1"])) == 1
    async with runtime.sessions() as db:
        emails = set(await db.scalars(select(LoginThrottle.subject)))
    assert emails == {"locked@example.com", "recent@example.com"}

    # A second sweep finds nothing more; an audit retention, when set, applies.
    again = await sweep(runtime.sessions, Retention(audit=365 * DAY), now)
    assert again == dict.fromkeys(deleted, 0) | {"audit_events": 1}


async def test_none_keeps_forever(quiet: World) -> None:
    runtime, now = quiet.runtime, utcnow()
    async with runtime.transaction() as db:
        db.add(_usage("key_a", now - 3000 * DAY))
        db.add(_client("198.51.100.1", now - 3000 * DAY))
    forever = Retention(usage=None, clients=None, webhook_deliveries=None, audit=None)
    deleted = await sweep(runtime.sessions, forever, now)
    assert deleted["usage_rows"] == deleted["clients"] == 0
    assert await _count(runtime, KeyUsageHourly) == await _count(runtime, KeyClient) == 1


def _count_batches(monkeypatch: pytest.MonkeyPatch, size: int) -> list[int]:
    """Batches of `size` rows from now on; returns the list of rows each batch deleted."""
    batches: list[int] = []
    original = housekeeping._delete_batch

    async def counting(*args: Any) -> int:
        batches.append(deleted := await original(*args))
        return deleted

    monkeypatch.setattr(housekeeping, "BATCH", size)
    monkeypatch.setattr(housekeeping, "_delete_batch", counting)
    return batches


async def test_a_backlog_is_deleted_in_batches_up_to_the_cutoff(
    quiet: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, now = quiet.runtime, utcnow()
    cutoff = now - 400 * DAY
    async with runtime.transaction() as db:
        db.add_all(_usage(f"key_{n}", cutoff - timedelta(minutes=7 * n + 1)) for n in range(60))
        db.add(_usage("key_kept", cutoff + timedelta(seconds=1)))
    batches = _count_batches(monkeypatch, size=7)
    assert (await sweep(runtime.sessions, Retention(), now))["usage_rows"] == 60
    # Each batch its own transaction; a short one ends a kind (then one look at clients and
    # at deliveries finds nothing; audit events are kept forever).
    assert batches == [7] * 8 + [4, 0, 0]
    assert await _count(runtime, KeyUsageHourly) == 1


async def test_a_sweep_stops_between_two_batches_when_asked(
    quiet: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, now = quiet.runtime, utcnow()
    async with runtime.transaction() as db:
        db.add_all(_usage(f"key_{n}", now - 500 * DAY) for n in range(20))
    batches = _count_batches(monkeypatch, size=5)
    deleted = await sweep(runtime.sessions, Retention(), now, stopping=lambda: len(batches) == 2)
    assert deleted["usage_rows"] == 10
    assert await _count(runtime, KeyUsageHourly) == 10  # the rest waits for the next sweep


async def test_old_rows_are_found_through_their_timestamps_index(runtime: Runtime) -> None:
    every_kind = Retention(audit=365 * DAY)
    aged = housekeeping.past_retention(every_kind, utcnow())
    assert [name for name, _, _ in aged] == [
        "usage_rows",
        "clients",
        "webhook_deliveries",
        "audit_events",
    ]
    async with runtime.sessions() as db:
        dialect = db.get_bind().dialect.name
        for (_, stamp, where), index in zip(aged, INDEXES, strict=True):
            plan = await query_plan(db, housekeeping.batch_of(stamp.class_, where, dialect))
            assert any(index in line for line in plan), (index, plan)


INDEXES = [
    "ix_key_usage_hourly_hour",
    "ix_key_clients_last_seen",
    "ix_webhook_deliveries_created_at",
    "ix_audit_events_created_at",
]


async def test_anomaly_detection_finds_the_hours_keys_through_an_index(runtime: Runtime) -> None:
    # Every five minutes it asks for every key used in the current hour: without this index,
    # a scan of the whole usage history.
    query = keys_used_in(utcnow().replace(minute=0, second=0, microsecond=0), "")
    async with runtime.sessions() as db:
        plan = await query_plan(db, query)
    assert any("ix_key_usage_hourly_hour" in line for line in plan), plan


@pytest.mark.parametrize("name", ["usage_retention_days", "client_retention_days"])
def test_a_retention_too_short_for_its_readers_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="keep at least 31 days"):
        Settings(**{name: 30}, _env_file=None)  # type: ignore[arg-type]
    assert getattr(Settings(**{name: 31}, _env_file=None), name) == 31  # type: ignore[arg-type]
    assert getattr(Settings(**{name: 0}, _env_file=None), name) == 0  # type: ignore[arg-type]


def test_the_shortest_retention_keeps_what_the_audit_and_rotations_read() -> None:
    shortest = timedelta(days=MIN_RETENTION_DAYS)
    assert shortest > PRIVILEGE_WINDOW  # the quarterly audit's "unused permissions"
    assert shortest > timedelta(seconds=MAX_GRACE_SECONDS)  # "still used by N systems"
    assert shortest > HISTORY  # anomaly baselines
