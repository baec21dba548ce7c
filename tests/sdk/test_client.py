"""The SDK against a live server over real HTTP: configuration from the environment, the
resources of DESIGN §6, pagination iterators, typed errors and 429 retries."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
import pytest

from keyplane.sdk import Client, errors
from keyplane.sdk.errors import ConfigurationError
from tests.sdk.conftest import LiveServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEYPLANE_API_KEY", "KEYPLANE_PROJECT_ID", "KEYPLANE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOTBRAINS_API_KEY", "sk_live_from_botbrains")
    monkeypatch.setenv("BOTBRAINS_PROJECT_ID", "123")
    client = Client()
    assert (client.config.api_key, client.config.project_id) == ("sk_live_from_botbrains", 123)
    monkeypatch.setenv("KEYPLANE_API_KEY", "sk_live_from_keyplane")
    monkeypatch.setenv("KEYPLANE_PROJECT_ID", "7")
    monkeypatch.setenv("KEYPLANE_BASE_URL", "http://127.0.0.1:9/")
    client = Client()
    assert client.config.api_key == "sk_live_from_keyplane"
    assert client.path("users", "a/b") == "/v1/projects/7/users/a%2Fb"
    assert client.config.base_url == "http://127.0.0.1:9"
    assert Client(api_key="explicit", project_id=5).config.project_id == 5
    monkeypatch.delenv("KEYPLANE_API_KEY")
    monkeypatch.delenv("BOTBRAINS_API_KEY")
    with pytest.raises(ConfigurationError, match="KEYPLANE_API_KEY"):
        Client()
    with pytest.raises(ConfigurationError, match="project id"):
        Client(api_key="k", project_id="abc")


async def test_conversations(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("conversation:generate", "project:read")
    with Client(key, world.project_id, live_server.base_url) as client:
        made = [
            client.conversations.create(user_id=f"user_{n % 2}", message=f"Question {n}")
            for n in range(5)
        ]
        assert made[0].user_id == "user_0"
        assert made[0].messages[0].content == "Question 0"
        page = client.conversations.list(limit=50, status="unresolved")
        assert [c.id for c in page.data] == [c.id for c in reversed(made)]
        assert page.next_cursor is None
        assert [c.id for c in client.conversations.iter(page_size=2)] == [
            c.id for c in reversed(made)
        ]
        only = list(client.conversations.iter(user_id="user_1", page_size=1))
        assert {c.user_id for c in only} == {"user_1"}
        assert len(only) == 2
        assert client.conversations.get(made[0].id).status == "unresolved"
        assert client.conversations.get(made[0].id)["user_id"] == "user_0"
        assert [m.role for m in client.conversations.messages(made[0].id)] == ["user"]
        assert client.project().id == world.project_id


async def test_tables_files_deployments(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("table:write", "file:write", "deployment:update")
    with Client(key, world.project_id, live_server.base_url) as client:
        table = client.tables.create(
            name="plans",
            columns=[{"name": "tier", "type": "text"}, {"name": "seats", "type": "number"}],
        )
        assert [c.type for c in table.columns] == ["text", "number"]
        rows = [client.tables.add_row(table.id, {"tier": f"t{n}", "seats": n}) for n in range(3)]
        client.tables.update_row(table.id, rows[0].id, {"seats": 10})
        client.tables.delete_row(table.id, rows[1].id)
        assert [r.values["seats"] for r in client.tables.iter_rows(table.id, page_size=1)] == [
            10,
            2,
        ]
        assert [r.id for r in client.tables.rows(table.id, filter="tier:t2").data] == [rows[2].id]
        assert [t.name for t in client.tables.iter()] == ["plans"]

        uploaded = client.files.upload(PNG, filename="logo.png")
        assert uploaded.content_type == "image/png"
        assert client.files.download(uploaded.id) == PNG
        assert client.files.get(uploaded.id).sha256 == uploaded.sha256
        assert [f.id for f in client.files.iter()] == [uploaded.id]
        client.files.delete(uploaded.id)
        with pytest.raises(errors.NotFound):
            client.files.get(uploaded.id)

        deployment = client.deployments.create(channel="web", name="Site", config={"color": "blue"})
        assert deployment.status == "active"
        assert [d.id for d in client.deployments.iter()] == [deployment.id]


async def test_metrics_and_exports(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("conversation:generate", "metric:read", "full_export:read")
    with Client(key, world.project_id, live_server.base_url) as client:
        made = client.conversations.create(user_id="crm-1", message="Hello")
        now = datetime.now()
        metrics = client.metrics.get(start_date=now - timedelta(days=7), end_date=now)
        assert len(metrics.data) == 8
        assert metrics.data[-1].conversations == 1
        assert metrics["data"][-1]["messages"] == 1
        plain = list(client.exports.conversations())
        assert [line["id"] for line in plain] == [made.id]
        assert plain[0]["user_id"] != "crm-1"
        full = list(client.exports.full())
        assert full[0]["user"]["external_id"] == "crm-1"


async def test_typed_errors(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("table:read")
    with Client(key, world.project_id, live_server.base_url) as client:
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.tables.create(name="t", columns=[{"name": "a", "type": "text"}])
        assert denied.value.required == "table:write"
        assert denied.value.status == 403
        assert denied.value.code == "insufficient_permissions"
        with pytest.raises(errors.NotFound):
            client.tables.rows(999)
        with pytest.raises(errors.ValidationError) as invalid:
            client.tables.list(cursor="garbage")
        assert invalid.value.details
    other = await world.project()
    with Client(key, other, live_server.base_url) as client, pytest.raises(errors.ProjectMismatch):
        client.tables.list()
    truncated = key[:-3]
    with Client(truncated, world.project_id, live_server.base_url) as client:
        with pytest.raises(errors.MalformedApiKey) as malformed:
            client.tables.list()
        assert isinstance(malformed.value, errors.AuthenticationError)
    writer = await world.project_key("file:write")
    with (
        Client(writer, world.project_id, live_server.base_url) as client,
        pytest.raises(errors.UnsupportedMediaType),
    ):
        client.files.upload(b"MZ\x90\x00", filename="tool.png", content_type="image/png")
    with (
        Client(key, world.project_id, "http://127.0.0.1:9") as client,
        pytest.raises(errors.ConnectionFailed),
    ):
        client.tables.list()


def _spend_burst(client: Client) -> errors.RateLimitExceeded:
    """Requests until the first 429 (with a client that does not retry)."""
    for _ in range(200):
        try:
            client.project()
        except errors.RateLimitExceeded as limited:
            return limited
    raise AssertionError("never rate limited")


async def test_rate_limited_requests_are_retried(live_server: LiveServer) -> None:
    """A 429 is retried after Retry-After, up to max_retries; a wait above max_retry_wait, or
    no retries left, raises RateLimitExceeded with retry_after."""
    world = live_server.world
    base = live_server.base_url
    # 60/min refills one request a second: Retry-After is 1 s once the burst is spent.
    key = await world.project_key("project:read", rate_limit={"per_minute": 60})
    statuses: list[int] = []

    def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    with (
        httpx.Client(event_hooks={"response": [record]}) as watched,
        Client(key, world.project_id, base, max_retries=0) as single,
        Client(key, world.project_id, base, max_retries=5, http_client=watched) as patient,
    ):
        assert _spend_burst(single).retry_after >= 1
        started = time.monotonic()
        for _ in range(3):
            assert patient.project().id == world.project_id
        assert 429 in statuses
        assert time.monotonic() - started >= 1
    # 6/min: Retry-After is about 10 s, above the 0.5 s this client is willing to wait.
    slow = await world.project_key("project:read", rate_limit={"per_minute": 6})
    with Client(slow, world.project_id, base, max_retry_wait=0.5) as impatient:
        started = time.monotonic()
        assert _spend_burst(impatient).retry_after > 1
        assert time.monotonic() - started < 5
