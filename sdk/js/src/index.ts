/**
 * The keyplane JavaScript/TypeScript SDK (Node.js ≥ 18, no dependencies).
 *
 *     import { KeyplaneClient } from "@keyplane/sdk";   // or BotBrainsClient, as in the guide
 *     const client = new KeyplaneClient({ apiKey: process.env.KEYPLANE_API_KEY, projectId: 123 });
 */

export { BotBrainsClient, KeyplaneClient } from "./client.js";
export * from "./errors.js";
export type * from "./models.js";
export type { ConversationFilter } from "./resources/conversations.js";
export type { DataProviderSpec } from "./resources/data-providers.js";
export type { Uploadable, UploadOptions } from "./resources/files.js";
export type { Day } from "./resources/insights.js";
export type { EndUserFields, EndUserItem } from "./resources/users.js";
export type { SnippetItem } from "./resources/snippets.js";
export type { RowItem } from "./resources/tables.js";
export type { WebhookChanges, WebhookSpec } from "./resources/webhooks.js";
export type { BatchOptions, IterateParams, PageParams } from "./resources/base.js";
export { BATCH_LIMIT, Resource } from "./resources/base.js";
export { DEFAULT_BASE_URL, retryAfterSeconds, type ClientOptions, type Config, type QueryValue, type RequestOptions, type RetryInfo } from "./transport.js";
export {
  DEFAULT_TOLERANCE,
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  parseWebhook,
  signWebhook,
  verifyWebhookSignature,
  WebhookSignatureError,
  type SignatureSource,
  type VerifyOptions,
  type WebhookBody,
} from "./webhooks.js";
export { VERSION } from "./version.js";
