import { parseSnippet, type Page, type Snippet } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

/** Knowledge snippets: what generated answers are made from. */
export class Snippets extends Resource {
  /** Newest first; `dataProviderId` keeps the ones that provider's syncs made (knowledge:read). */
  list(params: PageParams & { dataProviderId?: number | undefined } = {}): Promise<Page<Snippet>> {
    const { limit, cursor, dataProviderId } = params;
    return this.page(this.path("snippets"), parseSnippet, { limit, cursor, data_provider_id: dataProviderId });
  }

  iterate(params: IterateParams & { dataProviderId?: number | undefined } = {}): AsyncGenerator<Snippet, void, undefined> {
    const query = { data_provider_id: params.dataProviderId };
    return this.paginate(this.path("snippets"), parseSnippet, query, params.pageSize);
  }

  get(snippetId: number): Promise<Snippet> {
    return this.json(parseSnippet, "GET", this.path("snippets", snippetId));
  }

  /** (knowledge:write) */
  create(params: { title: string; content: string; url?: string | null | undefined }): Promise<Snippet> {
    const json: Record<string, unknown> = { title: params.title, content: params.content };
    if (params.url != null) json["url"] = params.url;
    return this.json(parseSnippet, "POST", this.path("snippets"), { json });
  }

  /** Changes the fields given; `url: null` removes the URL (knowledge:write). */
  update(
    snippetId: number,
    params: { title?: string | undefined; content?: string | undefined; url?: string | null | undefined },
  ): Promise<Snippet> {
    const json: Record<string, unknown> = {};
    if (params.title !== undefined) json["title"] = params.title;
    if (params.content !== undefined) json["content"] = params.content;
    if (params.url !== undefined) json["url"] = params.url;
    return this.json(parseSnippet, "PATCH", this.path("snippets", snippetId), { json });
  }

  delete(snippetId: number): Promise<void> {
    return this.send("DELETE", this.path("snippets", snippetId));
  }
}
