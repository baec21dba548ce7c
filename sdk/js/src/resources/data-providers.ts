import { SyncTimeoutError } from "../errors.js";
import { parseDataProvider, type DataProvider, type Page } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

/** `directory`: Markdown, HTML and text files of a directory the server may read; `urls`: web pages. */
export type DataProviderSpec =
  | { name: string; type: "directory"; config: { path: string } }
  | { name: string; type: "urls"; config: { urls: string[] } };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sources of knowledge snippets, kept in step by syncs. */
export class DataProviders extends Resource {
  list(params: PageParams = {}): Promise<Page<DataProvider>> {
    return this.page(this.path("data-providers"), parseDataProvider, { limit: params.limit, cursor: params.cursor });
  }

  iterate(params: IterateParams = {}): AsyncGenerator<DataProvider, void, undefined> {
    return this.paginate(this.path("data-providers"), parseDataProvider, {}, params.pageSize);
  }

  /** (knowledge:write) */
  create(spec: DataProviderSpec): Promise<DataProvider> {
    return this.json(parseDataProvider, "POST", this.path("data-providers"), { json: spec });
  }

  /** The provider with its latest sync's status and counts. */
  get(dataProviderId: number): Promise<DataProvider> {
    return this.json(parseDataProvider, "GET", this.path("data-providers", dataProviderId));
  }

  /**
   * Starts a sync in the background (202) and returns the provider, its `sync.status` pending
   * or running; a sync already under way is joined (knowledge:write).
   */
  sync(dataProviderId: number): Promise<DataProvider> {
    return this.json(parseDataProvider, "POST", this.path("data-providers", dataProviderId, "sync"));
  }

  /**
   * Polls until the sync is no longer pending or running and returns the provider (check
   * `sync.status`: succeeded or failed); SyncTimeoutError after `timeout` milliseconds.
   */
  async waitForSync(
    dataProviderId: number,
    options: { timeout?: number | undefined; interval?: number | undefined } = {},
  ): Promise<DataProvider> {
    const timeout = options.timeout ?? 60_000;
    const deadline = Date.now() + timeout;
    for (;;) {
      const provider = await this.get(dataProviderId);
      if (provider.sync.status !== "pending" && provider.sync.status !== "running") return provider;
      if (Date.now() >= deadline) throw new SyncTimeoutError(dataProviderId, provider.sync.status, timeout);
      await sleep(options.interval ?? 500);
    }
  }
}
