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
 *     const event = parseWebhook(secret, req.headers, rawBody); // verified and decoded, or throws
 *
 * Pass the body exactly as received (a Buffer or string), never re-serialized JSON.
 */

import { createHmac, timingSafeEqual } from "node:crypto";

import { InvalidResponseError, KeyplaneError, isObject } from "./errors.js";
import { parseWebhookEvent, type WebhookEvent } from "./models.js";

export const SIGNATURE_HEADER = "X-Keyplane-Signature";
export const EVENT_HEADER = "X-Keyplane-Event";
export const DELIVERY_HEADER = "X-Keyplane-Delivery";
export const DEFAULT_TOLERANCE = 300;

export type WebhookBody = string | Uint8Array;

/**
 * The signature header's value, or the request's headers to find it in: Node's `req.headers`
 * (lower-case names), a fetch `Headers` (`request.headers`), or a plain object of any case.
 */
export type SignatureSource =
  | string
  | readonly string[]
  | null
  | undefined
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The delivery's signature does not match the secret, or it is too old: answer 400 and do not act on it. */
export class WebhookSignatureError extends KeyplaneError {
  static override readonly code: string = "invalid_webhook_signature";
}

function signatureHeader(source: SignatureSource): string | undefined {
  if (source == null || typeof source === "string") return source ?? undefined;
  if (Array.isArray(source)) return source.join(",");
  if (typeof (source as { get?: unknown }).get === "function") {
    return (source as { get(name: string): string | null }).get(SIGNATURE_HEADER) ?? undefined;
  }
  const wanted = SIGNATURE_HEADER.toLowerCase();
  for (const [name, value] of Object.entries(source as Record<string, string | readonly string[] | undefined>)) {
    if (name.toLowerCase() === wanted) return typeof value === "string" ? value : value?.join(",");
  }
  return undefined;
}

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
 * of now. A missing or malformed header is false, never an exception. `header` is the header's
 * value (what Node's `req.headers[...]` gives: a string, an array of them, or undefined) or
 * the request's headers (see SignatureSource).
 */
export function verifyWebhookSignature(
  secret: string,
  header: SignatureSource,
  rawBody: WebhookBody,
  options: VerifyOptions = {},
): boolean {
  const text = signatureHeader(header);
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

/**
 * The event of a verified delivery (`{ event, projectId, mode, createdAt, data }`, `data` as
 * sent), as Python's `parse_webhook`. Throws WebhookSignatureError when `header` (the
 * signature header or the request's headers) does not sign `rawBody` under `secret` within
 * `tolerance` seconds; `rawBody` must be the bytes received, unparsed.
 *
 *     app.post("/hooks", express.raw({ type: "application/json" }), (req, res) => {
 *       const event = parseWebhook(secret, req.headers, req.body); // 400 on WebhookSignatureError
 *     });
 */
export function parseWebhook(
  secret: string,
  header: SignatureSource,
  rawBody: WebhookBody,
  options: VerifyOptions = {},
): WebhookEvent {
  if (!verifyWebhookSignature(secret, header, rawBody, options)) {
    throw new WebhookSignatureError(
      `The ${SIGNATURE_HEADER} header does not sign this body with this secret (or is older than ` +
        `${options.tolerance ?? DEFAULT_TOLERANCE} seconds); pass the raw request body, unparsed.`,
    );
  }
  const text = typeof rawBody === "string" ? rawBody : new TextDecoder().decode(rawBody);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new InvalidResponseError("The webhook's body is signed but is not JSON.", { cause });
  }
  if (!isObject(value)) throw new InvalidResponseError("The webhook's body is signed but is not a JSON object.");
  return parseWebhookEvent(value);
}
