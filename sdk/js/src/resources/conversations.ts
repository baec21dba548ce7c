import {
  dataOf,
  parseConversation,
  parseGeneratedResponse,
  parseMessage,
  type Conversation,
  type ConversationStatus,
  type GeneratedResponse,
  type Message,
  type Page,
} from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

export interface ConversationFilter {
  status?: ConversationStatus | undefined;
  /** The end user's external id. */
  userId?: string | undefined;
}

export class Conversations extends Resource {
  /** One page, newest first (conversation:read). */
  list(params: PageParams & ConversationFilter = {}): Promise<Page<Conversation>> {
    const { limit, cursor, status, userId } = params;
    return this.page(this.path("conversations"), parseConversation, { limit, cursor, status, user_id: userId });
  }

  /** Every conversation matching the filter, newest first: `for await (const c of ...)`. */
  iterate(params: IterateParams & ConversationFilter = {}): AsyncGenerator<Conversation, void, undefined> {
    const { pageSize, status, userId } = params;
    return this.paginate(this.path("conversations"), parseConversation, { status, user_id: userId }, pageSize);
  }

  get(conversationId: number): Promise<Conversation> {
    return this.json(parseConversation, "GET", this.path("conversations", conversationId));
  }

  /**
   * Starts a conversation with the end user's first message, creating the end user if new
   * (conversation:generate). The answer carries that message in `messages`.
   */
  create(params: { userId: string; message: string }): Promise<Conversation> {
    const json = { user_id: params.userId, message: params.message };
    return this.json(parseConversation, "POST", this.path("conversations"), { json });
  }

  /** The conversation's messages, oldest first (conversation:read). */
  messages(conversationId: number): Promise<Message[]> {
    return this.json(dataOf(parseMessage), "GET", this.path("conversations", conversationId, "messages"));
  }

  /** Adds a message from the end user ("user") or from your team ("agent") (conversation:write). */
  addMessage(conversationId: number, params: { content: string; role?: "user" | "agent" | undefined }): Promise<Message> {
    const json = { content: params.content, role: params.role ?? "user" };
    return this.json(parseMessage, "POST", this.path("conversations", conversationId, "messages"), { json });
  }

  /** Sets the status and/or replaces the labels (conversation:write). */
  update(
    conversationId: number,
    params: { status?: ConversationStatus | undefined; labels?: string[] | undefined },
  ): Promise<Conversation> {
    const json: Record<string, unknown> = {};
    if (params.status !== undefined) json["status"] = params.status;
    if (params.labels !== undefined) json["labels"] = params.labels;
    return this.json(parseConversation, "PATCH", this.path("conversations", conversationId), { json });
  }

  /** The AI answer to the conversation, from the project's knowledge, with its sources (conversation:generate). */
  generateResponse(params: { conversationId: number }): Promise<GeneratedResponse> {
    return this.json(parseGeneratedResponse, "POST", this.path("conversations", params.conversationId, "generate"));
  }
}
