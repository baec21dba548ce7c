/**
 * Configuration, request building, timeouts, error decoding and the 429 retry policy: the
 * JavaScript counterpart of the Python SDK's `_transport.py`.
 */

import {
  ConfigurationError,
  ConnectionFailedError,
  InvalidResponseError,
  KeyplaneError,
  RateLimitError,
  RequestTimeoutError,
  errorFromResponse,
  isObject,
  type JsonObject,
} from "./errors.js";
import { VERSION } from "./version.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";

/** What `onRetry` is told before the client sleeps and retries a 429. */
export interface RetryInfo {
  /** 0 for the first retry. */
  attempt: number;
  /** How long the client will wait, in seconds. */
  retryAfter: number;
  method: string;
  url: string;
}

export interface ClientOptions {
  /** Else KEYPLANE_API_KEY, else BOTBRAINS_API_KEY. */
  apiKey?: string | undefined;
  /** The project's numeric id; else KEYPLANE_PROJECT_ID, else BOTBRAINS_PROJECT_ID. */
  projectId?: number | string | undefined;
  /** Else KEYPLANE_BASE_URL, else BOTBRAINS_BASE_URL, else http://127.0.0.1:8000. */
  baseUrl?: string | undefined;
  /** Milliseconds one attempt may take, body included (a stream: between chunks); 0: no limit. 30 000. */
  timeout?: number | undefined;
  /** How many times a 429 is retried before RateLimitError is thrown. 3, as in the guide. */
  maxRetries?: number | undefined;
  /** The longest wait (milliseconds) the client accepts; a 429 asking more throws at once. 60 000. */
  maxRetryWait?: number | undefined;
  /** Called before each retry of a 429 (for logging, like the guide's `console.log`). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** The fetch to use (to instrument or proxy requests); the global fetch by default. */
  fetch?: typeof fetch | undefined;
}

/** The options after defaults and validation. */
export interface Config {
  readonly apiKey: string;
  readonly projectId: number;
  readonly baseUrl: string;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly maxRetryWait: number;
  readonly onRetry: ((info: RetryInfo) => void) | undefined;
  readonly fetch: typeof fetch;
}

function env(...names: string[]): string | undefined {
  const vars = typeof process === "undefined" ? {} : process.env;
  for (const name of names) {
    const value = vars[name];
    if (value) return value;
  }
  return undefined;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isFinite(chosen) || chosen < 0) {
    throw new ConfigurationError(`${name} must be a number of at least 0; got ${String(value)}.`);
  }
  return chosen;
}

/** Options first, then KEYPLANE_* and, as in the botBrains guide, BOTBRAINS_* variables. */
export function resolveConfig(options: ClientOptions): Config {
  const apiKey = options.apiKey || env("KEYPLANE_API_KEY", "BOTBRAINS_API_KEY");
  if (!apiKey) {
    throw new ConfigurationError(
      "No API key: pass apiKey or set the KEYPLANE_API_KEY (or BOTBRAINS_API_KEY) environment variable.",
    );
  }
  const project = options.projectId ?? env("KEYPLANE_PROJECT_ID", "BOTBRAINS_PROJECT_ID");
  const projectText = project === undefined ? "" : String(project).trim();
  if (!/^[0-9]+$/.test(projectText) || Number(projectText) < 1) {
    throw new ConfigurationError(
      project === undefined || projectText === ""
        ? "No project id: pass projectId or set the KEYPLANE_PROJECT_ID (or BOTBRAINS_PROJECT_ID) environment variable to the project's numeric id."
        : `The project id must be the project's numeric id (e.g. 123); got ${JSON.stringify(projectText)}.`,
    );
  }
  const baseUrl = options.baseUrl || env("KEYPLANE_BASE_URL", "BOTBRAINS_BASE_URL") || DEFAULT_BASE_URL;
  try {
    new URL(baseUrl);
  } catch {
    throw new ConfigurationError(`The base URL must be an absolute URL such as ${DEFAULT_BASE_URL}; got ${JSON.stringify(baseUrl)}.`);
  }
  const fetcher = options.fetch ?? (typeof fetch === "function" ? fetch : undefined);
  if (!fetcher) {
    throw new ConfigurationError("No fetch: this SDK needs Node.js 18 or later (or pass the fetch option).");
  }
  return {
    apiKey,
    projectId: Number(projectText),
    baseUrl: baseUrl.replace(/\/+$/, ""),
    timeout: nonNegative("timeout", options.timeout, 30_000),
    maxRetries: Math.floor(nonNegative("maxRetries", options.maxRetries, 3)),
    maxRetryWait: nonNegative("maxRetryWait", options.maxRetryWait, 60_000),
    onRetry: options.onRetry,
    fetch: fetcher,
  };
}

/** A query parameter value; undefined and null ones are left out. */
export type QueryValue = string | number | boolean | Date | null | undefined;

export interface RequestOptions {
  query?: Record<string, QueryValue> | undefined;
  /** A JSON body. */
  json?: unknown;
  /** A multipart body (file uploads). */
  form?: FormData | undefined;
}

/**
 * Seconds a 429 asks to wait: the Retry-After header (seconds or an HTTP date), else the body's
 * `retry_after`, else 2^attempt as in the guide's makeRequestWithRetry.
 */
export function retryAfterSeconds(headers: Headers, body: unknown, attempt: number): number {
  const header = (headers.get("retry-after") ?? "").trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(header)) return Number(header);
  if (header) {
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, (at - Date.now()) / 1000);
  }
  const value = isObject(body) ? body["retry_after"] : undefined;
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  return 2 ** attempt;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One attempt's deadline. `touch()` restarts it (a stream's next chunk); `done()` stops it.
 * Whatever fails while it runs is turned into a typed error by `guard`.
 */
export class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number) {
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  touch(): void {
    this.done();
    if (this.ms > 0) {
      this.timer = setTimeout(() => this.controller.abort(), this.ms);
    }
  }

  done(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A response whose deadline still runs; read its body, then call `deadline.done()`. */
export interface Sent {
  response: Response;
  deadline: Deadline;
  guard<T>(work: Promise<T>): Promise<T>;
}

export class Transport {
  constructor(readonly config: Config) {}

  /** `/v1/projects/{id}/...`, each part escaped (external ids may hold '/'). */
  path(...parts: (string | number)[]): string {
    return `/v1/projects/${this.config.projectId}` + parts.map((p) => "/" + encodeURIComponent(String(p))).join("");
  }

  private url(path: string, query: Record<string, QueryValue> | undefined): string {
    const url = new URL(this.config.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      url.searchParams.set(name, value instanceof Date ? value.toISOString() : String(value));
    }
    return url.toString();
  }

  private headers(options: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.config.apiKey}`,
      Accept: "application/json",
      "User-Agent": `keyplane-js/${VERSION}`,
    };
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    return headers;
  }

  /** Maps what a failing fetch or body read throws to ConnectionFailed / RequestTimeout. */
  private failure(error: unknown, deadline: Deadline): KeyplaneError {
    if (error instanceof KeyplaneError) return error;
    if (deadline.signal.aborted) {
      return new RequestTimeoutError(
        `No answer from ${this.config.baseUrl} within ${this.config.timeout} ms; raise the timeout option or retry.`,
        { cause: error },
      );
    }
    const cause = isObject(error) && isObject(error["cause"]) ? error["cause"] : undefined;
    const why = cause && typeof cause["code"] === "string" ? cause["code"] : cause?.["message"];
    const code = typeof why === "string" && why ? ` (${why})` : "";
    return new ConnectionFailedError(
      `Could not reach ${this.config.baseUrl}${code}: is the server running and the base URL right?`,
      { cause: error },
    );
  }

  /**
   * Sends the request, retrying a 429 up to `maxRetries` times after the wait it asks for (when
   * that is at most `maxRetryWait`); throws the typed error of any other failure. The answer's
   * body is still to be read, under the attempt's deadline.
   */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Sent> {
    const url = this.url(path, options.query);
    const body = options.json !== undefined ? JSON.stringify(options.json) : options.form;
    for (let attempt = 0; ; attempt++) {
      const deadline = new Deadline(this.config.timeout);
      const guard = async <T>(work: Promise<T>): Promise<T> => {
        try {
          return await work;
        } catch (error) {
          deadline.done();
          throw this.failure(error, deadline);
        }
      };
      const init: RequestInit = { method, headers: this.headers(options), signal: deadline.signal };
      if (body !== undefined) init.body = body;
      const response = await guard(this.config.fetch(url, init));
      if (response.ok) return { response, deadline, guard };
      const text = await guard(response.text());
      deadline.done();
      const error = errorFromResponse(response.status, response.statusText, text);
      if (error instanceof RateLimitError && attempt < this.config.maxRetries) {
        const wait = retryAfterSeconds(response.headers, error.body, attempt);
        if (wait * 1000 <= this.config.maxRetryWait) {
          this.config.onRetry?.({ attempt, retryAfter: wait, method, url });
          await sleep(wait * 1000);
          continue;
        }
      }
      throw error;
    }
  }

  /** The decoded JSON answer (undefined for an empty one, as a 204). */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const { response, deadline, guard } = await this.send(method, path, options);
    const text = await guard(response.text());
    deadline.done();
    if (text === "") return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new InvalidResponseError(
        `${method} ${path} answered ${response.status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 80))}.`,
        { status: response.status, cause },
      );
    }
  }

  async bytes(method: string, path: string): Promise<Uint8Array> {
    const { response, deadline, guard } = await this.send(method, path);
    const buffer = await guard(response.arrayBuffer());
    deadline.done();
    return new Uint8Array(buffer);
  }

  /** Each line of a JSON-lines answer, decoded, as it arrives. */
  async *lines(path: string): AsyncGenerator<JsonObject, void, undefined> {
    const { response, deadline, guard } = await this.send("GET", path);
    const body = response.body;
    if (body === null) {
      deadline.done();
      return;
    }
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    let line = 0;
    const decode = (text: string): JsonObject | undefined => {
      line += 1;
      if (text.trim() === "") return undefined;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (cause) {
        throw new InvalidResponseError(`Line ${line} of ${path} is not JSON: ${JSON.stringify(text.slice(0, 80))}.`, { cause });
      }
      if (!isObject(value)) throw new InvalidResponseError(`Line ${line} of ${path} is not a JSON object.`);
      return value;
    };
    try {
      for (;;) {
        const { done, value } = await guard(reader.read());
        deadline.touch();
        pending += decoder.decode(value, { stream: !done });
        const parts = pending.split("\n");
        pending = done ? "" : (parts.pop() ?? "");
        for (const part of parts) {
          const item = decode(part);
          if (item) yield item;
        }
        if (done) return;
      }
    } finally {
      deadline.done();
      // Stopping early (a `break` in for await) releases the connection.
      await reader.cancel().catch(() => undefined);
    }
  }
}
