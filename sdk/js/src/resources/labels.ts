import { parseLabel, type Label, type Page } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

export class Labels extends Resource {
  /** Oldest first (label:read). */
  list(params: PageParams = {}): Promise<Page<Label>> {
    return this.page(this.path("labels"), parseLabel, { limit: params.limit, cursor: params.cursor });
  }

  iterate(params: IterateParams = {}): AsyncGenerator<Label, void, undefined> {
    return this.paginate(this.path("labels"), parseLabel, {}, params.pageSize);
  }

  /**
   * Creates the label or returns the existing one, matching names case-insensitively (the first
   * spelling stays); sets the description when one is given (label:upsert).
   */
  upsert(name: string, params: { description?: string | undefined } = {}): Promise<Label> {
    const options = params.description === undefined ? {} : { json: { description: params.description } };
    return this.json(parseLabel, "PUT", this.path("labels", name), options);
  }
}
