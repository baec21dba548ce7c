import { parseSnippet, type BatchResult, type JsonObject, type Page, type Snippet } from "../models.js";
import { Resource, type BatchOptions, type IterateParams, type PageParams } from "./base.js";

/**
 * One item of `snippets.upsertMany`: with an `id` that snippet is updated; else with a `url`
 * the hand-written snippet with that url is updated; else a snippet is created.
 */
export interface SnippetItem {
  title: string;
  content: string;
  url?: string | null | undefined;
  id?: number | undefined;
}

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

  /**
   * Creates or updates many snippets (see SnippetItem), chunked and refused like
   * `users.upsertMany`; `data[i].id` is each item's snippet (knowledge:write).
   */
  upsertMany(snippets: readonly SnippetItem[], options: BatchOptions = {}): Promise<BatchResult> {
    const items = snippets.map((snippet) => {
      const item: JsonObject = { title: snippet.title, content: snippet.content };
      if (snippet.url != null) item["url"] = snippet.url;
      if (snippet.id !== undefined) item["id"] = snippet.id;
      return item;
    });
    return this.batches(this.path("snippets", "batch"), items, options);
  }

  delete(snippetId: number): Promise<void> {
    return this.send("DELETE", this.path("snippets", snippetId));
  }
}
