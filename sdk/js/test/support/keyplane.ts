/**
 * A real keyplane server for the JavaScript tests: `keyplane serve` (the repository's venv) on
 * a free loopback port over a fresh SQLite database in a temporary directory, the owner, org
 * and project made with `keyplane bootstrap` and keys with `keyplane keys create`, as a user of
 * the CLI would (the same steps as tests/cli/conftest.py's Server).
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

const run = promisify(execFile);

/** sdk/js/build/test/support → the repository root. */
export const REPO_ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../../..");

export function keyplaneBin(): string {
  return process.env["KEYPLANE_BIN"] || join(REPO_ROOT, ".venv", "bin", "keyplane");
}

export function pythonBin(): string {
  return process.env["KEYPLANE_PYTHON"] || join(REPO_ROOT, ".venv", "bin", "python");
}

/** The environment the server and the CLI share: this one without any KEYPLANE_* setting, plus the run's. */
export function serverEnv(dataDir: string, secretKey: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("KEYPLANE_") && !name.startsWith("BOTBRAINS_")) env[name] = value;
  }
  return {
    ...env,
    KEYPLANE_DATABASE_URL: `sqlite:///${join(dataDir, "keyplane.db")}`,
    KEYPLANE_SECRET_KEY: secretKey,
    KEYPLANE_DATA_DIR: dataDir,
    KEYPLANE_LOG_FORMAT: "json",
    PYTHONUNBUFFERED: "1",
  };
}

/** Runs `keyplane <args> --json` and decodes what it prints. */
export async function cliJson(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await run(keyplaneBin(), [...args, "--json"], { env, timeout: 60_000, cwd: env["KEYPLANE_DATA_DIR"] });
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`keyplane ${args.join(" ")} failed: ${failed.message}\n${failed.stdout ?? ""}${failed.stderr ?? ""}`);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

const pause = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

export interface Keyplane {
  baseUrl: string;
  orgId: number;
  projectId: number;
  env: NodeJS.ProcessEnv;
  dataDir: string;
  stop(): Promise<void>;
}

async function healthy(baseUrl: string): Promise<boolean> {
  try {
    return (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
  } catch {
    return false;
  }
}

/** Bootstraps a fresh database and starts `keyplane serve` on it; `stop()` ends it and removes the directory. */
export async function startKeyplane(): Promise<Keyplane> {
  const dataDir = await mkdtemp(join(tmpdir(), "keyplane-js-"));
  const env = serverEnv(dataDir, randomBytes(32).toString("base64url"));
  const made = await cliJson(env, "bootstrap", "--email", "owner@example.com", "--password", "correct horse battery staple");
  const orgId = Number(made["org_id"]);
  const projectId = Number(made["project_id"]);
  // One budget the tests cannot exhaust by accident; the rate-limit tests give their keys their own limits.
  await cliJson(env, "orgs", "set-plan", String(orgId), "--plan", "enterprise", "--per-minute", "100000", "--per-day", "10000000");

  let child: ChildProcess | undefined;
  let baseUrl = "";
  let log = "";
  for (let attempt = 0; attempt < 3 && !baseUrl; attempt++) {
    const port = await freePort();
    const started = spawn(keyplaneBin(), ["serve", "--host", "127.0.0.1", "--port", String(port)], {
      env,
      cwd: dataDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    started.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && started.exitCode === null) {
      if (await healthy(url)) {
        baseUrl = url;
        child = started;
        break;
      }
      await pause(100);
    }
    if (!baseUrl) {
      started.kill("SIGKILL");
      // A port taken between freePort() and the bind gets another try; anything else fails.
      if (!/address already in use/i.test(log)) break;
    }
  }
  if (!baseUrl || !child) {
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`keyplane serve did not become healthy:\n${log}`);
  }
  const server = child;
  const killOnExit = (): void => void server.kill("SIGKILL");
  process.once("exit", killOnExit);
  return {
    baseUrl,
    orgId,
    projectId,
    env,
    dataDir,
    async stop(): Promise<void> {
      process.off("exit", killOnExit);
      if (server.exitCode === null) {
        const exited = new Promise((done) => server.once("exit", done));
        server.kill("SIGTERM");
        const forced = setTimeout(() => server.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(forced);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** What the runner hands the test files (in KEYPLANE_JS_TEST). */
export interface World {
  baseUrl: string;
  orgId: number;
  projectId: number;
  env: NodeJS.ProcessEnv;
}

export async function packageVersion(): Promise<string> {
  const text = await readFile(new URL("../../../package.json", import.meta.url), "utf8");
  return String((JSON.parse(text) as { version: string }).version);
}
