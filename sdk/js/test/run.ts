/**
 * `npm test`'s last step: one keyplane server for the whole run (see support/keyplane.ts), then
 * Node's test runner over every build/test/*.test.js with that server in KEYPLANE_JS_TEST, then
 * the server stopped whatever happened. Exits with the test runner's code.
 */

import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";

import { startKeyplane, type World } from "./support/keyplane.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const files = (await readdir(here)).filter((name) => name.endsWith(".test.js")).sort();
const only = process.argv.slice(2);
const chosen = only.length ? files.filter((name) => only.some((part) => name.includes(part))) : files;

const keyplane = await startKeyplane();
let code = 1;
try {
  const world: World = { baseUrl: keyplane.baseUrl, orgId: keyplane.orgId, projectId: keyplane.projectId, env: keyplane.env };
  const child = spawn(process.execPath, ["--test", ...chosen], {
    cwd: here,
    stdio: "inherit",
    env: { ...process.env, KEYPLANE_JS_TEST: JSON.stringify(world) },
  });
  code = await new Promise<number>((done) => child.once("exit", (status) => done(status ?? 1)));
} finally {
  await keyplane.stop();
}
process.exit(code);
