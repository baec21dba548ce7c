import { parseEndUser, type EndUser, type JsonObject, type Page } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

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

const WIRE: Record<keyof EndUserFields, string> = {
  firstName: "first_name",
  lastName: "last_name",
  email: "email",
  locale: "locale",
  externalAttributes: "external_attributes",
};

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
    const json: JsonObject = {};
    for (const [name, wire] of Object.entries(WIRE) as [keyof EndUserFields, string][]) {
      if (fields[name] !== undefined) json[wire] = fields[name];
    }
    return this.json(parseEndUser, "PATCH", this.path("users", externalId), { json });
  }

  /** The same as `upsert` (the endpoint is a PATCH). */
  update(externalId: string, fields: EndUserFields = {}): Promise<EndUser> {
    return this.upsert(externalId, fields);
  }
}
