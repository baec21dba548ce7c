import { dataOf, parseMetrics, parseTopic, type Metrics as MetricSeries, type Topic } from "../models.js";
import { Resource } from "./base.js";

export class Topics extends Resource {
  /** What conversations are about, the most frequent first, on one page of at most `limit` (≤ 100) (topic:read). */
  list(params: { limit?: number | undefined } = {}): Promise<Topic[]> {
    return this.json(dataOf(parseTopic), "GET", this.path("topics"), { query: { limit: params.limit } });
  }
}

/** A day: a Date (sent as ISO 8601, UTC) or text, "YYYY-MM-DD" or an ISO 8601 date-time. */
export type Day = Date | string;

export class Metrics extends Resource {
  /**
   * Conversations, messages, resolved conversations and generated answers per day, week or
   * month, both dates included (metric:read).
   */
  get(params: { startDate: Day; endDate: Day; groupBy?: "day" | "week" | "month" | undefined }): Promise<MetricSeries> {
    const query = { start_date: params.startDate, end_date: params.endDate, group_by: params.groupBy ?? "day" };
    return this.json(parseMetrics, "GET", this.path("metrics"), { query });
  }
}
