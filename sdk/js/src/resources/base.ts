/**
 * What every resource shares: the transport, paged lists and their async iteration. A new
 * endpoint is a method on its resource class calling `this.json(...)` with a parser from
 * models.ts; a new resource is a subclass registered on the client.
 */

import { isObject, ValidationError, type JsonObject } from "../errors.js";
import { pageOf, parseBatchResult, type BatchResult, type Page, type Parser } from "../models.js";
import type { QueryValue, RequestOptions, Transport } from "../transport.js";

/** Items per batch request: the server's limit (DESIGN §6, issue 11). */
export const BATCH_LIMIT = 1000;

/** Options of every `upsertMany`. */
export interface BatchOptions {
  /** Items per request, 1–1,000; 1,000 by default. */
  chunkSize?: number | undefined;
}

export type Query = Record<string, QueryValue>;

/** Options of every `list`: one page. */
export interface PageParams {
  /** 1–100; the server's default is 20. */
  limit?: number | undefined;
  /** The `nextCursor` of the previous page. */
  cursor?: string | undefined;
}

/** Options of every `iterate`: all items, fetched `pageSize` at a time. */
export interface IterateParams {
  /** Items per request, 1–100; 100 by default. */
  pageSize?: number | undefined;
}

export abstract class Resource {
  constructor(protected readonly transport: Transport) {}

  protected path(...parts: (string | number)[]): string {
    return this.transport.path(...parts);
  }

  protected async json<T>(parse: Parser<T>, method: string, path: string, options?: RequestOptions): Promise<T> {
    return parse(await this.transport.request(method, path, options));
  }

  protected page<T>(path: string, parse: Parser<T>, query: Query): Promise<Page<T>> {
    return this.json(pageOf(parse), "GET", path, { query });
  }

  /** Every item of a paged list, following `next_cursor` until the last page. */
  protected async *paginate<T>(path: string, parse: Parser<T>, query: Query, pageSize: number | undefined): AsyncGenerator<T, void, undefined> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.page(path, parse, { ...query, limit: pageSize ?? 100, cursor });
      yield* page.data;
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }

  /**
   * Sends `items` in requests of at most `chunkSize` (each one transaction, one rate-limit
   * count) and answers one result with the indexes of `items`. A refused item refuses its
   * request whole; the requests before it stay written, and the error names the item's index
   * in `items` (not in its request).
   */
  protected async batches(path: string, items: readonly JsonObject[], options: BatchOptions = {}): Promise<BatchResult> {
    const size = Math.max(1, Math.min(Math.floor(options.chunkSize ?? BATCH_LIMIT), BATCH_LIMIT));
    const data: JsonObject[] = [];
    let created = 0;
    let updated = 0;
    for (let offset = 0; offset < items.length; offset += size) {
      let part: BatchResult;
      try {
        part = await this.json(parseBatchResult, "POST", path, { json: { items: items.slice(offset, offset + size) } });
      } catch (error) {
        throw offset > 0 && error instanceof ValidationError ? shifted(error, offset) : error;
      }
      for (const item of part.data) data.push({ ...item.raw, index: item.index + offset });
      created += part.created;
      updated += part.updated;
    }
    return parseBatchResult({ data, created, updated });
  }

  protected async send(method: string, path: string, options?: RequestOptions): Promise<void> {
    await this.transport.request(method, path, options);
  }
}

/**
 * A later request's refusal with the indexes of the whole list: `details[].index` and the
 * `loc` item position moved by `offset`, the message's "item N" too, and a note that the items
 * before `offset` were written.
 */
function shifted(error: ValidationError, offset: number): ValidationError {
  const details = error.details.map((detail): JsonObject => {
    const moved: JsonObject = { ...detail };
    if (typeof detail.index === "number") moved["index"] = detail.index + offset;
    const loc = Array.isArray(detail.loc) ? [...detail.loc] : [];
    if (loc[0] === "body" && loc[1] === "items" && typeof loc[2] === "number") loc[2] += offset;
    moved["loc"] = loc;
    return moved;
  });
  const message =
    error.message.replace(/\bitem (\d+)/, (_, n: string) => `item ${Number(n) + offset}`) +
    ` (Items 0-${offset - 1} were written by earlier requests of this call.)`;
  const body: JsonObject = isObject(error.body) ? { ...error.body, message, details } : { message, details };
  return new ValidationError(message, { status: error.status, body, cause: error });
}
