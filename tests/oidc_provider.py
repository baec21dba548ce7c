"""A small OpenID Connect provider for tests, on loopback over real HTTP (issue 12).

Built on the same libraries as keyplane's client (Authlib for PKCE, joserfc to sign ID
tokens with an RSA key). It publishes discovery and JWKS, auto-approves its configured user at
/authorize (redirecting back with code and state), and at /token checks the client's
credentials, the redirect URI and the PKCE verifier before answering with an ID token.

`Tamper` knobs make it misbehave the ways a forged or broken provider would."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class Tamper:
    forge: bool = False  # sign with a key the provider never published
    unknown_kid: bool = False  # ...and name that key's id in the header
    audience: str | None = None  # put this in aud instead of the client id
    expires_in: int = 300  # negative: already expired
    nonce: str | None = None  # put this nonce instead of the one asked for
    issuer: str | None = None  # publish this issuer in discovery
    email_verified: bool = True


@dataclass
class Provider:
    client_id: str = "keyplane-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    email: str = "carol@acme.example"
    subject: str = "user-carol"
    port: int = field(default_factory=free_port)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    tamper: Tamper = field(default_factory=Tamper)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key.ensure_kid()
        self.other_key.ensure_kid()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- endpoints -------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.tamper.issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "why": "PKCE"}, status_code=400)
        if "openid" not in q.get("scope", "").split() or not q.get("nonce"):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "redirect_uri": q["redirect_uri"],
        }
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        return RedirectResponse(back, status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "why": "redirect"}, status_code=400)
        if create_s256_code_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "why": "pkce"}, status_code=400)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.tamper.audience or self.client_id,
            "iat": now,
            "exp": now + self.tamper.expires_in,
            "nonce": self.tamper.nonce or grant["nonce"],
            "email": self.email,
            "email_verified": self.tamper.email_verified,
        }
        key = self.other_key if self.tamper.forge else self.key
        kid = self.other_key.kid if self.tamper.unknown_kid else self.key.kid
        id_token = jwt.encode({"alg": "RS256", "kid": kid}, claims, key)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "id_token": id_token,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


class RunningProvider:
    """The provider served by uvicorn in a thread on a free loopback port."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        config = uvicorn.Config(
            provider.app(), host="127.0.0.1", port=provider.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Provider:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test identity provider did not start")
            time.sleep(0.02)
        return self.provider

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
