/**
 * verifyWebhookSignature accepts exactly what the Python `keyplane.webhooks` signs (the server's
 * own signer, run here) and refuses what it would refuse: other bodies, other secrets, stale or
 * future timestamps, malformed headers. Several v1 values (a secret rotation) are accepted.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";

import {
  InvalidResponseError,
  KeyplaneError,
  parseWebhook,
  SIGNATURE_HEADER,
  signWebhook,
  verifyWebhookSignature,
  WebhookSignatureError,
} from "@keyplane/sdk";

import { pythonBin } from "./support/keyplane.js";

const run = promisify(execFile);

/** keyplane.webhooks.sign(secret, body, timestamp) and verify_signature(...) in Python. */
async function python(code: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(pythonBin(), ["-c", code, ...args], { timeout: 30_000 });
  return stdout.trim();
}

const SIGN = `
import sys
from keyplane.webhooks import sign
print(sign(sys.argv[1], sys.argv[2].encode("utf-8"), int(sys.argv[3]) if len(sys.argv) > 3 else None))
`;

const SECRET = "whsec_3xKq9f2mTnB7rPz";
const BODY = JSON.stringify({ event: "api_key.expiring", data: { key_id: "key_1", name: "CRM Sync ✓" } });

test("a signature made by the Python signer verifies, as text or bytes", async () => {
  const header = await python(SIGN, SECRET, BODY);
  assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
  assert.equal(verifyWebhookSignature(SECRET, header, BODY), true);
  assert.equal(verifyWebhookSignature(SECRET, header, Buffer.from(BODY, "utf8")), true);
  assert.equal(verifyWebhookSignature(SECRET, [header], new TextEncoder().encode(BODY)), true);
  assert.equal(SIGNATURE_HEADER, "X-Keyplane-Signature");
  // And the JavaScript signer makes the same header as the Python one for the same moment.
  const moment = Number(/t=(\d+)/.exec(header)?.[1]);
  assert.equal(signWebhook(SECRET, BODY, moment), header);
});

test("other bodies, secrets and malformed headers are refused", async () => {
  const header = await python(SIGN, SECRET, BODY);
  assert.equal(verifyWebhookSignature(SECRET, header, BODY + " "), false);
  assert.equal(verifyWebhookSignature(SECRET, header, JSON.stringify(JSON.parse(BODY), null, 1)), false);
  assert.equal(verifyWebhookSignature("whsec_other", header, BODY), false);
  for (const bad of [undefined, null, "", "t=,v1=", "v1=abc", header.replace(/t=\d+,/, ""), header.replace(/,v1=.*/, ""), "garbage"]) {
    assert.equal(verifyWebhookSignature(SECRET, bad, BODY), false, String(bad));
  }
  assert.equal(verifyWebhookSignature(SECRET, header.replace(/v1=(.)/, "v1=X"), BODY), false);
  assert.equal(verifyWebhookSignature(SECRET, header + "0", BODY), false, "a longer digest is not a match");
});

test("the timestamp is checked against the tolerance (300 s by default)", async () => {
  const now = Math.floor(Date.now() / 1000);
  const old = await python(SIGN, SECRET, BODY, String(now - 301));
  assert.equal(verifyWebhookSignature(SECRET, old, BODY), false);
  assert.equal(verifyWebhookSignature(SECRET, old, BODY, { tolerance: 600 }), true);
  const future = await python(SIGN, SECRET, BODY, String(now + 400));
  assert.equal(verifyWebhookSignature(SECRET, future, BODY), false);
  const fixed = await python(SIGN, SECRET, BODY, "1700000000");
  assert.equal(verifyWebhookSignature(SECRET, fixed, BODY, { now: 1_700_000_299 }), true);
  assert.equal(verifyWebhookSignature(SECRET, fixed, BODY, { now: 1_700_000_301 }), false);
});

test("several v1 values: any may match (a secret rotation), as in Python", async () => {
  const now = String(Math.floor(Date.now() / 1000));
  const byOld = await python(SIGN, "whsec_old", BODY, now);
  const byNew = await python(SIGN, SECRET, BODY, now);
  const both = `${byOld}, ${byNew.replace(/^t=\d+,/, "")}`;
  assert.equal(verifyWebhookSignature(SECRET, both, BODY), true);
  assert.equal(verifyWebhookSignature("whsec_old", both, BODY), true);
  assert.equal(verifyWebhookSignature("whsec_third", both, BODY), false);
  // The Python verifier agrees on the same inputs.
  const VERIFY = "import sys\nfrom keyplane.webhooks import verify_signature\nprint(verify_signature(sys.argv[1], sys.argv[2], sys.argv[3].encode()))";
  assert.equal(await python(VERIFY, SECRET, both, BODY), "True");
  assert.equal(await python(VERIFY, "whsec_third", both, BODY), "False");
});

test("parseWebhook: the verified event, from the header or the request's headers of any kind", async () => {
  const header = await python(SIGN, SECRET, BODY);
  const sources = [
    header,
    [header],
    { "x-keyplane-signature": header, "content-type": "application/json" }, // Node's req.headers
    { "X-Keyplane-Signature": header }, // any case
    new Headers({ "X-Keyplane-Signature": header }), // fetch, Next.js, Hono...
  ];
  for (const source of sources) {
    const event = parseWebhook(SECRET, source, Buffer.from(BODY, "utf8"));
    assert.equal(event.event, "api_key.expiring");
    assert.deepEqual(event.data, { key_id: "key_1", name: "CRM Sync ✓" }, "data is left as sent");
    assert.equal(verifyWebhookSignature(SECRET, source, BODY), true);
  }
  const refused = (() => {
    try {
      parseWebhook(SECRET, { "content-type": "application/json" }, BODY);
    } catch (error) {
      return error;
    }
    return undefined;
  })();
  assert.ok(refused instanceof WebhookSignatureError && refused instanceof KeyplaneError);
  assert.equal(refused.code, "invalid_webhook_signature");
  assert.match(refused.message, /raw request body/);
  assert.throws(() => parseWebhook(SECRET, header, BODY, { now: Date.now() / 1000 + 301 }), WebhookSignatureError);
  // Signed but not a JSON object: not a signature problem, a typed error all the same.
  const text = "not json";
  assert.throws(() => parseWebhook(SECRET, signWebhook(SECRET, text), text), InvalidResponseError);
});
