"""`keyplane scan`: find keyplane keys in files (a pre-commit hook and CI check).

The checksum makes false positives near zero: a string shaped like a key is only reported when
its CRC32 matches, so examples like `sk_live_abc123…` in docs are not flagged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from keyplane.domain.keyformat import KEY_PATTERN, looks_like_key

_CANDIDATE = re.compile(rb"(?<![0-9A-Za-z_])" + KEY_PATTERN.encode() + rb"(?![0-9A-Za-z])")
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
_MAX_FILE_BYTES = 10 * 1024 * 1024


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not _SKIP_DIRS.intersection(child.parts):
                    yield child
        elif path.is_file():
            yield path


def scan(paths: list[Path]) -> Iterator[tuple[Path, int, str]]:
    """(file, line number, masked key) for every real keyplane key found."""
    for file in _files(paths):
        try:
            if file.stat().st_size > _MAX_FILE_BYTES:
                continue
            data = file.read_bytes()
        except OSError:
            continue
        for match in _CANDIDATE.finditer(data):
            key = match.group().decode("ascii")
            if looks_like_key(key):
                line = data.count(b"\n", 0, match.start()) + 1
                yield file, line, key[:8] + "…" + key[-4:]
