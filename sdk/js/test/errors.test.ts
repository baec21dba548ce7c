/**
 * Failures as typed errors: each DESIGN §4 code as its class (a 403 naming `required`), 429s
 * retried after Retry-After up to the limits, bad configuration refused at construction, and
 * network failures, timeouts and non-JSON bodies as typed errors, never unhandled rejections.
 */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, test } from "node:test";

import {
  AuthenticationError,
  BotBrainsClient,
  ConfigurationError,
  ConnectionFailedError,
  InsufficientPermissionsError,
  InvalidApiKeyError,
  InvalidResponseError,
  KeyplaneClient,
  KeyplaneError,
  MalformedApiKeyError,
  MissingAuthorizationError,
  NotFoundError,
  PermissionError,
  ProjectMismatchError,
  RateLimitError,
  RequestTimeoutError,
  ServerError,
  ValidationError,
  errorFromResponse,
  retryAfterSeconds,
  type RetryInfo,
} from "@keyplane/sdk";
import * as sdk from "@keyplane/sdk";

import { createKey, freePort, world, type World } from "./support/world.js";

const unhandled: unknown[] = [];
const record = (reason: unknown): void => void unhandled.push(reason);
process.on("unhandledRejection", record);

let run: World;
before(async () => {
  run = await world();
});
after(() => {
  process.off("unhandledRejection", record);
  assert.deepEqual(unhandled, [], "no promise of the SDK was left rejected without a handler");
});

function clientFor(apiKey: string, options: ConstructorParameters<typeof KeyplaneClient>[0] = {}): KeyplaneClient {
  return new KeyplaneClient({ apiKey, projectId: run.projectId, baseUrl: run.baseUrl, ...options });
}

test("a missing api key or project id fails at construction, naming the environment variable", () => {
  const saved = { ...process.env };
  try {
    for (const name of ["KEYPLANE_API_KEY", "BOTBRAINS_API_KEY", "KEYPLANE_PROJECT_ID", "BOTBRAINS_PROJECT_ID", "KEYPLANE_BASE_URL"]) {
      delete process.env[name];
    }
    assert.throws(
      () => new BotBrainsClient({ apiKey: process.env.BOTBRAINS_API_KEY, projectId: 123 }),
      (error: unknown) => error instanceof ConfigurationError && /BOTBRAINS_API_KEY/.test(error.message) && /KEYPLANE_API_KEY/.test(error.message),
    );
    assert.throws(
      () => new BotBrainsClient({ apiKey: "sk_live_x", projectId: process.env.BOTBRAINS_PROJECT_ID }),
      (error: unknown) => error instanceof ConfigurationError && /BOTBRAINS_PROJECT_ID/.test(error.message),
    );
    assert.throws(() => new KeyplaneClient({ apiKey: "k", projectId: "abc" }), /numeric id/);
    assert.throws(() => new KeyplaneClient({ apiKey: "k", projectId: 1, baseUrl: "not a url" }), ConfigurationError);
    assert.throws(() => new KeyplaneClient({ apiKey: "k", projectId: 1, maxRetries: -1 }), /maxRetries/);

    process.env.BOTBRAINS_API_KEY = "sk_live_from_botbrains";
    process.env.BOTBRAINS_PROJECT_ID = "123";
    const fromEnv = new KeyplaneClient();
    assert.equal(fromEnv.config.apiKey, "sk_live_from_botbrains");
    assert.equal(fromEnv.config.projectId, 123);
    assert.equal(fromEnv.config.baseUrl, "http://127.0.0.1:8000");
    process.env.KEYPLANE_API_KEY = "sk_live_from_keyplane";
    process.env.KEYPLANE_PROJECT_ID = "7";
    process.env.KEYPLANE_BASE_URL = "http://127.0.0.1:9/";
    const preferred = new KeyplaneClient();
    assert.equal(preferred.config.apiKey, "sk_live_from_keyplane");
    assert.equal(preferred.config.baseUrl, "http://127.0.0.1:9");
    assert.equal(preferred.path("users", "a/b"), "/v1/projects/7/users/a%2Fb");
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
});

test("each error code of DESIGN §4 is its own class; a 403 names the permission required", async () => {
  const reader = clientFor(await createKey(run, ["table:read"]));
  const denied = await reader.tables.create({ name: "t", columns: [{ name: "a", type: "text" }] }).catch((e: unknown) => e);
  assert.ok(denied instanceof InsufficientPermissionsError);
  assert.ok(denied instanceof PermissionError);
  assert.ok(denied instanceof KeyplaneError);
  assert.equal(denied.required, "table:write");
  assert.equal(denied.status, 403);
  assert.equal(denied.code, "insufficient_permissions");
  assert.equal(denied.name, "InsufficientPermissionsError");
  assert.match(denied.message, /table:write/);

  await assert.rejects(reader.tables.rows(999_999), NotFoundError);
  const invalid = await reader.tables.list({ cursor: "garbage" }).catch((e: unknown) => e);
  assert.ok(invalid instanceof ValidationError);
  assert.ok(invalid.details.length > 0);
  assert.equal(invalid.status, 422);

  const elsewhere = new KeyplaneClient({ apiKey: reader.config.apiKey, projectId: run.projectId + 1000, baseUrl: run.baseUrl });
  await assert.rejects(elsewhere.tables.list(), ProjectMismatchError);

  const truncated = clientFor(reader.config.apiKey.slice(0, -3));
  const malformed = await truncated.tables.list().catch((e: unknown) => e);
  assert.ok(malformed instanceof MalformedApiKeyError);
  assert.ok(malformed instanceof AuthenticationError);
  assert.match(malformed.message, /48/);
  const typo = reader.config.apiKey.slice(0, -1) + (reader.config.apiKey.endsWith("A") ? "B" : "A");
  await assert.rejects(clientFor(typo).tables.list(), InvalidApiKeyError);

  // The raw request escape hatch keeps the same decoding (here: no Authorization at all).
  const bare = await fetch(`${run.baseUrl}/v1/projects/${run.projectId}`);
  assert.equal(bare.status, 401);
  assert.ok(errorFromResponse(bare.status, bare.statusText, await bare.text()) instanceof MissingAuthorizationError);
});

// DESIGN §4: status, code and the family a caller may catch instead.
const TABLE: [number, string, string, string][] = [
  [401, "missing_authorization", "MissingAuthorizationError", "AuthenticationError"],
  [401, "malformed_authorization", "MalformedAuthorizationError", "AuthenticationError"],
  [401, "malformed_api_key", "MalformedApiKeyError", "AuthenticationError"],
  [401, "invalid_api_key", "InvalidApiKeyError", "AuthenticationError"],
  [401, "api_key_revoked", "ApiKeyRevokedError", "AuthenticationError"],
  [401, "api_key_expired", "ApiKeyExpiredError", "AuthenticationError"],
  [401, "wrong_environment", "WrongEnvironmentError", "AuthenticationError"],
  [403, "project_mismatch", "ProjectMismatchError", "PermissionError"],
  [403, "insufficient_permissions", "InsufficientPermissionsError", "PermissionError"],
  [403, "ip_not_allowed", "IpNotAllowedError", "PermissionError"],
  [404, "not_found", "NotFoundError", "KeyplaneError"],
  [422, "validation_error", "ValidationError", "KeyplaneError"],
  [429, "rate_limit_exceeded", "RateLimitError", "KeyplaneError"],
];

test("every error code of DESIGN §4 decodes to its class, unknown codes to their status's family", () => {
  for (const [status, code, name, family] of TABLE) {
    const body = JSON.stringify({ error: code, message: "m", required: "table:write", retry_after: 23, details: [{ loc: ["query"], msg: "x" }] });
    const error = errorFromResponse(status, "", body);
    assert.equal(error.constructor.name, name);
    assert.equal(error.name, name);
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.equal(error.message, "m");
    const exported = (sdk as unknown as Record<string, typeof KeyplaneError>)[family];
    assert.ok(exported && error instanceof exported, `${name} is a ${family}`);
  }
  assert.equal((errorFromResponse(403, "", '{"error":"insufficient_permissions","message":"m","required":"x:y"}') as PermissionError).required, "x:y");
  assert.equal((errorFromResponse(429, "", '{"error":"rate_limit_exceeded","message":"m","retry_after":23}') as RateLimitError).retryAfter, 23);
  const newer = errorFromResponse(403, "", '{"error":"some_new_refusal","message":"m"}');
  assert.ok(newer instanceof PermissionError);
  assert.equal(newer.code, "some_new_refusal");
  const down = errorFromResponse(503, "Service Unavailable", '{"error":"database_unavailable","message":"retry"}');
  assert.ok(down instanceof ServerError);
  assert.equal(down.code, "database_unavailable");
  const html = errorFromResponse(500, "Internal Server Error", "<html>oops</html>");
  assert.ok(html instanceof ServerError);
  assert.equal(html.message, "<html>oops</html>", "a body that is not JSON becomes the message (its start)");
  assert.equal(errorFromResponse(502, "Bad Gateway", "").message, "Bad Gateway");
});

test("the wait before a retry: Retry-After seconds or date, else the body's retry_after, else 2^attempt", () => {
  assert.equal(retryAfterSeconds(new Headers({ "retry-after": "23" }), {}, 0), 23);
  const inTen = new Date(Date.now() + 10_000).toUTCString();
  const fromDate = retryAfterSeconds(new Headers({ "retry-after": inTen }), {}, 0);
  assert.ok(fromDate > 8 && fromDate <= 10, String(fromDate));
  assert.equal(retryAfterSeconds(new Headers(), { retry_after: 7 }, 0), 7);
  assert.equal(retryAfterSeconds(new Headers(), {}, 0), 1);
  assert.equal(retryAfterSeconds(new Headers({ "retry-after": "soon" }), null, 3), 8);
});

async function spendBurst(client: KeyplaneClient): Promise<RateLimitError> {
  for (let n = 0; n < 300; n++) {
    try {
      await client.project();
    } catch (error) {
      if (error instanceof RateLimitError) return error;
      throw error;
    }
  }
  throw new Error("never rate limited");
}

test("a 429 is retried after Retry-After, up to maxRetries", async () => {
  // 60/min refills one request a second: once the burst is spent, Retry-After is 1 s.
  const key = await createKey(run, ["project:read"], { rateLimit: "60/min" });
  const limited = await spendBurst(clientFor(key, { maxRetries: 0 }));
  assert.ok(limited.retryAfter >= 1);
  assert.equal(limited.status, 429);

  const seen: { status: number; at: number; retryAfter: string | null }[] = [];
  const retries: RetryInfo[] = [];
  const patient = clientFor(key, {
    maxRetries: 5,
    onRetry: (info) => retries.push(info),
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      seen.push({ status: response.status, at: Date.now(), retryAfter: response.headers.get("retry-after") });
      return response;
    },
  });
  for (let n = 0; n < 3; n++) assert.equal((await patient.project()).id, run.projectId);
  const first429 = seen.findIndex((s) => s.status === 429);
  assert.ok(first429 >= 0, "the server did rate limit the patient client");
  const waited = seen[first429 + 1]!.at - seen[first429]!.at;
  assert.ok(waited >= Number(seen[first429]!.retryAfter) * 1000 - 50, `retried after ${waited} ms, before Retry-After`);
  assert.equal(retries[0]?.retryAfter, Number(seen[first429]!.retryAfter));
  assert.equal(seen.at(-1)?.status, 200);

  // Out of retries: the 429 surfaces, with retryAfter.
  const once = clientFor(key, { maxRetries: 1 });
  await spendBurst(clientFor(key, { maxRetries: 0 }));
  const calls = [once.project(), once.project(), once.project(), once.project()];
  const outcomes = await Promise.allSettled(calls);
  assert.ok(outcomes.some((o) => o.status === "rejected" && o.reason instanceof RateLimitError));
});

test("a 429 asking for a longer wait than maxRetryWait is thrown at once", async () => {
  // 6/min: Retry-After is about 10 s, above the 500 ms this client is willing to wait.
  const key = await createKey(run, ["project:read"], { rateLimit: "6/min" });
  const impatient = clientFor(key, { maxRetryWait: 500 });
  const started = Date.now();
  const limited = await spendBurst(impatient);
  assert.ok(limited.retryAfter > 1);
  assert.ok(Date.now() - started < 5000);
});

/** A loopback HTTP server answering with `handler`, for what keyplane itself never sends. */
async function fakeServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, server };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((done) => server.close(() => done()));
}

test("network failures, timeouts and non-JSON bodies are typed errors", async () => {
  const nobody = new KeyplaneClient({ apiKey: "sk_live_x", projectId: 1, baseUrl: `http://127.0.0.1:${await freePort()}` });
  const refused = await nobody.project().catch((e: unknown) => e);
  assert.ok(refused instanceof ConnectionFailedError);
  assert.match(refused.message, /ECONNREFUSED/);
  assert.equal(refused.status, 0);

  let retriedHtml = 0;
  const { url, server } = await fakeServer((req, res) => {
    if (req.url?.includes("/silent")) return; // never answers
    if (req.url?.endsWith("/files/1/content") || req.url === "/v1/projects/1") {
      res.writeHead(200, { "content-type": "text/html" }).end("<html>Welcome to the proxy</html>");
    } else if (req.url?.startsWith("/v1/projects/1/tables")) {
      res.writeHead(502, { "content-type": "text/html" }).end("<html>Bad gateway</html>");
    } else if (req.url?.startsWith("/v1/projects/1/labels")) {
      retriedHtml += 1;
      res.writeHead(429, { "content-type": "text/html", "retry-after": "0" }).end("<html>slow down</html>");
    } else if (req.url?.startsWith("/v1/projects/1/exports")) {
      res.writeHead(200, { "content-type": "application/x-ndjson" }).end('{"id": 1}\nnot json\n');
    } else {
      res.writeHead(200, { "content-type": "application/json" }).end('{"data": "not a list"}');
    }
  });
  try {
    const fake = new KeyplaneClient({ apiKey: "sk_live_x", projectId: 1, baseUrl: url, timeout: 300, maxRetries: 2 });
    const html = await fake.project().catch((e: unknown) => e);
    assert.ok(html instanceof InvalidResponseError);
    assert.match(html.message, /not JSON/);
    const gateway = await fake.tables.list().catch((e: unknown) => e);
    assert.ok(gateway instanceof ServerError);
    assert.equal(gateway.status, 502);
    assert.match(gateway.message, /Bad gateway/);
    const limited = await fake.labels.list().catch((e: unknown) => e);
    assert.ok(limited instanceof RateLimitError);
    assert.equal(retriedHtml, 3, "the first try and two retries");
    await assert.rejects(fake.users.list(), InvalidResponseError);
    const lines: unknown[] = [];
    await assert.rejects(async () => {
      for await (const line of fake.exports.conversations()) lines.push(line);
    }, InvalidResponseError);
    assert.deepEqual(lines, [{ id: 1 }]);

    const silent = new KeyplaneClient({ apiKey: "sk_live_x", projectId: 1, baseUrl: `${url}/silent`, timeout: 200 });
    const started = Date.now();
    const timedOut = await silent.project().catch((e: unknown) => e);
    assert.ok(timedOut instanceof RequestTimeoutError);
    assert.ok(Date.now() - started < 2000);
  } finally {
    await close(server);
  }
});
