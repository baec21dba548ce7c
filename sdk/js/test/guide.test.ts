/**
 * The botBrains guide's JavaScript, run as printed against a live keyplane server: the "Client
 * Libraries" snippet (only the import line and a baseUrl changed) and the "Custom Support
 * Interface" function (only the host of its URLs changed), each with exactly the permissions
 * the guide lists for it.
 */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { BotBrainsClient } from "@keyplane/sdk";

import { createKey, world } from "./support/world.js";

let baseUrl: string;
let projectId: string;
let apiKey: string;

before(async () => {
  const run = await world();
  baseUrl = run.baseUrl;
  projectId = String(run.projectId);
  // Knowledge for the answers to come from (what a docs sync would have put there).
  const writer = new BotBrainsClient({ apiKey: await createKey(run, ["knowledge:write"]), projectId, baseUrl });
  await writer.snippets.create({
    title: "Reset your password",
    content: "To reset your password, open Settings, choose Security and click Reset password. We email you a link.",
    url: "https://docs.example.com/password",
  });
});

test("the Client Libraries snippet runs as written", async () => {
  const run = await world();
  process.env.BOTBRAINS_API_KEY = await createKey(run, ["conversation:read", "conversation:generate"]);
  process.env.BOTBRAINS_PROJECT_ID = projectId;

  // --- the guide, verbatim but for the baseUrl line ---------------------------------------
  const client = new BotBrainsClient({
    apiKey: process.env.BOTBRAINS_API_KEY,
    projectId: process.env.BOTBRAINS_PROJECT_ID,
    baseUrl,
  });

  // List conversations
  const conversations = await client.conversations.list({
    limit: 50,
    status: 'unresolved'
  });

  // Create a new conversation
  const conversation = await client.conversations.create({
    userId: 'user_123',
    message: 'How do I reset my password?'
  });

  // Get AI response
  const response = await client.conversations.generateResponse({
    conversationId: conversation.id
  });
  // ------------------------------------------------------------------------------------------

  assert.ok(Array.isArray(conversations.data));
  assert.equal(conversation.userId, "user_123");
  assert.equal(conversation.status, "unresolved");
  assert.equal(conversation.messages?.[0]?.content, "How do I reset my password?");
  assert.equal(response.message.role, "assistant");
  assert.match(response.message.content, /Settings/);
  assert.equal(response.sources[0]?.title, "Reset your password");
  assert.equal(response.sources[0]?.url, "https://docs.example.com/password");
  const listed = await client.conversations.list({ limit: 50, status: "unresolved", userId: "user_123" });
  assert.deepEqual(
    listed.data.map((c) => c.id),
    [conversation.id],
  );
  delete process.env.BOTBRAINS_API_KEY;
  delete process.env.BOTBRAINS_PROJECT_ID;
});

// --- the guide's "Custom Support Interface", verbatim but for the host of its two URLs -------
async function getAIResponse(userId: string, question: string) {
  // Create conversation
  const createResponse = await fetch(
    `${baseUrl}/v1/projects/${projectId}/conversations`,
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
    `${baseUrl}/v1/projects/${projectId}/conversations/${conversation.id}/generate`,
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
// ----------------------------------------------------------------------------------------------

test("the Custom Support Interface function runs as written with the permissions the guide lists", async () => {
  const run = await world();
  apiKey = await createKey(run, ["conversation:read", "conversation:generate", "userpool:read"]);

  // Use in your app
  const response = await getAIResponse('user_123', 'How do I reset my password?');
  console.log(response.answer);

  assert.equal(typeof response.conversationId, "number");
  assert.match(response.answer, /reset your password/i);
  assert.equal(response.sources[0].title, "Reset your password");
  // The SDK sees the same conversation, with the question and the stored answer.
  const client = new BotBrainsClient({ apiKey, projectId, baseUrl });
  const messages = await client.conversations.messages(response.conversationId);
  assert.deepEqual(
    messages.map((m) => m.role),
    ["user", "assistant"],
  );
  assert.equal(messages[1]?.content, response.answer);
});
