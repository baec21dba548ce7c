import type { JsonObject } from "../models.js";
import { Resource } from "./base.js";

/**
 * Streamed exports, one JSON object per conversation (with its messages), as the server sends
 * them (snake_case, like any data dump): `for await (const line of client.exports.conversations())`.
 */
export class Exports extends Resource {
  /** Without end-user PII (export:read). */
  conversations(): AsyncGenerator<JsonObject, void, undefined> {
    return this.transport.lines(this.path("exports", "conversations"));
  }

  /** Like `conversations()`, with each end user's profile under "user" (full_export:read). */
  full(): AsyncGenerator<JsonObject, void, undefined> {
    return this.transport.lines(this.path("exports", "full"));
  }
}
