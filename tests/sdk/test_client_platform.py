"""The SDK's methods for conversations (update, messages, generate), end users, snippets, data
providers, labels and topics against a live server over real HTTP, sync and async: each
request and response shape as the server has it, and the typed errors a caller handles."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyplane.sdk import AsyncClient, Client, errors
from tests.sdk.conftest import LiveServer

PASSWORD_DOC = "# Resetting your password\n\nOpen the sign-in page and click Forgot password.\n"


async def test_conversation_messages_labels_and_generate(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key(
        "conversation:write", "conversation:generate", "knowledge:write", "label:read"
    )
    with Client(key, world.project_id, live_server.base_url) as client:
        snippet = client.snippets.create(
            title="Resetting your password",
            content="To reset your password, click 'Forgot password' on the sign-in page.",
            url="https://docs.example.com/password",
        )
        conversation = client.conversations.create(
            user_id="user_123", message="How do I reset my password?"
        )
        answer = client.conversations.generate_response(conversation_id=conversation.id)
        assert answer.message.role == "assistant"
        assert answer.message.conversation_id == conversation.id
        assert "Forgot password" in answer.message.content
        assert [s.snippet_id for s in answer.sources] == [snippet.id]
        assert answer.sources[0].url == "https://docs.example.com/password"
        assert answer.sources[0].score > 0

        thanks = client.conversations.add_message(conversation.id, content="That worked!")
        assert (thanks.role, thanks.conversation_id) == ("user", conversation.id)
        agent = client.conversations.add_message(conversation.id, content="Glad!", role="agent")
        assert agent.role == "agent"
        assert [m.role for m in client.conversations.messages(conversation.id)] == [
            "user",
            "assistant",
            "user",
            "agent",
        ]
        with pytest.raises(errors.ValidationError):  # assistant messages come from generate
            client.conversations.add_message(conversation.id, content="x", role="assistant")

        resolved = client.conversations.update(
            conversation.id, status="resolved", labels=["Billing", "account"]
        )
        assert (resolved.status, sorted(resolved.labels)) == ("resolved", ["Billing", "account"])
        assert [c.id for c in client.conversations.list(status="resolved").data] == [
            conversation.id
        ]
        assert sorted(label.name for label in client.labels.iter()) == ["Billing", "account"]
        # Left out: unchanged; an empty list: no labels.
        cleared = client.conversations.update(conversation.id, labels=[])
        assert (cleared.status, cleared.labels) == ("resolved", [])
        reopened = client.conversations.update(conversation.id, status="unresolved")
        assert reopened.status == "unresolved"
        with pytest.raises(errors.NotFound):
            client.conversations.update(999_999, status="resolved")

    reader = await world.project_key("conversation:read")
    with Client(reader, world.project_id, live_server.base_url) as client:
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.conversations.update(conversation.id, status="resolved")
        assert denied.value.required == "conversation:write"
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.conversations.generate_response(conversation_id=conversation.id)
        assert denied.value.required == "conversation:generate"


async def test_users_upsert_merge_clear_list(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("userpool:update")
    with Client(key, world.project_id, live_server.base_url) as client:
        made = client.users.upsert(
            "crm-1",
            first_name="Ada",
            email="ada@example.org",
            external_attributes={"plan": "pro", "seats": 3},
        )
        assert (made.external_id, made.first_name, made.last_name) == ("crm-1", "Ada", None)
        # Attributes merge (a None inside removes one); fields left out stay as they are.
        merged = client.users.upsert(
            "crm-1", locale="en-GB", external_attributes={"seats": 5, "plan": None}
        )
        assert merged.external_attributes == {"seats": 5}
        assert (merged.first_name, merged.email, merged.locale) == (
            "Ada",
            "ada@example.org",
            "en-GB",
        )
        cleared = client.users.upsert("crm-1", email=None)  # None clears the field
        assert (cleared.email, cleared.first_name) == (None, "Ada")
        assert client.users.get("crm-1").external_attributes == {"seats": 5}

        client.users.upsert("crm-2", email="grace@example.org")
        client.users.upsert("crm-3", email="grace@example.org")
        assert [u.external_id for u in client.users.iter(page_size=1)] == [
            "crm-3",
            "crm-2",
            "crm-1",
        ]
        page = client.users.list(limit=1, email="grace@example.org")
        assert [u.external_id for u in page.data] == ["crm-3"]
        assert page.next_cursor is not None
        # Ids may hold "/" (the SDK sends it as %2F): still one user, reachable by its id.
        slashed = client.users.upsert("acct/42", first_name="Linus")
        assert client.users.get("acct/42").first_name == slashed.first_name == "Linus"
        assert client.users.upsert("acct/42", last_name="T").first_name == "Linus"
        with pytest.raises(errors.NotFound):
            client.users.get("nobody")
        with pytest.raises(errors.NotFound):
            client.users.get("acct")
        with pytest.raises(errors.ValidationError):
            client.users.upsert("crm-1", email="not an address")

    reader = await world.project_key("userpool:read")
    with Client(reader, world.project_id, live_server.base_url) as client:
        assert client.users.get("crm-1").first_name == "Ada"
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.users.upsert("crm-1", first_name="Eve")
        assert denied.value.required == "userpool:update"


async def test_snippets_crud(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("knowledge:write")
    with Client(key, world.project_id, live_server.base_url) as client:
        made = client.snippets.create(
            title="Refunds", content="Within 30 days.", url="https://docs.example.com/refunds"
        )
        assert (made.title, made.data_provider_id, made.source) == ("Refunds", None, None)
        other = client.snippets.create(title="Shipping", content="Worldwide.")
        assert other.url is None
        renamed = client.snippets.update(made.id, title="Refund policy")
        assert (renamed.title, renamed.content, renamed.url) == (
            "Refund policy",
            "Within 30 days.",
            "https://docs.example.com/refunds",
        )
        assert client.snippets.update(made.id, url=None).url is None  # None removes the URL
        assert client.snippets.get(made.id).title == "Refund policy"
        assert [s.id for s in client.snippets.iter(page_size=1)] == [other.id, made.id]
        client.snippets.delete(made.id)
        with pytest.raises(errors.NotFound):
            client.snippets.get(made.id)
        with pytest.raises(errors.ValidationError):
            client.snippets.create(title=" ", content="blank titles are refused")


async def test_data_provider_sync(live_server: LiveServer, tmp_path: Path) -> None:
    """A directory provider inside the server's data directory (the default allowed root)."""
    world = live_server.world
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "password.md").write_text(PASSWORD_DOC)
    (docs / "hours.txt").write_text("Support hours are 9 to 5, Monday to Friday.")
    key = await world.project_key("knowledge:write")
    with Client(key, world.project_id, live_server.base_url) as client:
        provider = client.data_providers.create(
            name="Docs", type="directory", config={"path": str(docs)}
        )
        assert (provider.sync.status, provider.config) == ("idle", {"path": str(docs)})
        started = client.data_providers.sync(provider.id)
        assert started.status in ("pending", "running")
        done = client.data_providers.wait_for_sync(provider.id, timeout=30, interval=0.05)
        assert (done.sync.status, done.sync.snippets_created) == ("succeeded", 2)
        assert done.sync.finished_at is not None
        made = client.snippets.list(data_provider_id=provider.id).data
        assert sorted(s.source or "" for s in made) == ["hours.txt", "password.md"]
        assert {s.data_provider_id for s in made} == {provider.id}
        assert [p.id for p in client.data_providers.list().data] == [provider.id]
        assert client.data_providers.get(provider.id).sync.status == "succeeded"
        with pytest.raises(errors.NotFound):
            client.data_providers.get(999_999)
        with pytest.raises(errors.ValidationError):  # outside KEYPLANE_DATA_PROVIDER_ROOTS
            client.data_providers.create(name="Etc", type="directory", config={"path": "/etc"})

    reader = await world.project_key("knowledge:read")
    with Client(reader, world.project_id, live_server.base_url) as client:
        assert client.data_providers.get(provider.id).name == "Docs"
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.data_providers.sync(provider.id)
        assert denied.value.required == "knowledge:write"


async def test_labels_and_topics(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key(
        "label:upsert", "topic:read", "conversation:write", "conversation:generate"
    )
    with Client(key, world.project_id, live_server.base_url) as client:
        billing = client.labels.upsert("Billing", description="Invoices and refunds")
        again = client.labels.upsert("billing")  # case-insensitive: the same label
        assert (again.id, again.name, again.description) == (
            billing.id,
            "Billing",
            "Invoices and refunds",
        )
        client.labels.upsert("Account")
        first = client.labels.list(limit=1)
        assert [label.name for label in first.data] == ["Billing"]
        assert first.next_cursor is not None
        assert [label.name for label in client.labels.iter(page_size=1)] == ["Billing", "Account"]

        for question in ("My invoice is wrong", "Where is my invoice?", "Reset my password"):
            made = client.conversations.create(user_id="u", message=question)
            if "invoice" in question:
                client.conversations.update(made.id, labels=["billing"], status="resolved")
        topics = {(t.kind, t.name): t for t in client.topics.list()}
        label = topics[("label", "Billing")]
        assert (label.conversations, label.resolved, label.unresolved) == (2, 2, 0)
        assert len(label.conversation_ids) == 2
        assert topics[("term", "invoice")].conversations == 2
        assert len(client.topics.list(limit=1)) == 1

    reader = await world.project_key("label:read")
    with Client(reader, world.project_id, live_server.base_url) as client:
        with pytest.raises(errors.InsufficientPermissions) as denied:
            client.labels.upsert("Sales")
        assert denied.value.required == "label:upsert"


async def test_async_client_platform_resources(live_server: LiveServer, tmp_path: Path) -> None:
    world = live_server.world
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "password.md").write_text(PASSWORD_DOC)
    key = await world.project_key(
        "conversation:write",
        "conversation:generate",
        "knowledge:write",
        "userpool:update",
        "label:upsert",
        "topic:read",
    )
    async with AsyncClient(key, world.project_id, live_server.base_url) as client:
        provider = await client.data_providers.create(
            name="Docs", type="directory", config={"path": str(docs)}
        )
        assert (await client.data_providers.sync(provider.id)).status in ("pending", "running")
        done = await client.data_providers.wait_for_sync(provider.id, timeout=30, interval=0.05)
        assert done.sync.snippets_created == 1
        (synced,) = [s async for s in client.snippets.iter(data_provider_id=provider.id)]
        extra = await client.snippets.create(title="Hours", content="We answer 9 to 5.")
        assert (await client.snippets.update(extra.id, content="9 to 6.")).content == "9 to 6."
        await client.snippets.delete(extra.id)
        assert [s.id for s in (await client.snippets.list()).data] == [synced.id]

        conversation = await client.conversations.create(
            user_id="crm-7", message="How do I reset my password?"
        )
        answer = await client.conversations.generate_response(conversation_id=conversation.id)
        assert [s.snippet_id for s in answer.sources] == [synced.id]
        await client.conversations.add_message(conversation.id, content="Thanks", role="user")
        updated = await client.conversations.update(
            conversation.id, status="resolved", labels=["Account"]
        )
        assert (updated.status, updated.labels) == ("resolved", ["Account"])
        roles = [m.role for m in await client.conversations.messages(conversation.id)]
        assert roles == ["user", "assistant", "user"]

        user = await client.users.upsert("crm-7", external_attributes={"tier": "gold"})
        assert (user.external_id, user.external_attributes) == ("crm-7", {"tier": "gold"})
        assert (await client.users.get("crm-7")).external_attributes == {"tier": "gold"}
        assert [u.external_id async for u in client.users.iter()] == ["crm-7"]
        assert (await client.users.list(email="none@example.org")).data == []

        label = await client.labels.upsert("account", description="Sign-in and profile")
        assert (label.name, label.description) == ("Account", "Sign-in and profile")
        assert [x.name async for x in client.labels.iter()] == ["Account"]
        assert (await client.labels.list()).next_cursor is None
        topics = await client.topics.list()
        assert ("label", "Account", 1) in {(t.kind, t.name, t.resolved) for t in topics}
        with pytest.raises(errors.NotFound):
            await client.data_providers.get(999_999)
