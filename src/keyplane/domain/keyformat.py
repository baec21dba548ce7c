"""The API-key format of DESIGN §2.

    sk_live_<37 random base62 chars><6 base62 chars of CRC32(prefix + random)>

Parsing is the first, cheapest gate of every request: it rejects whitespace, truncation, stray
characters and typos (via the checksum) without touching any storage, and its messages say what
is wrong without ever echoing the secret part.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

from keyplane.domain.errors import InvalidApiKey, MalformedApiKey

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(BASE62)
RANDOM_LENGTH = 37
CHECKSUM_LENGTH = 6
PREFIX_LENGTH = len("sk_live_")
KEY_LENGTH = PREFIX_LENGTH + RANDOM_LENGTH + CHECKSUM_LENGTH  # 51
HINT_LENGTH = 4
KEY_PATTERN = r"sk_(?:live|test)_[0-9A-Za-z]{43}"
_KEY_RE = re.compile(KEY_PATTERN)


class Mode(StrEnum):
    LIVE = "live"
    TEST = "test"

    @property
    def prefix(self) -> str:
        return f"sk_{self.value}_"


_PREFIXES = {mode.prefix: mode for mode in Mode}


def base62_encode(number: int, width: int) -> str:
    """Fixed-width big-endian base62; `width` must be enough for `number`."""
    chars = ["0"] * width
    for position in range(width - 1, -1, -1):
        number, digit = divmod(number, 62)
        chars[position] = BASE62[digit]
    if number:
        raise ValueError("number does not fit in the requested width")
    return "".join(chars)


def checksum(body: str) -> str:
    """Six base62 characters of CRC32 over the prefix and the random part (62**6 > 2**32)."""
    return base62_encode(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate(mode: Mode) -> str:
    """A new secret with ~220 bits of entropy (37 * log2(62))."""
    body = mode.prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return body + checksum(body)


def hint(key: str) -> str:
    """What the dashboard may show of a key: its last characters, which are checksum."""
    return key[-HINT_LENGTH:]


@dataclass(frozen=True, slots=True)
class ParsedKey:
    value: str
    mode: Mode


def parse(raw: str) -> ParsedKey:
    """Validate the shape and checksum of `raw`.

    Raises MalformedApiKey when the text is not shaped like a key (naming the fault) and
    InvalidApiKey when it is shaped like one but the checksum fails (a typo or a look-alike).
    """
    # Fast path for the overwhelmingly common well-formed key; the diagnosis below only runs
    # for bad input, so its readable per-character checks cost nothing in steady state.
    if _KEY_RE.fullmatch(raw) is None:
        _diagnose(raw)
    body = raw[: KEY_LENGTH - CHECKSUM_LENGTH]
    if checksum(body) != raw[KEY_LENGTH - CHECKSUM_LENGTH :]:
        raise InvalidApiKey("This is not a keyplane key; was it copied completely?")
    return ParsedKey(value=raw, mode=Mode.LIVE if raw[3] == "l" else Mode.TEST)


def _diagnose(raw: str) -> None:
    """Raise MalformedApiKey naming the first thing wrong with a string that is not a key."""
    if raw != raw.strip():
        if "\n" in raw or "\r" in raw:
            raise MalformedApiKey(
                "The API key ends or starts with a line break; remove it (a key read from a "
                "file or an environment variable often carries a trailing newline)."
            )
        raise MalformedApiKey(
            "The API key has surrounding whitespace; remove the spaces before or after it."
        )
    if raw.endswith(("\\n", "\\r")):
        raise MalformedApiKey(
            "The API key ends with a literal backslash sequence (\\n or \\r), usually from a "
            "quoted .env value; remove it."
        )
    if not raw.isascii():
        raise MalformedApiKey(
            "The API key contains non-ASCII characters; keys use only 0-9, A-Z, a-z and '_'. "
            "Copy it again from where it was issued."
        )
    if raw[:PREFIX_LENGTH] not in _PREFIXES:
        # A keyplane-shaped prefix is never secret; of anything else (another vendor's token,
        # a password pasted by mistake) show no more than three characters.
        shown = raw[:PREFIX_LENGTH] if raw.startswith("sk_") else raw[:3]
        raise MalformedApiKey(
            f"The API key must start with sk_live_ or sk_test_, but it starts with {shown!r}. "
            "Use a secret key created under Project → Settings → API Keys."
        )
    for position, char in enumerate(raw[PREFIX_LENGTH:KEY_LENGTH], start=PREFIX_LENGTH + 1):
        if char not in _BASE62_SET:
            raise MalformedApiKey(
                f"The API key contains a character outside 0-9A-Za-z at position {position}; "
                "copy it again from where it was issued."
            )
    if len(raw) < KEY_LENGTH:
        raise MalformedApiKey(
            f"The API key is truncated (length {len(raw)} of {KEY_LENGTH}); copy the whole key."
        )
    raise MalformedApiKey(
        f"The API key is too long (length {len(raw)} of {KEY_LENGTH}); check that nothing "
        "was appended to it."
    )


def looks_like_key(candidate: str) -> bool:
    """True when `candidate` is a well-formed key with a valid checksum (used by `scan`)."""
    try:
        parse(candidate)
    except (MalformedApiKey, InvalidApiKey):
        return False
    return True
