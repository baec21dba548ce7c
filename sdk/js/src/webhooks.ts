/**
 * Verifying keyplane webhooks, the same scheme as the Python `keyplane.webhooks`:
 *
 *     X-Keyplane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over `${t}.${rawBody}`>
 *
 * keyed with the endpoint's signing secret. Several `v1=` values may come (during a secret
 * rotation the sender signs with both secrets); any may match. The timestamp is signed too, so
 * a captured delivery cannot be replayed after `tolerance` seconds.
 *
 *     if (!verifyWebhookSignature(secret, req.headers["x-keyplane-signature"], rawBody)) return 400;
 *
 * Pass the body exactly as received (a Buffer or string), never re-serialized JSON.
 */

import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "X-Keyplane-Signature";
export const EVENT_HEADER = "X-Keyplane-Event";
export const DELIVERY_HEADER = "X-Keyplane-Delivery";
export const DEFAULT_TOLERANCE = 300;

export type WebhookBody = string | Uint8Array;

export interface VerifyOptions {
  /** Seconds a signature stays valid either side of now; 300. */
  tolerance?: number | undefined;
  /** Now, in unix seconds (for tests); the clock by default. */
  now?: number | undefined;
}

function digest(secret: string, timestamp: number, body: WebhookBody): string {
  const hmac = createHmac("sha256", Buffer.from(secret, "utf8"));
  hmac.update(`${timestamp}.`, "ascii");
  hmac.update(typeof body === "string" ? Buffer.from(body, "utf8") : body);
  return hmac.digest("hex");
}

/** The signature header value for `body`, sent at `timestamp` (unix seconds, now by default). */
export function signWebhook(secret: string, body: WebhookBody, timestamp?: number): string {
  const moment = timestamp ?? Math.floor(Date.now() / 1000);
  return `t=${moment},v1=${digest(secret, moment, body)}`;
}

/**
 * True when `header` is a signature of `rawBody` under `secret` made within `tolerance` seconds
 * of now. A missing or malformed header is false, never an exception. `header` may be what
 * Node's `req.headers[...]` gives (a string, an array of them, or undefined).
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | string[] | null | undefined,
  rawBody: WebhookBody,
  options: VerifyOptions = {},
): boolean {
  const text = Array.isArray(header) ? header.join(",") : header;
  if (!text) return false;
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of text.split(",")) {
    const trimmed = part.trim();
    const cut = trimmed.indexOf("=");
    const name = cut < 0 ? trimmed : trimmed.slice(0, cut);
    const value = cut < 0 ? "" : trimmed.slice(cut + 1);
    if (name === "t" && /^[0-9]{1,12}$/.test(value)) {
      timestamp = Number(value);
    } else if (name === "v1" && value) {
      candidates.push(value);
    }
  }
  if (timestamp === undefined || candidates.length === 0) return false;
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - timestamp) > (options.tolerance ?? DEFAULT_TOLERANCE)) return false;
  const expected = Buffer.from(digest(secret, timestamp, rawBody), "utf8");
  return candidates.some((candidate) => {
    const given = Buffer.from(candidate, "utf8");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
