"""A stand-in for GitHub's secret-scanning signer: an EC P-256 key pair made for the test,
its public half written in the format of GitHub's public-keys endpoint."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"


@dataclass
class Signer:
    private: ec.EllipticCurvePrivateKey
    identifier: str = KEY_ID

    @classmethod
    def generate(cls, identifier: str = KEY_ID) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()), identifier)

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def write_keys_file(self, path: Path) -> Path:
        document = {
            "public_keys": [
                {"key_identifier": self.identifier, "key": self.public_pem(), "is_current": True}
            ]
        }
        path.write_text(json.dumps(document))
        return path

    def headers(self, body: bytes) -> dict[str, str]:
        signature = self.private.sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": self.identifier,
            "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
        }
