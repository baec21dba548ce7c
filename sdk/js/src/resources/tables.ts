import { parseRow, parseTable, type BatchResult, type Column, type JsonObject, type Page, type Row, type Table } from "../models.js";
import { Resource, type BatchOptions, type IterateParams, type PageParams } from "./base.js";

/** One item of `tables.upsertRows`: with an `id` that row's cells given change; else a row is added. */
export interface RowItem {
  values: JsonObject;
  id?: number | undefined;
}

/** Structured data (tables of typed columns) the agent can use. */
export class Tables extends Resource {
  list(params: PageParams = {}): Promise<Page<Table>> {
    return this.page(this.path("tables"), parseTable, { limit: params.limit, cursor: params.cursor });
  }

  iterate(params: IterateParams = {}): AsyncGenerator<Table, void, undefined> {
    return this.paginate(this.path("tables"), parseTable, {}, params.pageSize);
  }

  /** (table:write) */
  create(params: { name: string; columns: Column[] }): Promise<Table> {
    return this.json(parseTable, "POST", this.path("tables"), { json: { name: params.name, columns: params.columns } });
  }

  /** One page of rows; `filter` is `column:value` (table:read). */
  rows(tableId: number, params: PageParams & { filter?: string | undefined } = {}): Promise<Page<Row>> {
    const { limit, cursor, filter } = params;
    return this.page(this.path("tables", tableId, "rows"), parseRow, { limit, cursor, filter });
  }

  iterateRows(tableId: number, params: IterateParams & { filter?: string | undefined } = {}): AsyncGenerator<Row, void, undefined> {
    return this.paginate(this.path("tables", tableId, "rows"), parseRow, { filter: params.filter }, params.pageSize);
  }

  /** Cells by column name, checked against the column types (table:write). */
  addRow(tableId: number, values: JsonObject): Promise<Row> {
    return this.json(parseRow, "POST", this.path("tables", tableId, "rows"), { json: { values } });
  }

  updateRow(tableId: number, rowId: number, values: JsonObject): Promise<Row> {
    return this.json(parseRow, "PATCH", this.path("tables", tableId, "rows", rowId), { json: { values } });
  }

  /**
   * Adds or changes many rows (see RowItem), chunked and refused like `users.upsertMany`;
   * `data[i].id` is each item's row (table:write).
   */
  upsertRows(tableId: number, rows: readonly RowItem[], options: BatchOptions = {}): Promise<BatchResult> {
    const items = rows.map((row) => (row.id === undefined ? { values: row.values } : { id: row.id, values: row.values }));
    return this.batches(this.path("tables", tableId, "rows", "batch"), items, options);
  }

  deleteRow(tableId: number, rowId: number): Promise<void> {
    return this.send("DELETE", this.path("tables", tableId, "rows", rowId));
  }
}
