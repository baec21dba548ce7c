/**
 * Every resource of DESIGN §6 through the SDK against a live server: typed camelCase results,
 * async iteration over pages, uploads and downloads, syncs, streamed exports. Each test works
 * in its own project (made with the CLI) so that lists can be compared exactly.
 */

import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";

import { KeyplaneClient, NotFoundError, type Conversation } from "@keyplane/sdk";

import { createKey, createProject, world, type World } from "./support/world.js";

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array<number>(32).fill(0)]);

let run: World;
before(async () => {
  run = await world();
});

async function client(permissions: string[], name: string): Promise<KeyplaneClient> {
  const projectId = await createProject(run, name);
  const apiKey = await createKey(run, permissions, { project: projectId });
  return new KeyplaneClient({ apiKey, projectId, baseUrl: run.baseUrl });
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const found: T[] = [];
  for await (const item of items) found.push(item);
  return found;
}

test("conversations, users and labels", async () => {
  const kp = await client(
    ["project:read", "conversation:write", "conversation:generate", "userpool:update", "label:upsert", "topic:read"],
    "Conversations",
  );
  const made: Conversation[] = [];
  for (let n = 0; n < 5; n++) {
    made.push(await kp.conversations.create({ userId: `user_${n % 2}`, message: `Question ${n} about billing` }));
  }
  assert.equal(made[0]?.userId, "user_0");
  const newestFirst = made.map((c) => c.id).reverse();
  const page = await kp.conversations.list({ limit: 50, status: "unresolved" });
  assert.deepEqual(page.data.map((c) => c.id), newestFirst);
  assert.equal(page.nextCursor, null);
  const small = await kp.conversations.list({ limit: 2 });
  assert.equal(small.data.length, 2);
  assert.equal(typeof small.nextCursor, "string");
  const next = await kp.conversations.list({ limit: 2, cursor: small.nextCursor ?? undefined });
  assert.deepEqual(next.data.map((c) => c.id), newestFirst.slice(2, 4));
  assert.deepEqual((await all(kp.conversations.iterate({ pageSize: 2 }))).map((c) => c.id), newestFirst);
  const ofUser1 = await all(kp.conversations.iterate({ userId: "user_1", pageSize: 1 }));
  assert.deepEqual(ofUser1.map((c) => c.userId), ["user_1", "user_1"]);

  const first = made[0]!;
  const got = await kp.conversations.get(first.id);
  assert.equal(got.projectId, first.projectId);
  assert.equal(got.raw["user_id"], "user_0", "raw keeps the server's object");
  assert.deepEqual(Object.keys(got).sort(), ["createdAt", "id", "labels", "projectId", "status", "updatedAt", "userId"]);
  const reply = await kp.conversations.addMessage(first.id, { content: "Let me check.", role: "agent" });
  assert.equal(reply.role, "agent");
  assert.equal(reply.conversationId, first.id);
  assert.deepEqual((await kp.conversations.messages(first.id)).map((m) => m.role), ["user", "agent"]);
  const resolved = await kp.conversations.update(first.id, { status: "resolved", labels: ["Billing"] });
  assert.equal(resolved.status, "resolved");
  assert.deepEqual(resolved.labels, ["Billing"]);
  assert.deepEqual((await kp.conversations.list({ status: "resolved" })).data.map((c) => c.id), [first.id]);

  const label = await kp.labels.upsert("billing", { description: "Money matters" });
  assert.equal(label.name, "Billing", "the first spelling stays");
  assert.equal(label.description, "Money matters");
  await kp.labels.upsert("Refunds");
  assert.deepEqual((await all(kp.labels.iterate({ pageSize: 1 }))).map((l) => l.name), ["Billing", "Refunds"]);
  const topics = await kp.topics.list({ limit: 10 });
  const billing = topics.find((t) => t.name === "Billing");
  assert.equal(billing?.kind, "label");
  assert.deepEqual(billing?.conversationIds, [first.id]);

  const created = await kp.users.upsert("crm/42", {
    firstName: "Ada",
    lastName: "Lovelace",
    email: "ada@example.com",
    externalAttributes: { subscription_tier: "pro", lifetime_value: 1200 },
  });
  assert.equal(created.externalId, "crm/42", "an external id with a slash is escaped");
  assert.deepEqual(created.externalAttributes, { subscription_tier: "pro", lifetime_value: 1200 });
  const updated = await kp.users.upsert("crm/42", { lastName: null, externalAttributes: { lifetime_value: null, plan_seats: 3 } });
  assert.equal(updated.firstName, "Ada", "fields left out stay");
  assert.equal(updated.lastName, null, "null clears");
  assert.deepEqual(updated.externalAttributes, { subscription_tier: "pro", plan_seats: 3 });
  assert.equal((await kp.users.get("crm/42")).email, "ada@example.com");
  assert.deepEqual((await kp.users.list({ email: "ada@example.com" })).data.map((u) => u.externalId), ["crm/42"]);
  assert.deepEqual(
    (await all(kp.users.iterate({ pageSize: 1 }))).map((u) => u.externalId).sort(),
    ["crm/42", "user_0", "user_1"],
  );
  const project = await kp.project();
  assert.equal(project.id, kp.config.projectId);
  assert.equal(project.mode, "live");
});

test("snippets, data providers and their sync", async () => {
  const kp = await client(["knowledge:write"], "Knowledge");
  const snippet = await kp.snippets.create({ title: "Refunds", content: "Refunds take five days.", url: "https://docs.example.com/refunds" });
  assert.equal(snippet.dataProviderId, null);
  const edited = await kp.snippets.update(snippet.id, { content: "Refunds take three days.", url: null });
  assert.equal(edited.content, "Refunds take three days.");
  assert.equal(edited.url, null);
  assert.equal((await kp.snippets.get(snippet.id)).title, "Refunds");

  const docs = join(run.env["KEYPLANE_DATA_DIR"] ?? "", "docs-js");
  await mkdir(docs, { recursive: true });
  await writeFile(join(docs, "shipping.md"), "# Shipping\n\nWe ship worldwide within two days.\n");
  await writeFile(join(docs, "returns.md"), "# Returns\n\nReturns are free for thirty days.\n");
  const provider = await kp.dataProviders.create({ name: "Docs", type: "directory", config: { path: docs } });
  assert.equal(provider.sync.status, "idle");
  assert.deepEqual(provider.config, { path: docs });
  const started = await kp.dataProviders.sync(provider.id);
  assert.ok(["pending", "running", "succeeded"].includes(started.sync.status));
  const synced = await kp.dataProviders.waitForSync(provider.id, { timeout: 30_000, interval: 100 });
  assert.equal(synced.sync.status, "succeeded", synced.sync.lastError ?? "");
  assert.equal(synced.sync.snippetsCreated, 2);
  const made = await all(kp.snippets.iterate({ dataProviderId: provider.id, pageSize: 1 }));
  assert.deepEqual(made.map((s) => s.title).sort(), ["Returns", "Shipping"]);
  assert.deepEqual((await kp.dataProviders.list()).data.map((p) => p.id), [provider.id]);

  await kp.snippets.delete(snippet.id);
  await assert.rejects(kp.snippets.get(snippet.id), NotFoundError);
});

test("tables, files, deployments, metrics and exports", async () => {
  const kp = await client(
    ["table:write", "file:write", "deployment:update", "conversation:generate", "metric:read", "full_export:read"],
    "Data",
  );
  const table = await kp.tables.create({ name: "plans", columns: [{ name: "tier", type: "text" }, { name: "seats", type: "number" }] });
  assert.deepEqual(table.columns.map((c) => c.type), ["text", "number"]);
  const rows = [];
  for (let n = 0; n < 3; n++) rows.push(await kp.tables.addRow(table.id, { tier: `t${n}`, seats: n }));
  assert.equal(rows[0]?.tableId, table.id);
  await kp.tables.updateRow(table.id, rows[0]!.id, { seats: 10 });
  await kp.tables.deleteRow(table.id, rows[1]!.id);
  assert.deepEqual((await all(kp.tables.iterateRows(table.id, { pageSize: 1 }))).map((r) => r.values["seats"]), [10, 2]);
  assert.deepEqual((await kp.tables.rows(table.id, { filter: "tier:t2" })).data.map((r) => r.id), [rows[2]!.id]);
  assert.deepEqual((await all(kp.tables.iterate())).map((t) => t.name), ["plans"]);

  const uploaded = await kp.files.upload(PNG, { filename: "logo.png" });
  assert.equal(uploaded.contentType, "image/png");
  assert.equal(uploaded.size, PNG.length);
  assert.deepEqual(await kp.files.download(uploaded.id), PNG);
  assert.equal((await kp.files.get(uploaded.id)).sha256, uploaded.sha256);
  const path = join(run.env["KEYPLANE_DATA_DIR"] ?? "", "notes.txt");
  await writeFile(path, "plain notes\n");
  const fromPath = await kp.files.upload(path);
  assert.equal(fromPath.filename, "notes.txt");
  assert.deepEqual((await all(kp.files.iterate({ pageSize: 1 }))).map((f) => f.id), [fromPath.id, uploaded.id]);
  await kp.files.delete(uploaded.id);
  await assert.rejects(kp.files.get(uploaded.id), NotFoundError);

  const deployment = await kp.deployments.create({ channel: "web", name: "Site", config: { color: "blue" } });
  assert.equal(deployment.status, "active");
  assert.deepEqual(deployment.config, { color: "blue" });
  assert.deepEqual((await all(kp.deployments.iterate())).map((d) => d.id), [deployment.id]);

  const conversation = await kp.conversations.create({ userId: "crm-1", message: "Hello" });
  const now = new Date();
  const metrics = await kp.metrics.get({ startDate: new Date(now.getTime() - 7 * 86_400_000), endDate: now });
  assert.equal(metrics.data.length, 8);
  assert.equal(metrics.data.at(-1)?.conversations, 1);
  assert.equal(metrics.data.at(-1)?.generatedAnswers, 0);
  const weekly = await kp.metrics.get({ startDate: "2026-01-05", endDate: "2026-01-18", groupBy: "week" });
  assert.deepEqual(weekly.data.map((p) => p.date), ["2026-01-05", "2026-01-12"]);

  const plain = await all(kp.exports.conversations());
  assert.deepEqual(plain.map((line) => line["id"]), [conversation.id]);
  assert.notEqual(plain[0]?.["user_id"], "crm-1", "no end-user PII in the plain export");
  const full = await all(kp.exports.full());
  assert.equal((full[0]?.["user"] as { external_id: string }).external_id, "crm-1");
});
