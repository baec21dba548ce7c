/**
 * What every resource shares: the transport, paged lists and their async iteration. A new
 * endpoint is a method on its resource class calling `this.json(...)` with a parser from
 * models.ts; a new resource is a subclass registered on the client.
 */

import { pageOf, type Page, type Parser } from "../models.js";
import type { QueryValue, RequestOptions, Transport } from "../transport.js";

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

  protected async send(method: string, path: string, options?: RequestOptions): Promise<void> {
    await this.transport.request(method, path, options);
  }
}
