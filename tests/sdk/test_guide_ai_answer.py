"""The botBrains guide's "Generate AI Responses in Your App" example, translated from
TypeScript to Python/httpx line by line and run against a live server (only the base URL,
project id and key changed), with a key holding exactly the permissions the guide lists:
conversation:read, conversation:generate, userpool:read. The guide's code:

    async function getAIResponse(userId: string, question: string) {
      // Create conversation
      const createResponse = await fetch(
        `https://api.botbrains.io/v1/projects/${projectId}/conversations`,
        {
          method: 'POST',
          headers: {
            'Authorization': `Bearer ${apiKey}`,
            'Content-Type': 'application/json'
          },
          body: JSON.stringify({
            user_id: userId,
            message: question
          })
        }
      );

      const conversation = await createResponse.json();

      // Generate AI response
      const responseData = await fetch(
        `https://api.botbrains.io/v1/projects/${projectId}/conversations/${conversation.id}/generate`,
        {
          method: 'POST',
          headers: {
            'Authorization': `Bearer ${apiKey}`,
            'Content-Type': 'application/json'
          }
        }
      );

      const aiResponse = await responseData.json();

      return {
        conversationId: conversation.id,
        answer: aiResponse.message.content,
        sources: aiResponse.sources
      };
    }

    // Use in your app
    const response = await getAIResponse('user_123', 'How do I reset my password?');
    console.log(response.answer);

Both requests need conversation:generate; the guide's conversation:read and userpool:read let
the app look at what was stored (the messages, the end user created on first use), which the
test does with the same key."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.sdk.conftest import LiveServer

SNIPPETS = [
    {
        "title": "Resetting your password",
        "content": "To reset your password, open the sign-in page and click 'Forgot password'. "
        "We email you a reset link that is valid for 30 minutes.",
        "url": "https://docs.example.com/password",
    },
    {"title": "Refund policy", "content": "Refunds are possible within 30 days of purchase."},
]


async def test_ai_answer_runs_as_written(live_server: LiveServer) -> None:
    world = live_server.world
    base = live_server.base_url  # was https://api.botbrains.io
    project_id = world.project_id
    editor = await world.project_key("knowledge:write")
    async with httpx.AsyncClient(base_url=base, headers=bearer(editor)) as admin:
        for snippet in SNIPPETS:
            made = await admin.post(f"/v1/projects/{project_id}/snippets", json=snippet)
            assert made.status_code == 201, made.text

    api_key = await world.project_key(
        "conversation:read", "conversation:generate", "userpool:read", name="Support interface"
    )
    answered: list[httpx.Response] = []

    async def record(response: httpx.Response) -> None:
        answered.append(response)

    fetch = httpx.AsyncClient(event_hooks={"response": [record]})  # the runtime's fetch()

    async def get_ai_response(user_id: str, question: str) -> dict[str, Any]:
        # Create conversation
        create_response = await fetch.request(
            "POST",
            f"{base}/v1/projects/{project_id}/conversations",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
            },
            content=json.dumps(
                {
                    "user_id": user_id,
                    "message": question,
                }
            ),
        )

        conversation = create_response.json()

        # Generate AI response
        response_data = await fetch.request(
            "POST",
            f"{base}/v1/projects/{project_id}/conversations/{conversation['id']}/generate",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
            },
        )

        ai_response = response_data.json()

        return {
            "conversationId": conversation["id"],
            "answer": ai_response["message"]["content"],
            "sources": ai_response["sources"],
        }

    async with fetch:
        # Use in your app
        response = await get_ai_response("user_123", "How do I reset my password?")
        print(response["answer"])  # console.log(response.answer)

        assert [r.status_code for r in answered] == [201, 200]
        assert "Forgot password" in response["answer"]
        (source,) = response["sources"]
        assert (source["title"], source["url"]) == (
            "Resetting your password",
            "https://docs.example.com/password",
        )
        assert source["score"] > 0

        # conversation:read: the question and the answer are stored in the conversation;
        # userpool:read: the end user was created on first use.
        conversation = f"{base}/v1/projects/{project_id}/conversations/{response['conversationId']}"
        messages = (await fetch.get(f"{conversation}/messages", headers=bearer(api_key))).json()
        assert [(m["role"], m["content"]) for m in messages["data"]] == [
            ("user", "How do I reset my password?"),
            ("assistant", response["answer"]),
        ]
        user = await fetch.get(
            f"{base}/v1/projects/{project_id}/users/user_123", headers=bearer(api_key)
        )
        assert user.status_code == 200, user.text

        # Without conversation:generate the first request is refused, and the function fails
        # where the guide's would (TypeScript: reading `.content` of undefined).
        api_key = await world.project_key(
            "conversation:read", "userpool:read", name="Support interface (no generate)"
        )
        answered.clear()
        with pytest.raises(KeyError):
            await get_ai_response("user_123", "How do I reset my password?")
        refused = answered[0]
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_permissions"
        assert refused.json()["required"] == "conversation:generate"
