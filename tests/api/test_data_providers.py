"""Data providers and their sync job: a directory of Markdown/HTML/text files or a list of
URLs (served by a real HTTP server on 127.0.0.1) becomes snippets, idempotently."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyplane.domain.keyformat import Mode
from keyplane.services import data_providers
from keyplane.settings import Settings
from tests.api.stub_server import Reply, serve
from tests.conftest import World, bearer

GUIDE = "# Resetting your password\n\nOpen the sign-in page and click *Forgot password*.\n"
FAQ = (
    "<html><head><title>Shipping FAQ</title><style>p {color: red}</style>"
    "<script>var secret = 1;</script></head>"
    "<body><h1>Frequently asked</h1><p>We ship worldwide &amp; fast.</p></body></html>"
)


def _base(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def _create(
    client: httpx.AsyncClient, world: World, key: str, type_: str, config: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"{_base(world)}/data-providers",
        headers=bearer(key),
        json={"name": "Docs", "type": type_, "config": config},
    )


async def _sync(
    client: httpx.AsyncClient, world: World, key: str, provider_id: int
) -> dict[str, Any]:
    """Start a sync the way the guide's GitHub Actions step does, wait, return the provider."""
    started = await client.post(
        f"{_base(world)}/data-providers/{provider_id}/sync",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert started.status_code == 202, started.text
    assert started.json()["sync"]["status"] in ("pending", "running")
    await world.runtime.jobs.wait()
    listed = await client.get(f"{_base(world)}/data-providers", headers=bearer(key))
    (provider,) = [p for p in listed.json()["data"] if p["id"] == provider_id]
    return provider


async def _snippets(client: httpx.AsyncClient, world: World, key: str) -> dict[str, Any]:
    page = await client.get(f"{_base(world)}/snippets", headers=bearer(key), params={"limit": 100})
    return {s["source"]: s for s in page.json()["data"]}


async def test_a_directory_sync_makes_snippets_and_follows_changes(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "nested").mkdir(parents=True)
    (docs / "guide.md").write_text(GUIDE)
    (docs / "faq.html").write_text(FAQ)
    (docs / "notes.txt").write_text("Support hours are 9 to 5.")
    (docs / "nested" / "refunds.md").write_text("Refunds within 30 days.")
    (docs / "logo.png").write_bytes(b"\x89PNG not knowledge")
    (docs / "latin1.txt").write_bytes(b"Caf\xe9 opening hours")  # not UTF-8: still read
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("# Private\n\nnot to be read")
    (docs / "escape.md").symlink_to(outside)
    key = await world.project_key("knowledge:write", "conversation:generate")
    created = await _create(client, world, key, "directory", {"path": str(docs)})
    assert created.status_code == 201, created.text
    assert created.json()["sync"]["status"] == "idle"
    provider = await _sync(client, world, key, created.json()["id"])
    assert provider["sync"]["status"] == "succeeded", provider
    assert provider["sync"]["snippets_created"] == 5
    assert provider["sync"]["finished_at"] is not None
    snippets = await _snippets(client, world, key)
    assert set(snippets) == {"guide.md", "faq.html", "notes.txt", "nested/refunds.md", "latin1.txt"}
    assert snippets["guide.md"]["title"] == "Resetting your password"
    assert snippets["faq.html"]["title"] == "Shipping FAQ"
    assert "We ship worldwide & fast." in snippets["faq.html"]["content"]
    assert "secret" not in snippets["faq.html"]["content"]  # scripts are not text
    assert snippets["notes.txt"]["title"] == "notes"
    assert snippets["latin1.txt"]["content"].startswith("Caf\ufffd")
    assert {s["data_provider_id"] for s in snippets.values()} == {created.json()["id"]}

    # Idempotent: nothing changed, nothing written.
    again = await _sync(client, world, key, created.json()["id"])
    assert [again["sync"][f"snippets_{n}"] for n in ("created", "updated", "removed")] == [0, 0, 0]
    assert await _snippets(client, world, key) == snippets

    (docs / "guide.md").write_text(GUIDE + "\nYou can also reset it from the mobile app.\n")
    (docs / "notes.txt").unlink()
    (docs / "new.md").write_text("# Gift cards\n\nGift cards never expire.")
    changed = await _sync(client, world, key, created.json()["id"])
    assert [changed["sync"][f"snippets_{n}"] for n in ("created", "updated", "removed")] == [
        1,
        1,
        1,
    ]
    after = await _snippets(client, world, key)
    assert "notes.txt" not in after
    assert after["guide.md"]["id"] == snippets["guide.md"]["id"]
    assert "mobile app" in after["guide.md"]["content"]

    # The synced knowledge answers questions.
    conversation = await client.post(
        f"{_base(world)}/conversations",
        headers=bearer(key),
        json={"user_id": "u", "message": "Do gift cards expire?"},
    )
    answer = await client.post(
        f"{_base(world)}/conversations/{conversation.json()['id']}/generate", headers=bearer(key)
    )
    assert answer.json()["sources"][0]["title"] == "Gift cards"


async def test_a_vanished_directory_fails_the_sync_and_keeps_the_snippets(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\ntext")
    key = await world.project_key("knowledge:write")
    created = await _create(client, world, key, "directory", {"path": str(docs)})
    await _sync(client, world, key, created.json()["id"])
    (docs / "a.md").unlink()
    docs.rmdir()
    failed = await _sync(client, world, key, created.json()["id"])
    assert failed["sync"]["status"] == "failed"
    assert "is not a directory" in failed["sync"]["last_error"]
    assert set(await _snippets(client, world, key)) == {"a.md"}


async def test_directories_outside_the_allowed_roots_are_refused(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    key = await world.project_key("knowledge:write")
    for path in ("/etc", "relative/docs", str(tmp_path / ".." / ".."), str(tmp_path / "missing")):
        response = await _create(client, world, key, "directory", {"path": path})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "validation_error"
        assert response.json()["details"][0]["loc"] == ["body", "config", "path"]
    listed = await client.get(f"{_base(world)}/data-providers", headers=bearer(key))
    assert listed.json()["data"] == []


async def test_bad_provider_bodies_are_422(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("knowledge:write")
    for type_, config in (
        ("directory", {"urls": ["https://example.com/"]}),
        ("urls", {"path": "/tmp"}),
        ("urls", {"urls": []}),
        ("urls", {"urls": ["file:///etc/passwd"]}),
        ("urls", {"urls": ["https://example.com/"] * 101}),
        ("urls", {"urls": ["https://example.com/"], "depth": 2}),
        ("sitemap", {"urls": ["https://example.com/"]}),
    ):
        response = await _create(client, world, key, type_, config)
        assert response.status_code == 422, (type_, config, response.text)


async def test_a_url_sync_fetches_over_http(client: httpx.AsyncClient, world: World) -> None:
    routes = {
        "/docs/shipping.html": Reply(body=FAQ.encode()),
        "/docs/guide.md": Reply(content_type="text/markdown", body=GUIDE.encode()),
        "/docs/logo.png": Reply(content_type="image/png", body=b"\x89PNG"),
        "/docs/huge.txt": Reply(content_type="text/plain", body=b"x" * 2_000_001),
        "/old-home": Reply(301, "text/plain", b""),
        "/metadata": Reply(302, "text/plain", b""),
    }
    key = await world.project_key("knowledge:write")
    with serve(routes) as stub:
        # Redirects are followed, each hop checked: never to a link-local (cloud metadata)
        # address.
        stub.headers["/old-home"] = {"Location": "/docs/shipping.html"}
        stub.headers["/metadata"] = {"Location": "http://169.254.169.254/latest/meta-data/"}
        urls = [f"{stub.base_url}{path}" for path in [*routes, "/docs/missing.html"]]
        created = await _create(client, world, key, "urls", {"urls": urls})
        assert created.status_code == 201, created.text
        provider = await _sync(client, world, key, created.json()["id"])
        sync = provider["sync"]
        assert (sync["status"], sync["snippets_created"]) == ("failed", 3)
        for problem in (
            "logo.png: content type 'image/png'",
            "huge.txt: larger than",
            "missing.html: answered HTTP 404",
            "metadata: 169.254.169.254 resolves to 169.254.169.254, which is not fetched",
        ):
            assert problem in sync["last_error"]
        snippets = await _snippets(client, world, key)
        assert snippets[urls[0]]["title"] == "Shipping FAQ"
        assert snippets[urls[0]]["url"] == urls[0]
        assert snippets[urls[1]]["title"] == "Resetting your password"
        assert snippets[urls[4]]["title"] == "Shipping FAQ"  # via the redirect
        assert len(stub.requests) == len(urls) + 1
        # A page that is failing now keeps its snippet: a transient error deletes nothing.
        del stub.routes["/docs/guide.md"]
        again = await _sync(client, world, key, created.json()["id"])
        assert again["sync"]["snippets_removed"] == 0
        assert urls[1] in await _snippets(client, world, key)


async def test_providers_and_their_snippets_stay_in_their_mode(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text("# Test data\n\nonly for tests")
    live = await world.project_key("knowledge:write")
    test = await world.project_key("knowledge:write", test=True)
    made = await _create(client, world, test, "directory", {"path": str(tmp_path)})
    provider_id = made.json()["id"]
    denied = await client.post(
        f"{_base(world)}/data-providers/{provider_id}/sync", headers=bearer(live)
    )
    assert denied.status_code == 404
    assert (await client.get(f"{_base(world)}/data-providers", headers=bearer(live))).json()[
        "data"
    ] == []
    await _sync(client, world, test, provider_id)
    assert set(await _snippets(client, world, test)) == {"a.md"}
    assert await _snippets(client, world, live) == {}


def test_allowed_roots_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEYPLANE_DATA_PROVIDER_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    monkeypatch.setenv("KEYPLANE_TRUSTED_PROXIES", "10.0.0.0/8,192.168.0.1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.knowledge_roots == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.0.1"]
    assert Settings(data_dir=tmp_path, _env_file=None).knowledge_roots != []  # type: ignore[call-arg]


async def test_a_sync_requested_while_one_is_pending_joins_it(
    client: httpx.AsyncClient, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.md").write_text("# A\n\ntext")
    key = await world.project_key("knowledge:write")
    created = await _create(client, world, key, "directory", {"path": str(tmp_path)})
    path = f"{_base(world)}/data-providers/{created.json()['id']}/sync"
    # The first sync is held until both requests have been answered, so the second always
    # finds it pending or running (on a slow machine the job used to finish in between).
    both_answered = asyncio.Event()
    collect = data_providers._collect

    async def held(*args: Any) -> Any:
        await both_answered.wait()
        return await collect(*args)

    monkeypatch.setattr(data_providers, "_collect", held)
    first, second = await asyncio.gather(
        client.post(path, headers=bearer(key)), client.post(path, headers=bearer(key))
    )
    both_answered.set()
    assert first.status_code == second.status_code == 202
    await world.runtime.jobs.wait()
    listed = await client.get(f"{_base(world)}/data-providers", headers=bearer(key))
    sync = listed.json()["data"][0]["sync"]
    assert (sync["status"], sync["snippets_created"]) == ("succeeded", 1)
    snippets = await _snippets(client, world, key)
    assert list(snippets) == ["a.md"]  # one snippet, not one per request


async def test_two_sync_requests_at_once_start_one_sync(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    key = await world.project_key("knowledge:write")
    created = await _create(client, world, key, "directory", {"path": str(tmp_path)})
    provider_id = created.json()["id"]

    async def request(commit_after: float) -> bool:
        async with world.runtime.sessions() as db:
            _, start = await data_providers.request_sync(
                db, world.project_id, Mode.LIVE, provider_id
            )
            await asyncio.sleep(commit_after)  # the other request arrives meanwhile
            await db.commit()
        return start

    # Both read the provider before either commits: only one may start the job.
    starts = await asyncio.gather(request(0.3), request(0))
    assert sorted(starts) == [False, True]
