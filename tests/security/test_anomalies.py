"""Anomaly detection over real hourly rollups and key clients, on each storage backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from keyplane.adapters.sql.models import Alert, KeyClient, KeyUsageHourly
from keyplane.api.app import create_app
from keyplane.domain.geoip import GeoTable
from keyplane.runtime import Runtime
from keyplane.services.anomalies import load_geoip
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

NOW = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # a Tuesday, 03:30 UTC
CURRENT = NOW.replace(minute=0)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        anomaly_interval_seconds=0.1,
        usage_retention_days=0,  # rows dated months back stay (see tests/conftest.py)
        client_retention_days=0,
        _env_file=None,  # type: ignore[call-arg]
    )


async def _key_id(world: World) -> str:
    secret = await world.project_key("project:read", name="Support bot")
    return (await world.runtime.verifier.verify(f"Bearer {secret}")).id


async def _usage(
    runtime: Runtime, key_id: str, counts: dict[datetime, int], klass: str = "success"
) -> None:
    async with runtime.transaction() as db:
        for hour, count in counts.items():
            db.add(
                KeyUsageHourly(
                    key_id=key_id,
                    hour=hour,
                    status_class=klass,
                    permission="project:read",
                    count=count,
                )
            )


def _office_hours(
    days: int, per_hour: int = 10, current: datetime = CURRENT
) -> dict[datetime, int]:
    """Traffic 09:00-18:00 UTC every day of the `days` days before `current`."""
    hours = {}
    for back in range(1, days * 24 + 1):
        hour = current - timedelta(hours=back)
        if 9 <= hour.hour < 18:
            hours[hour] = per_hour
    return hours


async def _alerts(runtime: Runtime) -> list[Alert]:
    async with runtime.sessions() as db:
        return list(await db.scalars(select(Alert).order_by(Alert.id)))


async def test_a_volume_spike_alerts_once_per_hour(world: World, runtime: Runtime) -> None:
    key_id = await _key_id(world)
    await _usage(runtime, key_id, {CURRENT - timedelta(hours=h): 40 for h in range(1, 49)})
    await _usage(runtime, key_id, {CURRENT: 150})
    assert await runtime.anomalies.run_once(NOW) == 0  # 150 < 5 x 40
    await _usage(runtime, key_id, {CURRENT: 100}, klass="client_error")  # 250 > 200
    assert await runtime.anomalies.run_once(NOW) == 1
    assert await runtime.anomalies.run_once(NOW) == 0  # deduplicated
    [alert] = await _alerts(runtime)
    assert alert.kind == "volume_spike"
    assert alert.key_id == key_id
    assert alert.project_id == world.project_id
    assert alert.details["count"] == 250
    assert alert.details["baseline"] == 40
    assert "Support bot" in alert.message


async def test_a_young_key_has_no_baseline_yet(world: World, runtime: Runtime) -> None:
    key_id = await _key_id(world)
    await _usage(runtime, key_id, {CURRENT - timedelta(hours=h): 1 for h in range(1, 5)})
    await _usage(runtime, key_id, {CURRENT: 5000})
    assert await runtime.anomalies.run_once(NOW) == 0


async def test_a_burst_of_permission_errors(world: World, runtime: Runtime) -> None:
    key_id = await _key_id(world)
    await _usage(runtime, key_id, {CURRENT: 25}, klass="forbidden")
    assert await runtime.anomalies.run_once(NOW) == 1
    [alert] = await _alerts(runtime)
    assert alert.kind == "permission_error_burst"
    assert alert.details["count"] == 25


async def test_off_hours_activity(world: World, runtime: Runtime) -> None:
    key_id = await _key_id(world)
    await _usage(runtime, key_id, _office_hours(days=5))
    await _usage(runtime, key_id, {CURRENT: 30})  # 03:00, never used then before
    assert await runtime.anomalies.run_once(NOW) == 1
    [alert] = await _alerts(runtime)
    assert alert.kind == "off_hours"
    assert "03:00 UTC" in alert.message
    assert alert.details["profile"][3] == 0


async def test_office_hours_are_not_off_hours(world: World, runtime: Runtime) -> None:
    key_id = await _key_id(world)
    now = NOW.replace(hour=10)
    await _usage(runtime, key_id, _office_hours(days=5, current=now.replace(minute=0)))
    await _usage(runtime, key_id, {now.replace(minute=0): 30})
    assert await runtime.anomalies.run_once(now) == 0


async def _client(runtime: Runtime, key_id: str, ip: str, first_seen: datetime) -> None:
    async with runtime.transaction() as db:
        db.add(
            KeyClient(
                key_id=key_id,
                ip=ip,
                user_agent="crm/2.1",
                first_seen=first_seen,
                last_seen=first_seen,
                count=1,
            )
        )


async def test_a_new_network_alerts_and_a_known_one_does_not(
    world: World, runtime: Runtime
) -> None:
    key_id = await _key_id(world)
    await _client(runtime, key_id, "10.1.2.3", NOW - timedelta(days=3))
    await _client(runtime, key_id, "2001:db8:1::5", NOW - timedelta(days=3))
    await _client(runtime, key_id, "10.1.200.7", NOW - timedelta(minutes=5))  # same /16
    await _client(runtime, key_id, "2001:db8:1:ffff::9", NOW - timedelta(minutes=5))  # same /48
    assert await runtime.anomalies.run_once(NOW) == 0
    await _client(runtime, key_id, "198.51.100.7", NOW - timedelta(minutes=4))
    assert await runtime.anomalies.run_once(NOW) == 1
    assert await runtime.anomalies.run_once(NOW) == 0
    [alert] = await _alerts(runtime)
    assert alert.kind == "new_network"
    assert alert.details["network"] == "198.51.0.0/16"
    assert "198.51.100.7" in alert.message


async def test_with_a_country_database_a_new_country_alerts_instead(
    world: World, runtime: Runtime
) -> None:
    runtime.anomalies.geoip = GeoTable.from_rows(
        ["10.0.0.0,10.255.255.255,DE", "192.0.2.0,192.0.2.255,DE", "198.51.100.0,198.51.100.255,FR"]
    )
    key_id = await _key_id(world)
    await _client(runtime, key_id, "10.1.2.3", NOW - timedelta(days=3))
    await _client(runtime, key_id, "192.0.2.7", NOW - timedelta(minutes=5))  # new /16, same DE
    assert await runtime.anomalies.run_once(NOW) == 0
    await _client(runtime, key_id, "198.51.100.7", NOW - timedelta(minutes=4))
    assert await runtime.anomalies.run_once(NOW) == 1
    [alert] = await _alerts(runtime)
    assert alert.kind == "new_country"
    assert alert.severity == "high"
    assert alert.details["country"] == "FR"
    assert alert.details["known"] == ["DE"]


def test_the_country_file_is_read_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "geo.csv"
    path.write_text("start_ip,end_ip,country\n10.0.0.0,10.255.255.255,DE\n")
    table = load_geoip(path)
    assert table is not None
    assert table.country("10.9.9.9") == "DE"
    assert load_geoip(tmp_path / "missing.csv") is None
    assert load_geoip(None) is None


@pytest.fixture
async def far_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), client=("198.51.100.7", 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
        yield c


async def test_end_to_end_a_request_from_a_new_network_is_alerted_in_the_background(
    client: httpx.AsyncClient, far_client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    secret = await world.project_key("project:read", name="Support bot")
    project = f"/v1/projects/{world.project_id}"
    assert (await client.get(project, headers=bearer(secret))).status_code == 200
    await runtime.changes.flush()
    await asyncio.sleep(0.01)
    assert (await far_client.get(project, headers=bearer(secret))).status_code == 200
    await runtime.changes.flush()
    admin = await world.user_key("api_key:read")
    for _ in range(100):
        listed = await client.get(f"{project}/alerts", headers=bearer(admin))
        if listed.json()["data"]:
            break
        await asyncio.sleep(0.05)
    [alert] = listed.json()["data"]
    assert alert["kind"] == "new_network"
    assert alert["details"]["ip"] == "198.51.100.7"


async def test_many_keys_are_judged_in_batches(
    world: World, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two: every key past the first batch must still be judged, once.
    monkeypatch.setattr("keyplane.services.anomalies.BATCH", 2)
    spiking, moving = [], []
    for _ in range(3):
        key_id = await _key_id(world)
        await _usage(runtime, key_id, {CURRENT - timedelta(hours=h): 40 for h in range(1, 49)})
        await _usage(runtime, key_id, {CURRENT: 250})
        spiking.append(key_id)
    for _ in range(3):
        key_id = await _key_id(world)
        await _client(runtime, key_id, "10.1.2.3", NOW - timedelta(days=3))
        await _client(runtime, key_id, "10.1.9.9", NOW - timedelta(minutes=6))  # same /16
        await _client(runtime, key_id, "198.51.100.7", NOW - timedelta(minutes=5))
        moving.append(key_id)
    assert await runtime.anomalies.run_once(NOW) == 6
    assert await runtime.anomalies.run_once(NOW) == 0
    alerts = await _alerts(runtime)
    assert sorted(a.key_id for a in alerts if a.kind == "volume_spike") == sorted(spiking)
    assert sorted(a.key_id for a in alerts if a.kind == "new_network") == sorted(moving)
