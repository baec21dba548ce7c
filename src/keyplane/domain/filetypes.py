"""Which files may be uploaded, and whether their bytes are what they claim to be (pure).

The declared content type alone is a client's word; a PNG declared as text/plain, or an
executable declared as image/png, is refused by looking at the bytes themselves."""

from __future__ import annotations

import json
import mimetypes

from keyplane.domain.errors import UnsupportedMediaType

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
_TEXT = ("text/plain", "text/markdown", "text/csv", "text/html", "application/json")
ALLOWED = frozenset({*_MAGIC, "image/webp", *_TEXT})
_EXTENSIONS = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv"}


def _binary_type(data: bytes) -> str | None:
    for kind, signatures in _MAGIC.items():
        if data.startswith(signatures):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def declared_type(content_type: str | None, filename: str) -> str:
    """The type the client claims: the part's Content-Type without parameters, or, for a
    generic one (application/octet-stream, none), what the file name's extension says."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("", "application/octet-stream"):
        suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        kind = _EXTENSIONS.get(suffix) or mimetypes.types_map.get(suffix, "")
    return kind


def check(kind: str, data: bytes) -> str:
    """Refuses a type outside the allow-list or bytes that are not of that type."""
    if kind not in ALLOWED:
        shown = kind or "an unknown type"
        raise UnsupportedMediaType(
            f"Files of type {shown} are not accepted; allowed: {', '.join(sorted(ALLOWED))}.",
            allowed=sorted(ALLOWED),
        )
    actual = _binary_type(data)
    if kind in _TEXT:
        if actual is not None or b"\x00" in data:
            raise UnsupportedMediaType(
                f"The file is declared as {kind} but its content is binary"
                + (f" ({actual})" if actual else "")
                + "; upload it with its real content type."
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedMediaType(
                f"The file is declared as {kind} but is not UTF-8 text; convert it to UTF-8."
            ) from None
        if kind == "application/json":
            try:
                json.loads(text)
            except ValueError:
                raise UnsupportedMediaType(
                    "The file is declared as application/json but is not valid JSON."
                ) from None
        return kind
    if actual != kind:
        found = f"looks like {actual}" if actual else "does not match its signature"
        raise UnsupportedMediaType(
            f"The file is declared as {kind} but its content {found}; "
            "upload it with its real content type."
        )
    return kind
