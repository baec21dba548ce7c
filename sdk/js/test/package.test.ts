/**
 * The npm package as users load it: ESM import and CommonJS require of "@keyplane/sdk" (both
 * builds, through package.json "exports"), type declarations beside each, no runtime
 * dependencies, and the version the User-Agent sends equal to package.json's.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

import * as esm from "@keyplane/sdk";

import { packageVersion, world } from "./support/world.js";

const require = createRequire(import.meta.url);
const root = new URL("../../", import.meta.url);

test("ESM and CommonJS entry points export the same client", async () => {
  const cjs = require("@keyplane/sdk") as typeof esm;
  assert.equal(typeof cjs.BotBrainsClient, "function");
  assert.equal(esm.BotBrainsClient, esm.KeyplaneClient);
  assert.equal(cjs.BotBrainsClient, cjs.KeyplaneClient);
  assert.notEqual(cjs.KeyplaneClient, esm.KeyplaneClient, "two builds, one per module system");
  assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort());
  assert.ok(require.resolve("@keyplane/sdk").endsWith("/dist/cjs/index.js"));

  // The CommonJS build talks to the server too, with its own error classes.
  const run = await world();
  const client = new cjs.KeyplaneClient({ apiKey: "sk_live_" + "A".repeat(43), projectId: run.projectId, baseUrl: run.baseUrl });
  const error = await client.project().catch((e: unknown) => e);
  assert.ok(error instanceof cjs.InvalidApiKeyError);
  assert.ok(error instanceof cjs.AuthenticationError);
});

test("package.json: exports with types, no runtime dependencies, version in step", async () => {
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
    dependencies?: object;
    exports: { ".": { import: { types: string }; require: { types: string } } };
    engines: { node: string };
  };
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.engines.node, ">=18");
  for (const types of [pkg.exports["."].import.types, pkg.exports["."].require.types]) {
    assert.ok(existsSync(new URL(types, root)), `${types} is built`);
  }
  assert.equal(esm.VERSION, await packageVersion());
});
