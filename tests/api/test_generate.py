"""`generate`: answers from the project's snippets through the database's full-text search
(SQLite FTS5, PostgreSQL tsvector), stored as an assistant message, with the sources used;
optionally written by an OpenAI-compatible provider (a real stub server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from pydantic import SecretStr

from keyplane.adapters.sql import search
from keyplane.api.app import create_app
from keyplane.runtime import Runtime
from tests.api.stub_server import Reply, serve
from tests.conftest import World, bearer

SNIPPETS = [
    {
        "title": "Resetting your password",
        "content": "To reset your password, open the sign-in page and click 'Forgot password'. "
        "We email you a reset link that is valid for 30 minutes. "
        "Our office is closed on public holidays.",
        "url": "https://docs.example.com/password",
    },
    {
        "title": "Refund policy",
        "content": "Refunds are possible within 30 days of purchase. Contact billing to ask.",
    },
    {
        "title": "Two-factor authentication",
        "content": "Enable two-factor authentication in your account settings for security.",
    },
]


async def _setup(client: httpx.AsyncClient, world: World, *, test: bool = False) -> str:
    key = await world.project_key(
        "knowledge:write", "conversation:generate", "conversation:read", test=test
    )
    for snippet in SNIPPETS:
        made = await client.post(
            f"/v1/projects/{world.project_id}/snippets", headers=bearer(key), json=snippet
        )
        assert made.status_code == 201, made.text
    return key


async def _ask(client: httpx.AsyncClient, world: World, key: str, question: str) -> int:
    made = await client.post(
        f"/v1/projects/{world.project_id}/conversations",
        headers=bearer(key),
        json={"user_id": "user_123", "message": question},
    )
    conversation_id: int = made.json()["id"]
    return conversation_id


def _generate(world: World, conversation_id: int) -> str:
    return f"/v1/projects/{world.project_id}/conversations/{conversation_id}/generate"


async def test_answers_from_the_best_snippets_and_stores_the_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await _setup(client, world)
    conversation = await _ask(client, world, key, "How do I reset my password?")
    response = await client.post(
        _generate(world, conversation),
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    sources = body["sources"]
    assert sources[0]["title"] == "Resetting your password"
    assert sources[0]["url"] == "https://docs.example.com/password"
    assert sources[0]["score"] > 0
    assert "Refund policy" not in [s["title"] for s in sources]
    answer = body["message"]["content"]
    assert body["message"]["role"] == "assistant"
    # Extractive: the relevant sentences, cited; not the unrelated one.
    assert "click 'Forgot password'" in answer
    assert "[1]" in answer
    assert "public holidays" not in answer
    messages = await client.get(
        f"/v1/projects/{world.project_id}/conversations/{conversation}/messages",
        headers=bearer(key),
    )
    stored = messages.json()["data"][-1]
    assert (stored["id"], stored["role"], stored["content"]) == (
        body["message"]["id"],
        "assistant",
        answer,
    )


async def test_ranking_follows_the_question(client: httpx.AsyncClient, world: World) -> None:
    key = await _setup(client, world)
    conversation = await _ask(client, world, key, "Can I get refunds after a purchase?")
    body = (await client.post(_generate(world, conversation), headers=bearer(key))).json()
    assert [s["title"] for s in body["sources"]] == ["Refund policy"]
    assert "within 30 days" in body["message"]["content"]
    # The latest user message is the question.
    await client.post(
        f"/v1/projects/{world.project_id}/conversations/{conversation}/messages",
        headers=bearer(await world.project_key("conversation:write")),
        json={"content": "And how do I enable two-factor authentication?"},
    )
    body = (await client.post(_generate(world, conversation), headers=bearer(key))).json()
    assert body["sources"][0]["title"] == "Two-factor authentication"
    # Edits reach the index at once (triggers on SQLite, the expression index on PostgreSQL).
    snippet_id = body["sources"][0]["snippet_id"]
    await client.patch(
        f"/v1/projects/{world.project_id}/snippets/{snippet_id}",
        headers=bearer(key),
        json={"title": "Security keys", "content": "Hardware security keys are supported."},
    )
    body = (await client.post(_generate(world, conversation), headers=bearer(key))).json()
    assert snippet_id not in [s["snippet_id"] for s in body["sources"]]


async def test_nothing_matching_is_a_polite_answer_without_sources(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await _setup(client, world)
    for question in ("What is the airspeed of an unladen swallow?", "How do I?"):
        conversation = await _ask(client, world, key, question)
        response = await client.post(_generate(world, conversation), headers=bearer(key))
        assert response.status_code == 200
        assert response.json()["sources"] == []
        assert "could not find" in response.json()["message"]["content"]


async def test_only_the_same_mode_and_project_is_searched(
    client: httpx.AsyncClient, world: World
) -> None:
    live = await _setup(client, world)
    test = await world.project_key("conversation:generate", "knowledge:write", test=True)
    conversation = await _ask(client, world, test, "How do I reset my password?")
    body = (await client.post(_generate(world, conversation), headers=bearer(test))).json()
    assert body["sources"] == []  # the live snippets are not test data
    other = await world.project()
    theirs = await world.project_key("conversation:generate", project_id=other)
    made = await client.post(
        f"/v1/projects/{other}/conversations",
        headers=bearer(theirs),
        json={"user_id": "u", "message": "How do I reset my password?"},
    )
    body = (
        await client.post(
            f"/v1/projects/{other}/conversations/{made.json()['id']}/generate",
            headers=bearer(theirs),
        )
    ).json()
    assert body["sources"] == []
    missing = await client.post(_generate(world, 999_999), headers=bearer(live))
    assert missing.status_code == 404


@asynccontextmanager
async def _with_provider(runtime: Runtime, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = runtime.settings.model_copy(
        update={
            "llm_base_url": base_url,
            "llm_api_key": SecretStr("sk-provider-secret"),
            "llm_model": "m1",
        }
    )
    rt = await Runtime.start(settings, migrate=False, background=False)
    transport = httpx.ASGITransport(app=create_app(rt), client=("127.0.0.1", 50001))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
            yield c
    finally:
        await rt.close()


async def test_a_configured_provider_writes_the_answer_from_the_snippets(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await _setup(client, world)
    conversation = await _ask(client, world, key, "How do I reset my password?")
    completion = {"choices": [{"message": {"role": "assistant", "content": "Click it. [1]"}}]}
    with serve({"/v1/chat/completions": Reply.json(completion)}) as stub:
        async with _with_provider(world.runtime, stub.base_url + "/v1") as provider_client:
            response = await provider_client.post(
                _generate(world, conversation), headers=bearer(key)
            )
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == "Click it. [1]"
    assert response.json()["sources"][0]["title"] == "Resetting your password"
    (request,) = stub.requests
    assert request["headers"]["Authorization"] == "Bearer sk-provider-secret"
    sent = json.loads(request["body"])
    assert sent["model"] == "m1"
    assert "Forgot password" in sent["messages"][0]["content"]  # the snippets as context
    assert sent["messages"][-1] == {"role": "user", "content": "How do I reset my password?"}


async def test_a_failing_provider_falls_back_to_the_extractive_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await _setup(client, world)
    conversation = await _ask(client, world, key, "How do I reset my password?")
    with serve({"/v1/chat/completions": Reply(500, "text/plain", b"overloaded")}) as stub:
        async with _with_provider(world.runtime, stub.base_url + "/v1") as provider_client:
            response = await provider_client.post(
                _generate(world, conversation), headers=bearer(key)
            )
    assert len(stub.requests) == 1
    assert response.status_code == 200
    assert "Forgot password" in response.json()["message"]["content"]
    assert response.json()["sources"][0]["title"] == "Resetting your password"


async def test_postgresql_searches_through_the_gin_index(
    client: httpx.AsyncClient, world: World
) -> None:
    """The retrieval query's expression is the indexed one, so PostgreSQL can use the index
    (SQLite's FTS5 table is an index by construction)."""
    if not world.runtime.settings.database_url.startswith("postgresql"):
        return
    await _setup(client, world)
    async with world.runtime.engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")
        await connection.exec_driver_sql("SET enable_indexscan = off")  # not the scope index
        plan = (
            (
                await connection.exec_driver_sql(
                    f"EXPLAIN SELECT s.id FROM snippets s WHERE {search.PG_DOCUMENT} "
                    "@@ to_tsquery('english', 'password')"
                )
            )
            .scalars()
            .all()
        )
    assert any("ix_snippets_search" in line for line in plan), plan


async def test_query_syntax_in_questions_is_just_text(
    client: httpx.AsyncClient, world: World
) -> None:
    """Words go to FTS5 and to_tsquery as quoted or plain terms: operators in a question are
    never query syntax, on either database."""
    key = await _setup(client, world)
    for question in (
        'password" OR "refund',
        "password* NEAR(refund) -two AND NOT",
        "reset & password | !refund:* <-> (x)",
        "Größe? ünïcödé 密码 重置 🔑 password",
        "' ; DROP TABLE snippets; --",
        "\\ \\\\ %s {} [] password",
    ):
        conversation = await _ask(client, world, key, question)
        response = await client.post(_generate(world, conversation), headers=bearer(key))
        assert response.status_code == 200, (question, response.text)
    snippets = await client.get(f"/v1/projects/{world.project_id}/snippets", headers=bearer(key))
    assert len(snippets.json()["data"]) == len(SNIPPETS)
