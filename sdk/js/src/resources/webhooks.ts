import {
  parseCreatedWebhook,
  parseWebhookDelivery,
  parseWebhookSubscription,
  dataOf,
  type CreatedWebhook,
  type JsonObject,
  type Page,
  type Webhook,
  type WebhookDelivery,
  type WebhookEventName,
} from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

/** What `webhooks.create` takes. */
export interface WebhookSpec {
  /** http(s) URL that receives signed JSON POSTs. A test key's may be on loopback or a private network. */
  url: string;
  /** The events to send; all when left out. */
  events?: readonly (WebhookEventName | string)[] | undefined;
  description?: string | undefined;
}

/** What `webhooks.update` changes: only the fields given; null clears `events` (all) or `description`. */
export interface WebhookChanges {
  url?: string | undefined;
  events?: readonly (WebhookEventName | string)[] | null | undefined;
  description?: string | null | undefined;
  /** false pauses deliveries; true re-enables a webhook disabled after failures (pending deliveries resume). */
  enabled?: boolean | undefined;
}

/**
 * Webhook subscriptions of the project, in the key's mode (webhook:read, webhook:write).
 * Check each delivery with `parseWebhook` or `verifyWebhookSignature`.
 */
export class Webhooks extends Resource {
  /** Every subscription of the key's mode (not paged: a project has few). */
  list(): Promise<Webhook[]> {
    return this.json(dataOf(parseWebhookSubscription), "GET", this.path("webhooks"));
  }

  get(webhookId: number): Promise<Webhook> {
    return this.json(parseWebhookSubscription, "GET", this.path("webhooks", webhookId));
  }

  /**
   * Subscribes `url` to `events` (all when left out). The answer's `secret` is shown only
   * now: store it to verify deliveries.
   */
  create(spec: WebhookSpec): Promise<CreatedWebhook> {
    const json: JsonObject = { url: spec.url };
    if (spec.events !== undefined) json["events"] = [...spec.events];
    if (spec.description !== undefined) json["description"] = spec.description;
    return this.json(parseCreatedWebhook, "POST", this.path("webhooks"), { json });
  }

  /** Changes the fields given (a PATCH); `enabled: true` re-enables one disabled after failures. */
  update(webhookId: number, changes: WebhookChanges): Promise<Webhook> {
    const json: JsonObject = {};
    if (changes.url !== undefined) json["url"] = changes.url;
    if (changes.events !== undefined) json["events"] = changes.events === null ? null : [...changes.events];
    if (changes.description !== undefined) json["description"] = changes.description;
    if (changes.enabled !== undefined) json["enabled"] = changes.enabled;
    return this.json(parseWebhookSubscription, "PATCH", this.path("webhooks", webhookId), { json });
  }

  delete(webhookId: number): Promise<void> {
    return this.send("DELETE", this.path("webhooks", webhookId));
  }

  /** One page of the webhook's deliveries, newest first: status, attempts, the receiver's status code, last error. */
  deliveries(webhookId: number, params: PageParams = {}): Promise<Page<WebhookDelivery>> {
    const query = { limit: params.limit, cursor: params.cursor };
    return this.page(this.path("webhooks", webhookId, "deliveries"), parseWebhookDelivery, query);
  }

  iterateDeliveries(webhookId: number, params: IterateParams = {}): AsyncGenerator<WebhookDelivery, void, undefined> {
    return this.paginate(this.path("webhooks", webhookId, "deliveries"), parseWebhookDelivery, {}, params.pageSize);
  }

  /** Sends a delivery's event again (the same body, a fresh signature) as a new delivery, queued at once. */
  replay(webhookId: number, deliveryId: number): Promise<WebhookDelivery> {
    return this.json(parseWebhookDelivery, "POST", this.path("webhooks", webhookId, "deliveries", deliveryId, "replay"));
  }
}
