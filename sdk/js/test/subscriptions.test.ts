/**
 * Webhook subscriptions through the SDK against a live server, with a real receiver on
 * loopback (allowed for test-mode subscriptions): the one-time secret, a real delivery whose
 * signature the JS helpers verify, the delivery log, a replay, PATCH (pause, resume, events,
 * description) and delete. Each test works in its own project.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  KeyplaneClient,
  NotFoundError,
  parseWebhook,
  ValidationError,
  verifyWebhookSignature,
  WebhookSignatureError,
  type WebhookDelivery,
} from "@keyplane/sdk";

import { startReceiver, type Receiver } from "./support/receiver.js";
import { createKey, createProject, world, type World } from "./support/world.js";

let run: World;
let hook: Receiver;
before(async () => {
  run = await world();
  hook = await startReceiver();
});
after(async () => {
  await hook.close();
});

async function client(name: string, options: { test: boolean }): Promise<KeyplaneClient> {
  const projectId = await createProject(run, name);
  const apiKey = await createKey(run, ["webhook:write", "userpool:update"], { project: projectId, test: options.test });
  return new KeyplaneClient({ apiKey, projectId, baseUrl: run.baseUrl });
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const found: T[] = [];
  for await (const item of items) found.push(item);
  return found;
}

test("a subscription receives signed deliveries; the log, a replay, PATCH and delete", async () => {
  const kp = await client("Webhooks", { test: true });
  const created = await kp.webhooks.create({ url: hook.url, events: ["user.updated"], description: "CRM mirror" });
  assert.match(created.secret, /^whsec_/);
  assert.equal(created.mode, "test", "a test key's subscription is a test-mode one");
  assert.equal(created.enabled, true);
  assert.deepEqual(created.events, ["user.updated"]);
  assert.equal(created.description, "CRM mirror");
  assert.deepEqual((await kp.webhooks.list()).map((w) => w.id), [created.id]);
  const got = await kp.webhooks.get(created.id);
  assert.equal(got.url, hook.url);
  assert.equal("secret" in got, false, "the secret is shown only when created");

  // A real event, delivered by the server's sender, verified by the JS helpers.
  await kp.users.upsert("crm-1", { email: "ada@example.org" });
  const [first] = await hook.waitFor(1);
  assert.ok(first);
  const header = first.headers["x-keyplane-signature"];
  assert.equal(verifyWebhookSignature(created.secret, header, first.body), true);
  const event = parseWebhook(created.secret, first.headers, first.body);
  assert.equal(event.event, "user.updated");
  assert.equal(event.mode, "test");
  assert.equal(event.projectId, kp.config.projectId);
  assert.equal((event.data["user"] as { external_id: string }).external_id, "crm-1", "data is kept as sent");
  assert.equal(first.headers["x-keyplane-event"], "user.updated");
  assert.throws(() => parseWebhook("whsec_wrong", first.headers, first.body), WebhookSignatureError);
  const altered = Buffer.from(first.body.toString("utf8").replace("crm-1", "crm-2"));
  assert.throws(() => parseWebhook(created.secret, header, altered), WebhookSignatureError);

  // The receiver has the body before the sender has recorded the answer: wait for the log.
  let page = await kp.webhooks.deliveries(created.id);
  for (let tries = 0; page.data[0]?.status === "pending" && tries < 100; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    page = await kp.webhooks.deliveries(created.id);
  }
  assert.equal(page.data.length, 1);
  const delivered = page.data[0] as WebhookDelivery;
  assert.equal(String(delivered.id), first.headers["x-keyplane-delivery"]);
  assert.equal(delivered.webhookId, created.id);
  assert.equal(delivered.status, "delivered");
  assert.equal(delivered.statusCode, 200);
  assert.equal(delivered.attempts, 1);
  assert.equal(delivered.replayOf, null);

  // A replay: the same body again, a fresh signature, a new delivery in the log.
  const replayed = await kp.webhooks.replay(created.id, delivered.id);
  assert.equal(replayed.replayOf, delivered.id);
  assert.notEqual(replayed.id, delivered.id);
  const second = (await hook.waitFor(2))[1];
  assert.ok(second);
  assert.deepEqual(second.body, first.body);
  assert.equal(second.headers["x-keyplane-delivery"], String(replayed.id));
  assert.equal(parseWebhook(created.secret, second.headers, second.body).event, "user.updated");
  const log = await all(kp.webhooks.iterateDeliveries(created.id, { pageSize: 1 }));
  assert.deepEqual(log.map((d) => d.id), [replayed.id, delivered.id], "newest first, across pages");

  // PATCH: a paused subscription is sent nothing; enabled again, it is.
  const paused = await kp.webhooks.update(created.id, { enabled: false, description: null });
  assert.equal(paused.enabled, false);
  assert.equal(paused.description, null);
  assert.equal(paused.url, hook.url, "fields not given are kept");
  await kp.users.upsert("crm-paused");
  const resumed = await kp.webhooks.update(created.id, { enabled: true, events: ["user.updated", "snippet.changed"] });
  assert.equal(resumed.enabled, true);
  assert.deepEqual([...resumed.events].sort(), ["snippet.changed", "user.updated"]);
  await kp.users.upsert("crm-resumed");
  const third = (await hook.waitFor(3))[2];
  assert.ok(third);
  const resumedEvent = parseWebhook(created.secret, third.headers, third.body);
  assert.equal((resumedEvent.data["user"] as { external_id: string }).external_id, "crm-resumed");
  assert.equal((await kp.webhooks.deliveries(created.id)).data.length, 3, "nothing was queued while paused");
  const everything = await kp.webhooks.update(created.id, { events: null });
  assert.ok(everything.events.length > 2, "events: null subscribes to every event");

  await kp.webhooks.delete(created.id);
  assert.deepEqual(await kp.webhooks.list(), []);
  await assert.rejects(kp.webhooks.get(created.id), NotFoundError);
  assert.equal(hook.requests.length, 3);
});

test("a live subscription to a loopback receiver is refused with a ValidationError naming why", async () => {
  const kp = await client("Live webhooks", { test: false });
  const refused = await kp.webhooks.create({ url: hook.url }).catch((error: unknown) => error);
  assert.ok(refused instanceof ValidationError, String(refused));
  assert.equal(refused.status, 422);
  assert.match(refused.message, /127\.0\.0\.1/);
  await assert.rejects(kp.webhooks.create({ url: "https://203.0.113.5/k", events: ["no.such_event"] }), ValidationError);
  assert.deepEqual(await kp.webhooks.list(), []);
});
