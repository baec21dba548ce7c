/**
 * Typed results. The server speaks snake_case JSON; the SDK hands out camelCase objects
 * (`conversation.userId`), converting the keys of each model and of the models nested in it,
 * never the keys inside free JSON (`config`, `values`, `externalAttributes`) which are yours.
 * Each model also keeps the server's whole object in a non-enumerable `raw`, so that fields
 * added to the API later are reachable before the SDK names them (as `.raw` in the Python SDK).
 */

import { InvalidResponseError, isObject, type JsonObject } from "./errors.js";

export type { JsonObject };

/** Every model carries the object the server sent. */
export interface Model {
  readonly raw: JsonObject;
}

/** One page of a cursor-paginated list; pass `nextCursor` as `cursor` for the next one. */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface Project extends Model {
  id: number;
  orgId: number;
  name: string;
  mode: "live" | "test";
  createdAt: string;
}

export type MessageRole = "user" | "agent" | "assistant";

export interface Message extends Model {
  id: number;
  conversationId: number;
  role: MessageRole;
  content: string;
  createdAt: string;
}

export type ConversationStatus = "resolved" | "unresolved";

export interface Conversation extends Model {
  id: number;
  projectId: number;
  userId: string;
  status: ConversationStatus;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  /** The opening message: present on the object `conversations.create` answers. */
  messages?: Message[];
}

/** A knowledge snippet a generated answer used, best first. */
export interface Source extends Model {
  snippetId: number;
  title: string;
  url: string | null;
  score: number;
}

export interface GeneratedResponse extends Model {
  message: Message & { role: "assistant" };
  sources: Source[];
}

/** An end user of your platform (the "userpool"). */
export interface EndUser extends Model {
  externalId: string;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  locale: string | null;
  externalAttributes: JsonObject;
  createdAt: string;
  updatedAt: string;
}

export interface Snippet extends Model {
  id: number;
  title: string;
  content: string;
  url: string | null;
  /** Set when a data provider's sync made it. */
  dataProviderId: number | null;
  /** The file or URL of that data provider. */
  source: string | null;
  createdAt: string;
  updatedAt: string;
}

export type SyncState = "idle" | "pending" | "running" | "succeeded" | "failed";

/** A data provider's latest sync. */
export interface SyncStatus extends Model {
  status: SyncState;
  snippetsCreated: number;
  snippetsUpdated: number;
  snippetsRemoved: number;
  lastError: string | null;
  requestedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export type DataProviderType = "directory" | "urls";

export interface DataProvider extends Model {
  id: number;
  name: string;
  type: DataProviderType;
  config: JsonObject;
  sync: SyncStatus;
  createdAt: string;
  updatedAt: string;
}

export type ColumnType = "text" | "number" | "boolean" | "date";

export interface Column {
  name: string;
  type: ColumnType;
}

export interface Table extends Model {
  id: number;
  name: string;
  columns: Column[];
  createdAt: string;
}

export interface Row extends Model {
  id: number;
  tableId: number;
  values: JsonObject;
  createdAt: string;
  updatedAt: string;
}

/** An uploaded file's metadata (named so as not to shadow the global `File`). */
export interface FileInfo extends Model {
  id: number;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

export interface Label extends Model {
  id: number;
  /** The spelling the label was first created with. */
  name: string;
  description: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What conversations are about: a label on them or a word recurring in their openings. */
export interface Topic extends Model {
  name: string;
  kind: "label" | "term";
  conversations: number;
  resolved: number;
  unresolved: number;
  conversationIds: number[];
}

export interface MetricPoint extends Model {
  /** First day of the bucket, YYYY-MM-DD (a Monday for weeks). */
  date: string;
  conversations: number;
  messages: number;
  resolved: number;
  generatedAnswers: number;
}

export interface Metrics extends Model {
  data: MetricPoint[];
}

export type DeploymentChannel = "web" | "slack" | "whatsapp" | "api";
export type DeploymentStatus = "active" | "paused";

export interface Deployment extends Model {
  id: number;
  channel: DeploymentChannel;
  name: string;
  config: JsonObject;
  status: DeploymentStatus;
  createdAt: string;
  updatedAt: string;
}

/** Which events a webhook subscription receives (DESIGN §6, issue 11). */
export type WebhookEventName =
  | "conversation.created"
  | "message.created"
  | "conversation.resolved"
  | "conversation.labeled"
  | "user.updated"
  | "snippet.changed"
  | "data_provider.sync.completed"
  | "data_provider.sync.failed"
  | "api_key.created"
  | "api_key.deleted"
  | "api_key.rotated"
  | "api_key.expiring"
  | "alert.raised";

/**
 * A webhook subscription of the project, in one mode (a key's own). `enabled` is false when it
 * was paused or disabled after a day of failing deliveries (`disabledReason` says which).
 */
export interface Webhook extends Model {
  id: number;
  projectId: number;
  mode: "live" | "test";
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabledAt: string | null;
  disabledReason: string | null;
  createdAt: string;
  createdBy: number | null;
  updatedAt: string;
  /** When a delivery last succeeded (outlives the deliveries housekeeping deletes); null: never. */
  lastDeliveredAt: string | null;
}

/** What `webhooks.create` answers: the subscription and its signing secret, shown only now. */
export interface CreatedWebhook extends Webhook {
  /** `whsec_...`: store it to verify deliveries; no later answer holds it. */
  secret: string;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

/** One event sent (or being sent) to a webhook, with its attempts. */
export interface WebhookDelivery extends Model {
  id: number;
  webhookId: number;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due, while pending. */
  nextAttemptAt: string | null;
  /** The receiver's HTTP status code on the last attempt. */
  statusCode: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  /** The delivery this one replays. */
  replayOf: number | null;
}

/** A verified delivery's body, from `parseWebhook`; `data` is the event's own object, as sent. */
export interface WebhookEvent extends Model {
  event: string;
  projectId: number;
  mode: "live" | "test";
  createdAt: string;
  data: JsonObject;
}

/** One item's outcome in a batch upsert; `index` is its position in the list you passed. */
export interface BatchItemResult extends Model {
  index: number;
  status: "created" | "updated";
  /** Snippets and rows. */
  id?: number | null;
  /** End users. */
  externalId?: string | null;
}

/** What a batch upsert did, item by item in request order (`data[i].index === i`). */
export interface BatchResult extends Model {
  data: BatchItemResult[];
  created: number;
  updated: number;
}

// --- decoding -------------------------------------------------------------------------------

/** Turns a decoded JSON value into a model (throws InvalidResponseError when it is not one). */
export type Parser<T> = (value: unknown) => T;

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function object(value: unknown, what: string): JsonObject {
  if (!isObject(value)) {
    throw new InvalidResponseError(`Expected ${what} as a JSON object, got ${describe(value)}.`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? `the text ${JSON.stringify(value.slice(0, 60))}` : typeof value;
}

/**
 * A parser for one model: camelCases the object's own keys and decodes the nested models named
 * in `nested` (their values left as they are when absent or null).
 */
export function model<T extends Model>(what: string, nested: Record<string, Parser<unknown>> = {}): Parser<T> {
  return (value: unknown): T => {
    const raw = object(value, what);
    const made: JsonObject = {};
    for (const [key, item] of Object.entries(raw)) {
      const parse = nested[key];
      made[camel(key)] = parse && item != null ? parse(item) : item;
    }
    Object.defineProperty(made, "raw", { value: raw, enumerable: false });
    return made as unknown as T;
  };
}

export function listOf<T>(parse: Parser<T>): Parser<T[]> {
  return (value: unknown): T[] => {
    if (!Array.isArray(value)) {
      throw new InvalidResponseError(`Expected a JSON array, got ${describe(value)}.`);
    }
    return value.map(parse);
  };
}

export function pageOf<T>(parse: Parser<T>): Parser<Page<T>> {
  return (value: unknown): Page<T> => {
    const body = object(value, "a page");
    const cursor = body["next_cursor"];
    return {
      data: listOf(parse)(body["data"] ?? []),
      nextCursor: typeof cursor === "string" && cursor !== "" ? cursor : null,
    };
  };
}

/** The `data` array of a `{"data": [...]}` body. */
export function dataOf<T>(parse: Parser<T>): Parser<T[]> {
  return (value: unknown): T[] => listOf(parse)(object(value, "a list")["data"] ?? []);
}

const raw = (value: unknown): JsonObject => object(value, "an object");

export const parseProject = model<Project>("a project");
export const parseMessage = model<Message>("a message");
export const parseConversation = model<Conversation>("a conversation", { messages: listOf(parseMessage) });
export const parseSource = model<Source>("a source");
export const parseGeneratedResponse = model<GeneratedResponse>("a generated response", {
  message: parseMessage,
  sources: listOf(parseSource),
});
export const parseEndUser = model<EndUser>("an end user", { external_attributes: raw });
export const parseSnippet = model<Snippet>("a snippet");
export const parseSyncStatus = model<SyncStatus>("a sync status");
export const parseDataProvider = model<DataProvider>("a data provider", { config: raw, sync: parseSyncStatus });
export const parseTable = model<Table>("a table");
export const parseRow = model<Row>("a row", { values: raw });
export const parseFileInfo = model<FileInfo>("a file");
export const parseLabel = model<Label>("a label");
export const parseTopic = model<Topic>("a topic");
export const parseMetricPoint = model<MetricPoint>("a metric point");
export const parseMetrics = model<Metrics>("metrics", { data: listOf(parseMetricPoint) });
export const parseDeployment = model<Deployment>("a deployment", { config: raw });
export const parseWebhookSubscription = model<Webhook>("a webhook");
export const parseCreatedWebhook = model<CreatedWebhook>("a webhook");
export const parseWebhookDelivery = model<WebhookDelivery>("a webhook delivery");
export const parseWebhookEvent = model<WebhookEvent>("a webhook event", { data: raw });
export const parseBatchItemResult = model<BatchItemResult>("a batch item result");
export const parseBatchResult = model<BatchResult>("a batch result", { data: listOf(parseBatchItemResult) });
