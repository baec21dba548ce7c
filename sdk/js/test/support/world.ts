/**
 * What the test files use: the run's server (`world()`) and keys and projects made with the CLI.
 * Kept apart from keyplane.ts, which the runner imports too, because it registers a node:test
 * hook when loaded.
 */

import { after } from "node:test";

import { cliJson, startKeyplane, type Keyplane, type World } from "./keyplane.js";

export { freePort, packageVersion, type World } from "./keyplane.js";

export interface KeyOptions {
  name?: string;
  /** e.g. "60/min" (a per-key override below the plan's limit). */
  rateLimit?: string;
  project?: number;
  /** An sk_test_ key (test-mode data and webhooks). */
  test?: boolean;
}

/** A project key with exactly these permissions (and their implied ones), made with the CLI. */
export async function createKey(world: World, permissions: string[], options: KeyOptions = {}): Promise<string> {
  const args = ["keys", "create", "--project", String(options.project ?? world.projectId), "--name", options.name ?? "JS SDK test"];
  for (const permission of permissions) args.push("-p", permission);
  if (options.rateLimit) args.push("--rate-limit", options.rateLimit);
  if (options.test) args.push("--test");
  const key = await cliJson(world.env, ...args);
  return String(key["secret"]);
}

/** A new project of the run's organization (for tests that need an empty one). */
export async function createProject(world: World, name: string): Promise<number> {
  const made = await cliJson(world.env, "projects", "create", "--org", String(world.orgId), "--name", name);
  return Number(made["id"]);
}

let standalone: Promise<Keyplane> | undefined;

// Registered while the test file loads (at its top level), so that it runs when the whole file
// is done; registered inside a hook it would run when that hook ends.
if (!process.env["KEYPLANE_JS_TEST"]) {
  after(async () => {
    if (standalone) await (await standalone).stop();
  });
}

/**
 * The run's server, as the runner (build/test/run.js) started it; a test file run on its own
 * (`node --test build/test/x.test.js`) starts one for itself, stopped when the file is done.
 */
export async function world(): Promise<World> {
  const given = process.env["KEYPLANE_JS_TEST"];
  if (given) return JSON.parse(given) as World;
  standalone ??= startKeyplane();
  const started = await standalone;
  return { baseUrl: started.baseUrl, orgId: started.orgId, projectId: started.projectId, env: started.env };
}

