import { readFile } from "node:fs/promises";
import { basename } from "node:path";

import { parseFileInfo, type FileInfo, type Page } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

/** What `files.upload` takes: bytes, a Blob (or File), or a path to read. */
export type Uploadable = Uint8Array | ArrayBuffer | Blob | string;

export interface UploadOptions {
  /** The name to store; a path's base name or "upload" by default. */
  filename?: string | undefined;
  /** Without it the server goes by the file name's extension; it always checks the bytes. */
  contentType?: string | undefined;
}

/** Uploaded files (images, documents) of the project. */
export class Files extends Resource {
  list(params: PageParams = {}): Promise<Page<FileInfo>> {
    return this.page(this.path("files"), parseFileInfo, { limit: params.limit, cursor: params.cursor });
  }

  iterate(params: IterateParams = {}): AsyncGenerator<FileInfo, void, undefined> {
    return this.paginate(this.path("files"), parseFileInfo, {}, params.pageSize);
  }

  get(fileId: number): Promise<FileInfo> {
    return this.json(parseFileInfo, "GET", this.path("files", fileId));
  }

  /** Uploads one file as multipart/form-data (file:write). A string is a path to read. */
  async upload(file: Uploadable, options: UploadOptions = {}): Promise<FileInfo> {
    let name = options.filename;
    const type = options.contentType ?? "";
    let blob: Blob;
    if (typeof file === "string") {
      name ??= basename(file);
      blob = new Blob([Uint8Array.from(await readFile(file))], { type });
    } else if (file instanceof Blob) {
      if ("name" in file && typeof file.name === "string") name ??= file.name;
      blob = type ? new Blob([file], { type }) : file;
    } else {
      blob = new Blob([file instanceof Uint8Array ? Uint8Array.from(file) : file], { type });
    }
    const form = new FormData();
    form.append("file", blob, name ?? "upload");
    return this.json(parseFileInfo, "POST", this.path("files"), { form });
  }

  /** The file's bytes (file:read). */
  download(fileId: number): Promise<Uint8Array> {
    return this.transport.bytes("GET", this.path("files", fileId, "content"));
  }

  delete(fileId: number): Promise<void> {
    return this.send("DELETE", this.path("files", fileId));
  }
}
