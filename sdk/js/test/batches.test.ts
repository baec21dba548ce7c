/**
 * Batch upserts through the SDK against a live server: users, snippets and table rows, lists
 * longer than 1,000 sent in several requests with one result in the caller's order, and a
 * refused item reported as a ValidationError naming its index and field (nothing of its
 * request written). Each test works in its own project.
 */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { KeyplaneClient, NotFoundError, ValidationError, type EndUserItem } from "@keyplane/sdk";

import { createKey, createProject, world, type World } from "./support/world.js";

let run: World;
before(async () => {
  run = await world();
});

/** A client whose batch requests are counted (`calls`). */
async function client(permissions: string[], name: string): Promise<{ kp: KeyplaneClient; calls: string[] }> {
  const projectId = await createProject(run, name);
  const apiKey = await createKey(run, permissions, { project: projectId });
  const calls: string[] = [];
  const counting: typeof fetch = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith("/batch")) calls.push(`${init?.method ?? "GET"} ${new URL(url).pathname}`);
    return fetch(input, init);
  };
  return { kp: new KeyplaneClient({ apiKey, projectId, baseUrl: run.baseUrl, fetch: counting }), calls };
}

async function refusal(work: Promise<unknown>): Promise<ValidationError> {
  const error = await work.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
  return error;
}

test("1,500 users in two requests, one result per user in order; a bad item refuses its batch", async () => {
  const { kp, calls } = await client(["userpool:update"], "Batch users");
  const users: EndUserItem[] = Array.from({ length: 1500 }, (_, i) => ({ externalId: `u${i}`, locale: "en", externalAttributes: { n: i } }));
  const made = await kp.users.upsertMany(users);
  assert.deepEqual(calls, Array(2).fill(`POST /v1/projects/${kp.config.projectId}/users/batch`));
  assert.equal(made.created, 1500);
  assert.equal(made.updated, 0);
  assert.deepEqual(made.data.map((item) => item.index), [...Array(1500).keys()]);
  assert.equal(made.data[1499]?.externalId, "u1499");
  assert.equal(made.data[1499]?.status, "created");
  assert.equal(made.raw["created"], 1500, "raw is the merged answer");
  const stored = await kp.users.get("u1234");
  assert.equal(stored.locale, "en");
  assert.deepEqual(stored.externalAttributes, { n: 1234 });

  const again = await kp.users.upsertMany([{ externalId: "u0", firstName: "Ada" }, { externalId: "new" }]);
  assert.deepEqual(again.data.map((item) => [item.index, item.status, item.externalId]), [
    [0, "updated", "u0"],
    [1, "created", "new"],
  ]);
  assert.equal((await kp.users.get("u0")).firstName, "Ada");

  // A refused item refuses the whole request: nothing of it is written.
  const bad = await refusal(kp.users.upsertMany([{ externalId: "fine" }, { externalId: "x", email: "not-an-address" }]));
  assert.equal(bad.status, 422);
  assert.equal(bad.code, "validation_error");
  assert.match(bad.message, /item 1, field email/);
  assert.equal(bad.details[0]?.index, 1);
  assert.equal(bad.details[0]?.field, "email");
  await assert.rejects(kp.users.get("fine"), NotFoundError);

  // In several requests, the index is the one in the caller's list; earlier requests stay.
  calls.length = 0;
  const late = await refusal(
    kp.users.upsertMany([{ externalId: "c0" }, { externalId: "c1" }, { externalId: "c2" }, { externalId: "c3", email: "nope" }], { chunkSize: 2 }),
  );
  assert.equal(calls.length, 2);
  assert.equal(late.details[0]?.index, 3);
  assert.equal(late.details[0]?.field, "email");
  assert.deepEqual(late.details[0]?.loc, ["body", "items", 3, "email"]);
  assert.match(late.message, /item 3, field email/);
  assert.match(late.message, /Items 0-1 were written/);
  assert.equal((await kp.users.get("c1")).externalId, "c1");
  await assert.rejects(kp.users.get("c2"), NotFoundError);

  calls.length = 0;
  const none = await kp.users.upsertMany([]);
  assert.deepEqual([none.data, none.created, none.updated, calls], [[], 0, 0, []]);
});

test("snippets and table rows: created, updated by id or url, refused by index and field", async () => {
  const { kp, calls } = await client(["knowledge:write", "table:write"], "Batch knowledge");
  const made = await kp.snippets.upsertMany([
    { title: "Refunds", content: "30 days.", url: "https://docs.example.com/refunds" },
    { title: "Shipping", content: "2 days." },
  ]);
  assert.deepEqual(made.data.map((item) => [item.index, item.status]), [
    [0, "created"],
    [1, "created"],
  ]);
  const [refunds, shipping] = made.data.map((item) => item.id as number);
  const changed = await kp.snippets.upsertMany([
    { title: "Refunds", content: "60 days.", url: "https://docs.example.com/refunds" },
    { id: shipping as number, title: "Shipping", content: "3 days." },
  ]);
  assert.deepEqual(changed.data.map((item) => [item.status, item.id]), [
    ["updated", refunds],
    ["updated", shipping],
  ]);
  assert.equal((await kp.snippets.get(refunds as number)).content, "60 days.");
  const unknown = await refusal(kp.snippets.upsertMany([{ title: "A", content: "a" }, { id: 999999, title: "B", content: "b" }]));
  assert.equal(unknown.details[0]?.index, 1);
  assert.equal(unknown.details[0]?.field, "id");

  const table = await kp.tables.create({ name: "stock", columns: [{ name: "sku", type: "text" }, { name: "qty", type: "number" }] });
  const rows = await kp.tables.upsertRows(table.id, [{ values: { sku: "A", qty: 1 } }, { values: { sku: "B", qty: 2 } }]);
  assert.equal(rows.created, 2);
  const first = rows.data[0]?.id as number;
  const updated = await kp.tables.upsertRows(table.id, [{ id: first, values: { qty: 5 } }]);
  assert.deepEqual([updated.data[0]?.status, updated.data[0]?.id, updated.updated], ["updated", first, 1]);
  const stored = await kp.tables.rows(table.id, { filter: "sku:A" });
  assert.deepEqual(stored.data.map((row) => row.values), [{ sku: "A", qty: 5 }], "the cells not given are kept");
  const wrongType = await refusal(kp.tables.upsertRows(table.id, [{ values: { sku: "C", qty: 3 } }, { values: { qty: "many" } }]));
  assert.equal(wrongType.details[0]?.index, 1);
  assert.match(String(wrongType.details[0]?.field), /qty/);
  assert.equal((await kp.tables.rows(table.id)).data.length, 2, "nothing of the refused batch was written");
  assert.equal(calls.length, 6, "one request per call of fewer than 1,000 items");
});
