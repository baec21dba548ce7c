import { parseEndUser, type BatchResult, type EndUser, type JsonObject, type Page } from "../models.js";
import { Resource, type BatchOptions, type IterateParams, type PageParams } from "./base.js";

/**
 * The fields to set. Left out (undefined): unchanged; null: cleared. `externalAttributes` is
 * merged into the stored object; a null value inside removes that attribute.
 */
export interface EndUserFields {
  firstName?: string | null | undefined;
  lastName?: string | null | undefined;
  email?: string | null | undefined;
  locale?: string | null | undefined;
  externalAttributes?: JsonObject | null | undefined;
}

/** One item of `users.upsertMany`: the end user's id and the fields to set (as `upsert`). */
export interface EndUserItem extends EndUserFields {
  externalId: string;
}

const WIRE: Record<keyof EndUserFields, string> = {
  firstName: "first_name",
  lastName: "last_name",
  email: "email",
  locale: "locale",
  externalAttributes: "external_attributes",
};

function wire(fields: EndUserFields): JsonObject {
  const json: JsonObject = {};
  for (const [name, key] of Object.entries(WIRE) as [keyof EndUserFields, string][]) {
    if (fields[name] !== undefined) json[key] = fields[name];
  }
  return json;
}

/** End users of your platform: the "userpool". */
export class Users extends Resource {
  /** One page, newest first; `email` keeps the users with that address (userpool:read). */
  list(params: PageParams & { email?: string | undefined } = {}): Promise<Page<EndUser>> {
    const { limit, cursor, email } = params;
    return this.page(this.path("users"), parseEndUser, { limit, cursor, email });
  }

  iterate(params: IterateParams & { email?: string | undefined } = {}): AsyncGenerator<EndUser, void, undefined> {
    return this.paginate(this.path("users"), parseEndUser, { email: params.email }, params.pageSize);
  }

  get(externalId: string): Promise<EndUser> {
    return this.json(parseEndUser, "GET", this.path("users", externalId));
  }

  /** Creates the end user or updates the fields given (userpool:update). */
  upsert(externalId: string, fields: EndUserFields = {}): Promise<EndUser> {
    return this.json(parseEndUser, "PATCH", this.path("users", externalId), { json: wire(fields) });
  }

  /** The same as `upsert` (the endpoint is a PATCH). */
  update(externalId: string, fields: EndUserFields = {}): Promise<EndUser> {
    return this.upsert(externalId, fields);
  }

  /**
   * Creates or updates many end users (each `{ externalId, ...fields }`, as `upsert`): up to
   * 1,000 per request, each request one transaction and one request toward the rate limit;
   * longer lists are sent in several (`chunkSize`). A refused item throws ValidationError
   * naming its index and field (`details[0].index`, `.field`); nothing of its request is
   * written, earlier requests stay (userpool:update).
   */
  upsertMany(users: readonly EndUserItem[], options: BatchOptions = {}): Promise<BatchResult> {
    const items = users.map((user) => ({ external_id: user.externalId, ...wire(user) }));
    return this.batches(this.path("users", "batch"), items, options);
  }
}
