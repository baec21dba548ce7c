"""Uploaded files' bytes on disk, content-addressed by their sha256.

A blob is written to a temporary file in the same directory, flushed to disk, then renamed
into place: the rename is atomic, so a reader never sees a partly written file, and two
uploads of the same content race harmlessly (both rename identical bytes)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path


class DiskBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("a blob is named by its lowercase hex sha256")
        return self.root / sha256[:2] / sha256

    def _put(self, sha256: str, data: bytes) -> None:
        target = self._path(sha256)
        if target.exists() and target.stat().st_size == len(data):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def put(self, sha256: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, sha256, data)

    async def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self._path(sha256).unlink, True)
