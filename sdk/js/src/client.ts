/**
 * The client: one object per resource of DESIGN §6, as in the botBrains guide.
 *
 *     const client = new KeyplaneClient({ apiKey, projectId, baseUrl });
 *     const page = await client.conversations.list({ limit: 50, status: "unresolved" });
 *     for await (const user of client.users.iterate()) { ... }
 */

import { parseProject, type Project } from "./models.js";
import { Conversations } from "./resources/conversations.js";
import { DataProviders } from "./resources/data-providers.js";
import { Deployments } from "./resources/deployments.js";
import { Exports } from "./resources/exports.js";
import { Files } from "./resources/files.js";
import { Metrics, Topics } from "./resources/insights.js";
import { Labels } from "./resources/labels.js";
import { Snippets } from "./resources/snippets.js";
import { Tables } from "./resources/tables.js";
import { Users } from "./resources/users.js";
import { Webhooks } from "./resources/webhooks.js";
import { resolveConfig, Transport, type ClientOptions, type Config, type RequestOptions } from "./transport.js";

/**
 * The keyplane platform API client. Retries a 429 up to `maxRetries` times (3), waiting what
 * Retry-After asks unless that exceeds `maxRetryWait`; then throws RateLimitError. Every other
 * failure is a typed KeyplaneError (see errors.ts); nothing is left as an unhandled rejection.
 */
export class KeyplaneClient {
  readonly config: Config;
  readonly conversations: Conversations;
  readonly users: Users;
  readonly snippets: Snippets;
  readonly dataProviders: DataProviders;
  readonly tables: Tables;
  readonly files: Files;
  readonly labels: Labels;
  readonly topics: Topics;
  readonly metrics: Metrics;
  readonly deployments: Deployments;
  readonly exports: Exports;
  readonly webhooks: Webhooks;
  protected readonly transport: Transport;

  /** Throws ConfigurationError when the API key or project id is missing (naming the variable). */
  constructor(options: ClientOptions = {}) {
    this.config = resolveConfig(options);
    this.transport = new Transport(this.config);
    this.conversations = new Conversations(this.transport);
    this.users = new Users(this.transport);
    this.snippets = new Snippets(this.transport);
    this.dataProviders = new DataProviders(this.transport);
    this.tables = new Tables(this.transport);
    this.files = new Files(this.transport);
    this.labels = new Labels(this.transport);
    this.topics = new Topics(this.transport);
    this.metrics = new Metrics(this.transport);
    this.deployments = new Deployments(this.transport);
    this.exports = new Exports(this.transport);
    this.webhooks = new Webhooks(this.transport);
  }

  /** The project the key belongs to (project:read). */
  project(): Promise<Project> {
    return this.transport.request("GET", this.path()).then(parseProject);
  }

  /** `/v1/projects/{projectId}/...` with each part escaped, for `request`. */
  path(...parts: (string | number)[]): string {
    return this.transport.path(...parts);
  }

  /**
   * Any endpoint, with the client's authentication, retries, timeout and typed errors; answers
   * the decoded JSON as the server sent it (undefined for a 204).
   */
  request(method: string, path: string, options?: RequestOptions): Promise<unknown> {
    return this.transport.request(method, path, options);
  }
}

/** The name the botBrains guide uses: `new BotBrainsClient({ apiKey, projectId })`. */
export const BotBrainsClient = KeyplaneClient;
export type BotBrainsClient = KeyplaneClient;
