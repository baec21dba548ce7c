"""Uploaded files: metadata in the database, bytes in a blob store (DESIGN §6).

Blobs are content-addressed by sha256, so the metadata row is the only thing scoped to a
project and mode; the store is an interface so that a database-backed store can replace the
disk one."""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any, Protocol

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import StoredFile
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain import filetypes
from keyplane.domain.errors import NotFound, PayloadTooLarge, ValidationFailed
from keyplane.domain.keyformat import Mode


class BlobStore(Protocol):
    async def put(self, sha256: str, data: bytes) -> None: ...
    async def get(self, sha256: str) -> bytes | None: ...
    async def delete(self, sha256: str) -> None: ...


def describe(stored: StoredFile) -> dict[str, Any]:
    return {
        "id": stored.id,
        "filename": stored.filename,
        "content_type": stored.content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "created_at": iso(stored.created_at),
    }


def clean_filename(raw: str | None) -> str:
    """The base name only: a client's path (C:\\x\\a.pdf, ../../a.pdf) says nothing to us."""
    name = posixpath.basename((raw or "").replace("\\", "/")).strip()
    if not name or name in (".", "..") or len(name) > 255 or "\x00" in name:
        raise ValidationFailed(
            "The upload needs a file name of 1 to 255 characters.",
            details=[{"loc": ["body", "file"], "msg": "invalid file name"}],
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed("The file name is not valid Unicode.") from None
    return name


async def _lock_blob(db: AsyncSession, sha256: str) -> None:
    """Serializes uploads and deletions of one blob until the transaction ends, so that a
    deletion never unlinks a blob that a concurrent upload is about to point a row at.
    PostgreSQL: a transaction-scoped advisory lock on the digest. SQLite: both paths write
    before touching the blob, and SQLite admits one writing transaction at a time."""
    if db.get_bind().dialect.name == "postgresql":
        number = int.from_bytes(bytes.fromhex(sha256)[:8], "big", signed=True)
        await db.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})


async def upload(
    db: AsyncSession,
    store: BlobStore,
    project_id: int,
    mode: Mode,
    *,
    filename: str | None,
    content_type: str | None,
    data: bytes,
    max_bytes: int,
) -> dict[str, Any]:
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The file is {len(data)} bytes; files may be at most {max_bytes} bytes."
        )
    if not data:
        raise ValidationFailed(
            "The file is empty.", details=[{"loc": ["body", "file"], "msg": "empty file"}]
        )
    name = clean_filename(filename)
    kind = filetypes.check(filetypes.declared_type(content_type, name), data)
    digest = hashlib.sha256(data).hexdigest()
    await _lock_blob(db, digest)
    stored = StoredFile(
        project_id=project_id,
        mode=mode,
        filename=name,
        content_type=kind,
        size=len(data),
        sha256=digest,
        created_at=utcnow(),
    )
    db.add(stored)
    await db.flush()
    # Under the lock, before the commit: if writing fails the row is rolled back, so a
    # committed row always has its blob.
    await store.put(digest, data)
    return describe(stored)


async def page(
    db: AsyncSession, project_id: int, mode: Mode, *, limit: int, after_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(StoredFile).where(StoredFile.project_id == project_id, StoredFile.mode == mode)
    found, last = await keyset_page(
        db, query, StoredFile.id, limit=limit, after_id=after_id, newest_first=True
    )
    return [describe(f) for f in found], last


async def get(db: AsyncSession, project_id: int, mode: Mode, file_id: int) -> StoredFile:
    stored = await db.scalar(
        select(StoredFile).where(
            StoredFile.id == file_id, StoredFile.project_id == project_id, StoredFile.mode == mode
        )
    )
    if stored is None:
        raise NotFound(f"No file {file_id} in project {project_id} ({mode} data).")
    return stored


async def content(
    db: AsyncSession, store: BlobStore, project_id: int, mode: Mode, file_id: int
) -> tuple[StoredFile, bytes]:
    stored = await get(db, project_id, mode, file_id)
    data = await store.get(stored.sha256)
    if data is None:
        raise NotFound(f"The content of file {file_id} is missing from storage.")
    return stored, data


async def remove(
    db: AsyncSession, store: BlobStore, project_id: int, mode: Mode, file_id: int
) -> None:
    """Deletes the row, and the blob when no other row uses it (under the blob's lock)."""
    stored = await get(db, project_id, mode, file_id)
    await _lock_blob(db, stored.sha256)
    await db.execute(delete(StoredFile).where(StoredFile.id == stored.id))
    others = await db.scalar(
        select(func.count()).select_from(StoredFile).where(StoredFile.sha256 == stored.sha256)
    )
    if not others:
        await store.delete(stored.sha256)
