"""The botBrains guide's "Export Analytics for BI Tools" example, run as written against a
live server (only the base URL, project id and key changed), with a key holding exactly the
permissions the guide lists: metric:read, conversation:read, export:read.

The guide hands `metrics['data']` to pandas and a warehouse; pandas is not a dependency, so
the test checks that the list is what `pd.DataFrame(...)` needs: one uniform record per day."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests
from httpx import ASGITransport, AsyncClient

from keyplane.api.app import create_app
from tests.conftest import World, bearer
from tests.sdk.conftest import LiveServer


@pytest.fixture
async def guide_key(world: World) -> str:
    seed = await world.project_key("conversation:generate")
    transport = ASGITransport(app=create_app(world.runtime))
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        made = await client.post(
            f"/v1/projects/{world.project_id}/conversations",
            headers=bearer(seed),
            json={"user_id": "user_123", "message": "How do I reset my password?"},
        )
        assert made.status_code == 201
    return await world.project_key("metric:read", "conversation:read", "export:read")


def test_analytics_export_runs_as_written(live_server: LiveServer, guide_key: str) -> None:
    project_id = live_server.world.project_id
    api_key = guide_key
    base = live_server.base_url  # was https://api.botbrains.io

    def export_weekly_metrics() -> list[dict[str, object]]:
        # Fetch metrics from botBrains
        response = requests.get(
            f"{base}/v1/projects/{project_id}/metrics",
            headers={"Authorization": f"Bearer {api_key}"},
            params={
                "start_date": (datetime.now() - timedelta(days=7)).isoformat(),
                "end_date": datetime.now().isoformat(),
                "group_by": "day",
            },
            timeout=10,
        )

        metrics = response.json()

        # Convert to DataFrame for analysis (pd.DataFrame(metrics['data']))
        rows: list[dict[str, object]] = metrics["data"]
        return rows

    weekly_metrics = export_weekly_metrics()
    assert len(weekly_metrics) == 8  # seven days back to today, both ends included
    assert {tuple(sorted(row)) for row in weekly_metrics} == {
        ("conversations", "date", "generated_answers", "messages", "resolved")
    }
    assert weekly_metrics[-1]["conversations"] == 1
    assert sum(int(str(row["messages"])) for row in weekly_metrics) == 1
