"""Reading a data provider's source: the documents of a local directory (Markdown, HTML and
text files) or of a list of URLs, each keyed by where it came from."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from keyplane.domain.text import Document, html_document, markdown_document, text_document

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
            ".txt": "text"}  # fmt: skip
MAX_FILES = 5_000
MAX_REDIRECTS = 3
MAX_CONTENT = 100_000  # characters kept per document (the API's limit for a snippet)


@dataclass
class Collected:
    """Documents read, by source (a relative path or a URL). `seen` holds every source that
    still exists, including those that could not be read this time: their snippets are kept."""

    documents: dict[str, tuple[Document, str | None]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def _fallback_title(name: str) -> str:
    return Path(name).stem.replace("-", " ").replace("_", " ").strip() or name


def parse(raw: bytes, kind: str, name: str) -> Document:
    # Files are expected in UTF-8; a stray byte becomes U+FFFD instead of failing the file.
    decoded = raw.decode("utf-8", errors="replace")
    fallback = _fallback_title(name)
    if kind == "html":
        document = html_document(decoded, fallback)
    elif kind == "markdown":
        document = markdown_document(decoded, fallback)
    else:
        document = text_document(decoded, fallback)
    return Document(title=document.title, content=document.content[:MAX_CONTENT])


def read_directory(directory: Path, roots: list[Path], max_bytes: int) -> Collected:
    """Blocking: run it in a thread. Files reached through symlinks that leave the allowed
    roots are ignored, like files of other types."""
    if not inside(directory, roots) or not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory this server may read")
    collected = Collected()
    root = directory.resolve()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)
    for path in files[:MAX_FILES]:
        if not path.is_file() or not inside(path, roots):
            continue
        source = path.relative_to(root).as_posix()
        collected.seen.add(source)
        try:
            if path.stat().st_size > max_bytes:
                collected.errors.append(f"{source}: larger than {max_bytes} bytes, skipped")
                continue
            document = parse(path.read_bytes(), SUFFIXES[path.suffix.lower()], path.name)
        except OSError as error:
            collected.errors.append(f"{source}: {error.strerror or type(error).__name__}")
            continue
        if document.content:
            collected.documents[source] = (document, None)
    if len(files) > MAX_FILES:
        collected.errors.append(f"only the first {MAX_FILES} of {len(files)} files were read")
    return collected


async def collect_directory(path: str, roots: list[Path], max_bytes: int) -> Collected:
    return await asyncio.to_thread(read_directory, Path(path), roots, max_bytes)


def _kind(content_type: str, url: str) -> str | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    if media in ("text/markdown", "text/x-markdown"):
        return "markdown"
    if media == "text/plain":
        suffix = Path(urlsplit(url).path).suffix.lower()
        return "markdown" if suffix in (".md", ".markdown") else "text"
    return None


async def check_address(url: str) -> None:
    """Refuse hosts that resolve to link-local (cloud metadata services such as
    169.254.169.254), multicast, unspecified or reserved addresses. Loopback and private
    networks stay allowed: an intranet's documentation is a fair source for a self-hosted
    server. Checked before every request, redirects included."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("only http:// and https:// URLs with a host are fetched")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise ValueError(f"cannot resolve {parts.hostname}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if (
            address.is_link_local
            or address.is_multicast
            or address.is_unspecified
            or address.is_reserved
        ):
            raise ValueError(f"{parts.hostname} resolves to {address}, which is not fetched")


async def _fetch(client: httpx.AsyncClient, url: str, max_bytes: int) -> Document:
    for _hop in range(MAX_REDIRECTS + 1):
        await check_address(url)
        async with client.stream("GET", url) as response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            return await _read(response, url, max_bytes)
    raise ValueError(f"more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response, url: str, max_bytes: int) -> Document:
    if response.status_code != 200:
        raise ValueError(f"answered HTTP {response.status_code}")
    kind = _kind(response.headers.get("content-type", ""), url)
    if kind is None:
        raise ValueError(
            f"content type {response.headers.get('content-type')!r} is not HTML, Markdown or text"
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ValueError(f"larger than {max_bytes} bytes")
    name = Path(urlsplit(url).path).name or urlsplit(url).hostname or url
    return parse(bytes(body), kind, name)


async def collect_urls(urls: list[str], max_bytes: int, seconds: float) -> Collected:
    collected = Collected()
    async with httpx.AsyncClient(
        timeout=seconds, follow_redirects=False, trust_env=False
    ) as client:
        for url in urls:
            collected.seen.add(url)
            try:
                async with asyncio.timeout(seconds * 2):
                    document = await _fetch(client, url, max_bytes)
            except (httpx.HTTPError, ValueError, TimeoutError) as error:
                reason = str(error) or type(error).__name__
                collected.errors.append(f"{url}: {reason}"[:500])
                continue
            if document.content:
                collected.documents[url] = (document, url)
    return collected
