"""Files (DESIGN §6): multipart upload with a size limit and a content-type check against the
bytes, sha256, download, deletion, live/test separation."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MAX_FILE_BYTES = 4096


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        max_file_bytes=MAX_FILE_BYTES,
        _env_file=None,  # type: ignore[call-arg]
    )


def _blobs(settings: Settings) -> list[Path]:
    root = Path(settings.data_dir) / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_download_delete(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    key = await world.project_key("file:write")
    base = f"/v1/projects/{world.project_id}/files"
    text = b"# Refunds\nWithin 30 days.\n"
    made = await client.post(
        base, headers=bearer(key), files={"file": ("../../etc/refunds.md", text, "text/markdown")}
    )
    assert made.status_code == 201, made.text
    info = made.json()
    assert info["filename"] == "refunds.md"  # the client's path is dropped
    assert info["content_type"] == "text/markdown"
    assert info["size"] == len(text)
    assert info["sha256"] == hashlib.sha256(text).hexdigest()
    assert (await client.get(f"{base}/{info['id']}", headers=bearer(key))).json() == info
    content = await client.get(f"{base}/{info['id']}/content", headers=bearer(key))
    assert content.content == text
    assert content.headers["content-type"].startswith("text/markdown")
    assert content.headers["x-content-type-options"] == "nosniff"
    # Identical content is stored once; the blob goes when the last file using it does.
    twin = await client.post(
        base, headers=bearer(key), files={"file": ("copy.md", text, "text/markdown")}
    )
    image = await client.post(
        base, headers=bearer(key), files={"file": ("a.png", PNG, "image/png")}
    )
    assert image.status_code == 201
    assert len(_blobs(settings)) == 2
    listed = (await client.get(base, headers=bearer(key))).json()["data"]
    assert [f["id"] for f in listed] == [image.json()["id"], twin.json()["id"], info["id"]]
    assert (await client.delete(f"{base}/{info['id']}", headers=bearer(key))).status_code == 204
    assert len(_blobs(settings)) == 2
    assert (
        await client.delete(f"{base}/{twin.json()['id']}", headers=bearer(key))
    ).status_code == 204
    assert len(_blobs(settings)) == 1
    gone = await client.get(f"{base}/{info['id']}", headers=bearer(key))
    assert gone.status_code == 404
    assert gone.json()["error"] == "not_found"
    # No temporary file is left behind.
    assert not [p for p in _blobs(settings) if p.name.startswith(".upload-")]


async def test_octet_stream_uploads_are_typed_by_name_and_checked(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("file:write")
    base = f"/v1/projects/{world.project_id}/files"
    made = await client.post(
        base, headers=bearer(key), files={"file": ("logo.png", PNG, "application/octet-stream")}
    )
    assert made.status_code == 201
    assert made.json()["content_type"] == "image/png"


@pytest.mark.parametrize(
    ("name", "data", "kind", "needle"),
    [
        ("evil.png", b"MZ\x90\x00 not a png", "image/png", "image/png"),
        ("a.txt", PNG, "text/plain", "binary"),
        ("a.txt", b"caf\xe9 latin-1", "text/plain", "UTF-8"),
        ("a.json", b"{not json", "application/json", "JSON"),
        ("a.exe", b"MZ\x90\x00", "application/x-msdownload", "not accepted"),
        ("a.pdf", PNG, "application/pdf", "image/png"),
    ],
)
async def test_content_must_match_its_type(
    client: httpx.AsyncClient, world: World, name: str, data: bytes, kind: str, needle: str
) -> None:
    key = await world.project_key("file:write")
    base = f"/v1/projects/{world.project_id}/files"
    response = await client.post(base, headers=bearer(key), files={"file": (name, data, kind)})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert needle in response.json()["message"]
    assert (await client.get(base, headers=bearer(key))).json()["data"] == []


async def test_size_limit(client: httpx.AsyncClient, world: World, settings: Settings) -> None:
    key = await world.project_key("file:write")
    base = f"/v1/projects/{world.project_id}/files"
    exact = await client.post(
        base, headers=bearer(key), files={"file": ("a.txt", b"a" * MAX_FILE_BYTES, "text/plain")}
    )
    assert exact.status_code == 201
    over = await client.post(
        base,
        headers=bearer(key),
        files={"file": ("b.txt", b"b" * (MAX_FILE_BYTES + 1), "text/plain")},
    )
    assert over.status_code == 413
    assert over.json()["error"] == "payload_too_large"
    assert str(MAX_FILE_BYTES) in over.json()["message"]
    # Far beyond: refused by the body limit before the upload is read.
    huge = await client.post(
        base,
        headers=bearer(key),
        files={"file": ("c.txt", b"c" * (MAX_FILE_BYTES + 200_000), "text/plain")},
    )
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    # Streamed without a Content-Length: counted as it arrives, still a 413.
    boundary = "keyplane-test"

    async def chunks() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="e.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        for _ in range(50):
            yield b"e" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await client.post(
        base,
        headers={**bearer(key), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"] == "payload_too_large"
    empty = await client.post(
        base, headers=bearer(key), files={"file": ("d.txt", b"", "text/plain")}
    )
    assert empty.status_code == 422
    missing = await client.post(base, headers=bearer(key), data={"other": "x"})
    assert missing.status_code == 422
    assert len((await client.get(base, headers=bearer(key))).json()["data"]) == 1
    assert len(_blobs(settings)) == 1


async def test_modes_and_projects_never_mix(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("file:write")
    test = await world.project_key("file:write", test=True)
    base = f"/v1/projects/{world.project_id}/files"
    made = await client.post(
        base, headers=bearer(live), files={"file": ("a.png", PNG, "image/png")}
    )
    file_id = made.json()["id"]
    assert (await client.get(base, headers=bearer(test))).json()["data"] == []
    for method, path in (
        ("GET", f"{base}/{file_id}"),
        ("GET", f"{base}/{file_id}/content"),
        ("DELETE", f"{base}/{file_id}"),
    ):
        response = await client.request(method, path, headers=bearer(test))
        assert response.status_code == 404, (method, path)
    assert (await client.get(f"{base}/{file_id}", headers=bearer(live))).status_code == 200
    other = await world.project()
    theirs = await world.project_key("file:write", project_id=other)
    elsewhere = await client.get(f"/v1/projects/{other}/files/{file_id}", headers=bearer(theirs))
    assert elsewhere.status_code == 404


async def test_concurrent_uploads_and_deletes_of_one_content(
    client: httpx.AsyncClient, world: World
) -> None:
    """Deleting a file while the same bytes are uploaded again never leaves a file whose
    content is gone (uploads and deletions of one blob are serialized)."""
    key = await world.project_key("file:write")
    base = f"/v1/projects/{world.project_id}/files"
    data = b"same bytes every time\n"

    async def upload() -> int:
        made = await client.post(
            base, headers=bearer(key), files={"file": ("a.txt", data, "text/plain")}
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    current = await upload()
    for _ in range(8):
        new_id, deleted = await asyncio.gather(
            upload(), client.delete(f"{base}/{current}", headers=bearer(key))
        )
        assert deleted.status_code == 204
        current = new_id
        content = await client.get(f"{base}/{current}/content", headers=bearer(key))
        assert content.status_code == 200, content.text
        assert content.content == data
