"""Topics derived from conversations: their labels and the words recurring in their opening
messages, with counts."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


async def test_topics_count_labels_and_recurring_words(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("conversation:generate", "conversation:write", "topic:read")
    base = f"/v1/projects/{world.project_id}"
    questions = [
        ("How do I reset my password?", ["Account"], "resolved"),
        ("I forgot my password and cannot log in", ["account"], "unresolved"),
        ("Password reset email never arrived", [], "unresolved"),
        ("My invoice shows the wrong amount", ["Billing"], "resolved"),
        ("Can I get an invoice for last month?", ["Billing"], "unresolved"),
        ("Do you ship to Norway?", [], "unresolved"),
    ]
    ids = []
    for question, labels, status in questions:
        made = await client.post(
            f"{base}/conversations",
            headers=bearer(key),
            json={"user_id": "u", "message": question},
        )
        ids.append(made.json()["id"])
        await client.patch(
            f"{base}/conversations/{ids[-1]}",
            headers=bearer(key),
            json={"labels": labels, "status": status},
        )
    response = await client.get(f"{base}/topics", headers=bearer(key))
    assert response.status_code == 200, response.text
    topics = {(t["kind"], t["name"]): t for t in response.json()["data"]}
    password = topics[("term", "password")]
    assert (password["conversations"], password["resolved"], password["unresolved"]) == (3, 1, 2)
    assert password["conversation_ids"] == [ids[2], ids[1], ids[0]]
    assert topics[("term", "invoice")]["conversations"] == 2
    assert topics[("term", "reset")]["conversations"] == 2
    assert topics[("label", "Account")]["conversations"] == 2  # one label, whatever the case
    assert topics[("label", "Billing")]["resolved"] == 1
    assert ("term", "norway") not in topics  # once is not a topic
    assert ("term", "my") not in topics  # stopwords are not topics
    first = response.json()["data"][0]
    assert first["conversations"] == 3
    limited = await client.get(f"{base}/topics", headers=bearer(key), params={"limit": 1})
    assert len(limited.json()["data"]) == 1
    test = await world.project_key("topic:read", test=True)
    assert (await client.get(f"{base}/topics", headers=bearer(test))).json()["data"] == []
