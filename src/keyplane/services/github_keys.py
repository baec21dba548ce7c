"""Verifying GitHub secret-scanning requests: an ECDSA P-256 / SHA-256 signature over the raw
body, made with the key named by `Github-Public-Key-Identifier`. The public keys come from a
local file in the format of GitHub's public-keys endpoint; keyplane never fetches them, so
the operator decides which keys to trust (and the file is re-read when it changes)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keyplane.domain.errors import InvalidSignature, MissingSignature

log = structlog.get_logger(__name__)

IDENTIFIER_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"


def parse_keys(text: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """Key identifier -> public key, from `{"public_keys": [{"key_identifier", "key"}]}`;
    entries that are not EC public keys in PEM are skipped (and logged)."""
    document = json.loads(text)
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in document.get("public_keys", []) if isinstance(document, dict) else []:
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not isinstance(pem, str):
            continue
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, UnsupportedAlgorithm):
            log.warning("github_key_unreadable", key_identifier=identifier)
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[identifier] = key
    return keys


@dataclass
class GithubKeys:
    path: Path | None
    _mtime: float | None = None
    _keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    def current(self) -> dict[str, ec.EllipticCurvePublicKey]:
        if self.path is None:
            return {}
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._keys = parse_keys(self.path.read_text())
                self._mtime = mtime
        except (OSError, ValueError) as error:
            log.error("github_keys_unreadable", path=str(self.path), error=type(error).__name__)
            return {}
        return self._keys

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> None:
        """Raise unless `signature` is a valid signature of `body` by the named key."""
        if not identifier or not signature:
            raise MissingSignature(
                f"Leak reports must carry the {IDENTIFIER_HEADER} and {SIGNATURE_HEADER} "
                "headers that GitHub sends."
            )
        if self.path is None:
            raise InvalidSignature(
                "GitHub secret scanning is not configured on this server; set "
                "KEYPLANE_GITHUB_SCANNING_KEYS_FILE to GitHub's public keys."
            )
        key = self.current().get(identifier)
        if key is None:
            raise InvalidSignature(
                "The signing key identifier is not one of the configured GitHub public keys."
            )
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except (BadSignature, binascii.Error, ValueError):
            raise InvalidSignature(
                "The signature does not match the request body and the named GitHub key."
            ) from None
