"""Peppered lookup hashes and encryption of stored secrets (DESIGN §2).

One master secret per version; HKDF derives from it an HMAC pepper (for the lookup hash that
finds a key) and an AES-256-GCM key-encryption key (for the revealable copy). A fast keyed hash
is right for 220-bit secrets; a password hash would cost milliseconds per request for nothing.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import sys
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_FILE = "keyplane.secret"  # noqa: S105 - a file name, not a secret
_NONCE_BYTES = 12


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


@dataclass(frozen=True, slots=True)
class SecretVersion:
    version: int
    pepper: bytes
    aead: AESGCM
    pseudonym: bytes
    cookies: bytes

    @classmethod
    def from_master(cls, version: int, master: bytes) -> SecretVersion:
        return cls(
            version=version,
            pepper=_derive(master, b"keyplane lookup pepper v1"),
            aead=AESGCM(_derive(master, b"keyplane secret encryption v1")),
            pseudonym=_derive(master, b"keyplane export pseudonyms v1"),
            cookies=_derive(master, b"keyplane cookie signatures v1"),
        )


class Keyring:
    """All secret versions; the highest one is used for new keys."""

    def __init__(self, versions: dict[int, bytes]) -> None:
        if not versions:
            raise ValueError("a keyring needs at least one secret")
        self._versions = {v: SecretVersion.from_master(v, m) for v, m in versions.items()}
        self.current = self._versions[max(self._versions)]

    @property
    def versions(self) -> list[int]:
        """Newest first: the order in which a lookup tries them."""
        return sorted(self._versions, reverse=True)

    def lookup_hash(self, key: str, version: int | None = None) -> bytes:
        pepper = self._versions[version].pepper if version else self.current.pepper
        return hmac.digest(pepper, key.encode("ascii"), sha256)

    def pseudonym(self, value: str) -> str:
        """A stable stand-in for an identifier in exports without PII: a keyed hash, so that
        nobody without the server's secret can recompute it from a guessed external id.
        Uses the oldest secret version, so that adding a newer secret keeps pseudonyms."""
        key = self._versions[min(self._versions)].pseudonym
        return "u_" + hmac.digest(key, value.encode("utf-8"), sha256).hex()[:32]

    def sign_cookie(self, value: str) -> str:
        """A signature for a value a browser keeps for us (newest secret), URL-safe."""
        return _cookie_signature(self.current.cookies, value)

    def cookie_signed(self, value: str, signature: str) -> bool:
        """Whether `signature` is `value`'s under any secret version (adding a secret does
        not invalidate the cookies signed before)."""
        given = signature.encode("utf-8", "replace")  # cookies may hold any text
        return any(
            hmac.compare_digest(_cookie_signature(v.cookies, value).encode(), given)
            for v in self._versions.values()
        )

    def encrypt(self, key: str, key_id: str) -> tuple[int, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        # The key id as associated data binds each ciphertext to its row: a ciphertext copied
        # onto another key's row fails to decrypt instead of revealing the wrong secret.
        sealed = self.current.aead.encrypt(nonce, key.encode("ascii"), key_id.encode())
        return self.current.version, nonce + sealed

    def decrypt(self, version: int, blob: bytes, key_id: str) -> str:
        aead = self._versions[version].aead
        return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], key_id.encode()).decode()

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """`"2:secret,1:older"` or one plain secret (version 1)."""
        versions: dict[int, bytes] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            version_text, sep, master = part.partition(":")
            if sep and version_text.isdigit():
                versions[int(version_text)] = master.encode()
            else:
                versions[1] = part.encode()
        if not versions or any(len(m) < 16 for m in versions.values()):
            raise ValueError(
                "KEYPLANE_SECRET_KEY must hold at least one secret of 16 or more characters, "
                'as "secret" or "2:newer,1:older"'
            )
        return cls(versions)


def _cookie_signature(key: bytes, value: str) -> str:
    digest = hmac.digest(key, value.encode("utf-8"), sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_keyring(configured: str | None, data_dir: Path) -> Keyring:
    """The keyring from settings, or from `data_dir/keyplane.secret`, creating that file (mode
    0600) on first start so that a fresh install needs no configuration."""
    if configured:
        return Keyring.parse(configured)
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = "1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker process won the race; use its secret
            return Keyring.parse(path.read_text().strip())
        with os.fdopen(fd, "w") as handle:
            handle.write(generated + "\n")
        print(
            f"keyplane: generated a new secret key in {path} (mode 0600). Back it up: without it "
            "no existing API key can be verified or revealed.",
            file=sys.stderr,
        )
    return Keyring.parse(path.read_text().strip())
