"""Metrics (DESIGN §6): counts per day, week or month computed in SQL, every bucket of the
range present, the range validated."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from keyplane.adapters.sql.models import Conversation, EndUser, Message
from keyplane.domain.keyformat import Mode
from keyplane.services.conversations import end_user
from tests.conftest import World, bearer


async def _conversation(
    world: World,
    when: datetime,
    roles: list[str],
    *,
    resolved: bool = False,
    mode: Mode = Mode.LIVE,
) -> None:
    async with world.runtime.transaction() as db:
        user: EndUser = await end_user(db, world.project_id, mode, "u")
        conversation = Conversation(
            project_id=world.project_id,
            mode=mode,
            end_user_id=user.id,
            status="resolved" if resolved else "unresolved",
            labels=[],
            created_at=when,
            updated_at=when,
        )
        db.add(conversation)
        await db.flush()
        for role in roles:
            db.add(
                Message(conversation_id=conversation.id, role=role, content="x", created_at=when)
            )


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def test_daily_weekly_monthly(client: httpx.AsyncClient, world: World) -> None:
    # 2026-03-02 is a Monday.
    await _conversation(world, _at("2026-03-02", 0), ["user", "assistant"], resolved=True)
    await _conversation(world, _at("2026-03-02", 23), ["user"])
    await _conversation(world, _at("2026-03-04"), ["user", "assistant", "user", "assistant"])
    await _conversation(world, _at("2026-03-09"), ["user"], resolved=True)
    await _conversation(world, _at("2026-04-01"), ["user"])
    await _conversation(world, _at("2026-03-03"), ["user"], mode=Mode.TEST)  # other mode
    key = await world.project_key("metric:read")
    url = f"/v1/projects/{world.project_id}/metrics"

    async def get(**params: str) -> list[dict[str, object]]:
        response = await client.get(url, headers=bearer(key), params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, object]] = response.json()["data"]
        return data

    daily = await get(start_date="2026-03-01", end_date="2026-03-05", group_by="day")
    assert [d["date"] for d in daily] == [f"2026-03-0{n}" for n in range(1, 6)]
    assert daily[0] == {
        "date": "2026-03-01",
        "conversations": 0,
        "messages": 0,
        "resolved": 0,
        "generated_answers": 0,
    }
    assert daily[1] == {
        "date": "2026-03-02",
        "conversations": 2,
        "messages": 3,
        "resolved": 1,
        "generated_answers": 1,
    }
    assert daily[2]["conversations"] == 0  # the test-mode conversation is not counted
    assert daily[3]["messages"] == 4
    assert daily[3]["generated_answers"] == 2

    weekly = await get(start_date="2026-03-01", end_date="2026-03-15", group_by="week")
    assert [w["date"] for w in weekly] == ["2026-02-23", "2026-03-02", "2026-03-09"]
    assert [w["conversations"] for w in weekly] == [0, 3, 1]
    assert [w["resolved"] for w in weekly] == [0, 1, 1]

    monthly = await get(start_date="2026-02-15", end_date="2026-04-30", group_by="month")
    assert [(m["date"], m["conversations"]) for m in monthly] == [
        ("2026-02-01", 0),
        ("2026-03-01", 4),
        ("2026-04-01", 1),
    ]
    # The guide passes Python's datetime.isoformat() values; they count by their UTC day.
    timed = await get(start_date="2026-03-02T08:30:00.123456", end_date="2026-03-02T09:00:00+00:00")
    assert [d["conversations"] for d in timed] == [2]

    test_key = await world.project_key("metric:read", test=True)
    response = await client.get(
        url, headers=bearer(test_key), params={"start_date": "2026-03-03", "end_date": "2026-03-03"}
    )
    assert response.json()["data"][0]["conversations"] == 1


async def test_range_is_validated(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("metric:read")
    url = f"/v1/projects/{world.project_id}/metrics"
    for params, needle in (
        ({"start_date": "2026-03-05", "end_date": "2026-03-01"}, "after"),
        ({"start_date": "2020-01-01", "end_date": "2026-01-01"}, "at most"),
        ({"start_date": "yesterday", "end_date": "2026-01-01"}, "start_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-01-02", "group_by": "year"}, "group_by"),
        ({"start_date": "2026-01-01"}, "end_date"),
    ):
        response = await client.get(url, headers=bearer(key), params=params)
        assert response.status_code == 422, params
        assert response.json()["error"] == "validation_error"
        assert needle in response.json()["message"], response.json()["message"]
