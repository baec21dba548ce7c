"""OpenID Connect sign-in for the dashboard, configured per organization (issue 12).

The authorization-code flow with PKCE (S256), a state bound to the browser that started it,
and a nonce; the ID token's signature is checked against the provider's published keys
(JWKS) and its issuer, audience, expiry and nonce are checked before anyone is signed in.
Building blocks come from Authlib (tokens, PKCE) and joserfc (Authlib's JOSE library, for the
JWT checks). Members are created just in time: a verified email of an allowed domain becomes
a member of the organization (a confined client unless the organization says otherwise).

Failures raise SsoFailed with a message the person can act on; nothing here logs or returns
the client secret, the code, or a token."""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import (
    CustomRole,
    OidcLogin,
    Organization,
    OrgMember,
    OrgSso,
    User,
)
from keyplane.adapters.sql.repositories import access_changed, aware, utcnow
from keyplane.domain.errors import NotFound, SsoFailed, ValidationFailed
from keyplane.domain.roles import OrgRole, ProjectRole
from keyplane.services import accounts
from keyplane.services.crypto import Keyring

log = structlog.get_logger(__name__)

LOGIN_LIFETIME = timedelta(minutes=10)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
MAX_SECRET = 500
FAILURE_PAUSE = 10.0  # seconds before a provider whose discovery failed is asked again
CLOCK_SKEW = 60  # seconds of leeway on exp/iat/nbf between us and the provider


@dataclass(frozen=True)
class SsoConfig:
    """An organization's SSO settings as shown to admins: never the client secret."""

    org_id: int
    enabled: bool
    issuer: str
    client_id: str
    allowed_domains: tuple[str, ...]
    jit_clients: bool
    default_project_role: str
    password_login: bool
    has_secret: bool


def _config(row: OrgSso) -> SsoConfig:
    return SsoConfig(
        org_id=row.org_id,
        enabled=row.enabled,
        issuer=row.issuer,
        client_id=row.client_id,
        allowed_domains=tuple(row.allowed_domains or ()),
        jit_clients=row.jit_clients,
        default_project_role=row.default_project_role,
        password_login=row.password_login,
        has_secret=bool(row.secret_sealed),
    )


async def get_config(db: AsyncSession, org_id: int) -> SsoConfig | None:
    row = await db.get(OrgSso, org_id)
    return None if row is None else _config(row)


def _sealing_context(org_id: int) -> str:
    # Associated data binding the sealed secret to its organization (see Keyring.encrypt).
    return f"org-sso:{org_id}"


def _client_secret(keyring: Keyring, row: OrgSso) -> str:
    try:
        return keyring.decrypt(row.secret_version, row.secret_sealed, _sealing_context(row.org_id))
    except Exception:  # a missing key version or a damaged row: the admin re-enters it
        log.error("sso.secret_unreadable", org_id=row.org_id, version=row.secret_version)
        raise SsoFailed(
            "The stored SSO client secret cannot be decrypted with this server's secret key; "
            "an administrator must enter it again in the SSO settings."
        ) from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def clean_issuer(issuer: str, allow_http_loopback: bool = False) -> str:
    """An issuer URL: https (plain http only on loopback, for local providers, when the
    operator allows it), no query or fragment, no trailing slash (issuers compare exactly)."""
    issuer = issuer.strip()
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.query
        or parts.fragment
        or (parts.scheme == "http" and not (allow_http_loopback and _loopback(host)))
        or any(c.isspace() for c in issuer)
        or len(issuer) > 500
    ):
        raise ValidationFailed(
            "The issuer must be your identity provider's https URL, e.g. "
            "https://login.example.com/realms/acme (no query or fragment; plain http only on "
            "localhost, and only with KEYPLANE_OIDC_ALLOW_HTTP_LOOPBACK=true).",
            details=[{"loc": ["issuer"], "msg": "not an https URL"}],
        )
    return issuer.rstrip("/")


def _clean_domains(domains: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in domains:
        for part in raw.replace(",", " ").split():
            domain = part.strip().lower().lstrip("@")
            labels = domain.split(".")
            if (
                len(labels) < 2
                or len(domain) > 253
                or not all(label and label.replace("-", "").isalnum() for label in labels)
            ):
                raise ValidationFailed(
                    f"{part!r} is not an email domain; give domains like example.com.",
                    details=[{"loc": ["allowed_domains"], "msg": "not a domain"}],
                )
            if domain not in cleaned:
                cleaned.append(domain)
    return cleaned


async def _check_role(db: AsyncSession, org_id: int, role: str) -> None:
    if role in ProjectRole._value2member_map_:
        return
    custom = await db.scalar(
        select(CustomRole.id).where(CustomRole.org_id == org_id, CustomRole.name == role)
    )
    if custom is None:
        raise ValidationFailed(
            f"Unknown project role {role!r}; use {', '.join(ProjectRole)} or a custom role of "
            "this organization.",
            details=[{"loc": ["default_project_role"], "msg": "unknown role"}],
        )


async def configure(
    db: AsyncSession,
    keyring: Keyring,
    org_id: int,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: list[str],
    default_project_role: str = ProjectRole.MEMBER,
    password_login: bool = True,
    jit_clients: bool = True,
    enabled: bool = True,
    actor_user_id: int | None = None,
    allow_http_loopback: bool = False,
) -> SsoConfig:
    """Create or change an organization's SSO. `client_secret` None keeps the stored one."""
    if await db.get(Organization, org_id) is None:
        raise NotFound(f"No organization with id {org_id}.")
    issuer = clean_issuer(issuer, allow_http_loopback)
    client_id = client_id.strip()
    if not client_id or len(client_id) > 200 or not client_id.isprintable():
        raise ValidationFailed(
            "Enter the client id your identity provider gave this application.",
            details=[{"loc": ["client_id"], "msg": "required"}],
        )
    domains = _clean_domains(allowed_domains)
    if not domains:
        raise ValidationFailed(
            "Name at least one allowed email domain (e.g. acme.com): only people with an "
            "address there may sign in.",
            details=[{"loc": ["allowed_domains"], "msg": "required"}],
        )
    await _check_role(db, org_id, default_project_role)
    if not password_login and not enabled:
        raise ValidationFailed(
            "Password sign-in can only be switched off while SSO is enabled; otherwise nobody "
            "could sign in.",
            details=[{"loc": ["password_login"], "msg": "needs SSO"}],
        )
    row = await db.get(OrgSso, org_id)
    if client_secret is not None:
        client_secret = client_secret.strip()
        if (
            not client_secret
            or len(client_secret) > MAX_SECRET
            or not client_secret.isascii()
            or not client_secret.isprintable()
        ):
            raise ValidationFailed(
                "The client secret must be the printable text your provider shows (at most "
                f"{MAX_SECRET} characters).",
                details=[{"loc": ["client_secret"], "msg": "invalid"}],
            )
    elif row is None:
        raise ValidationFailed(
            "Enter the client secret your identity provider gave this application.",
            details=[{"loc": ["client_secret"], "msg": "required"}],
        )
    if row is None:
        row = OrgSso(org_id=org_id, secret_version=0, secret_sealed=b"")
        db.add(row)
    row.issuer = issuer
    row.client_id = client_id
    if client_secret is not None:
        row.secret_version, row.secret_sealed = keyring.encrypt(
            client_secret, _sealing_context(org_id)
        )
    row.allowed_domains = domains
    row.default_project_role = default_project_role
    row.password_login = password_login
    row.jit_clients = jit_clients
    row.enabled = enabled
    row.updated_at = utcnow()
    accounts._member_event(
        db,
        "org.sso_configured",
        org_id,
        actor_user_id=actor_user_id,
        issuer=issuer,
        client_id=client_id,
        allowed_domains=domains,
        password_login=password_login,
        enabled=enabled,
        secret_changed=client_secret is not None,
    )
    await db.flush()
    return _config(row)


async def remove(db: AsyncSession, org_id: int, actor_user_id: int | None = None) -> None:
    row = await db.get(OrgSso, org_id)
    if row is None:
        raise NotFound("This organization has no SSO configured.")
    await db.delete(row)
    accounts._member_event(db, "org.sso_removed", org_id, actor_user_id=actor_user_id)


async def password_refused_by(db: AsyncSession, user_id: int) -> str | None:
    """The name of an organization that makes this person sign in with SSO, if any. Owners
    keep their password, so that a broken provider cannot lock everyone out."""
    return await db.scalar(
        select(Organization.name)
        .join(OrgMember, OrgMember.org_id == Organization.id)
        .join(OrgSso, OrgSso.org_id == Organization.id)
        .where(
            OrgMember.user_id == user_id,
            OrgMember.role != OrgRole.OWNER,
            OrgSso.enabled.is_(True),
            OrgSso.password_login.is_(False),
        )
        .limit(1)
    )


def _hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


# --- the flow -------------------------------------------------------------------------------
HttpFactory = Callable[[], httpx.AsyncClient]
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def _default_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False)


class OidcClient:
    """Talks to identity providers. Discovery documents and key sets are cached for a few
    minutes per issuer; a signature that does not verify refetches the keys once (rotation)."""

    def __init__(self, http: HttpFactory = _default_http, cache_seconds: float = 300.0) -> None:
        self._http = http
        self._cache_seconds = cache_seconds
        self._discovery: dict[str, tuple[float, dict[str, Any]]] = {}
        self._jwks: dict[str, tuple[float, KeySet]] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # issuer -> (until, message)

    async def _get_json(self, url: str, what: str, issuer: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            log.warning("sso.unreachable", issuer=issuer, what=what, error=type(error).__name__)
            raise SsoFailed(
                f"The identity provider at {issuer} could not be reached to fetch its {what} "
                f"({type(error).__name__}); check the issuer URL in the SSO settings, or try "
                "again later."
            ) from None
        if response.status_code != 200:
            log.warning("sso.bad_status", issuer=issuer, what=what, status=response.status_code)
            raise SsoFailed(
                f"The identity provider at {issuer} answered HTTP {response.status_code} for its "
                f"{what}; check the issuer URL in the SSO settings."
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("sso.not_json", issuer=issuer, what=what)
            raise SsoFailed(
                f"The identity provider at {issuer} did not answer with a JSON {what}; check "
                "the issuer URL in the SSO settings."
            )
        return body

    def forget(self) -> None:
        """Drop what is cached about providers (SSO settings were just changed: an admin
        who fixed their provider retries at once)."""
        self._discovery.clear()
        self._failed.clear()
        self._jwks.clear()

    async def discover(self, issuer: str) -> dict[str, Any]:
        cached = self._discovery.get(issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        failed = self._failed.get(issuer)
        if failed is not None and failed[0] > time.monotonic():
            # A broken provider is asked again only after a pause: sign-in attempts (anyone
            # may start one) must not turn into a stream of requests to it.
            raise SsoFailed(failed[1])
        try:
            document = await self._discover(issuer)
        except SsoFailed as error:
            self._failed[issuer] = (time.monotonic() + FAILURE_PAUSE, error.message)
            raise
        self._discovery[issuer] = (time.monotonic() + self._cache_seconds, document)
        return document

    async def _discover(self, issuer: str) -> dict[str, Any]:
        document = await self._get_json(
            issuer + "/.well-known/openid-configuration", "discovery document", issuer
        )
        if document.get("issuer") != issuer:
            log.warning("sso.issuer_mismatch", issuer=issuer, published=document.get("issuer"))
            raise SsoFailed(
                f"The provider's discovery document names the issuer "
                f"{str(document.get('issuer'))[:200]!r}, not {issuer!r}; set the issuer in the "
                "SSO settings to exactly the provider's."
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(field)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
                log.warning("sso.discovery_incomplete", issuer=issuer, missing=field)
                raise SsoFailed(
                    f"The provider's discovery document has no usable {field}; it is not an "
                    "OpenID Connect provider, or the issuer URL is wrong."
                )
        return document

    async def key_set(self, issuer: str, jwks_uri: str, *, refresh: bool = False) -> KeySet:
        cached = self._jwks.get(jwks_uri)
        if cached is not None and cached[0] > time.monotonic() and not refresh:
            return cached[1]
        body = await self._get_json(jwks_uri, "signing keys (JWKS)", issuer)
        try:
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            log.warning("sso.bad_jwks", issuer=issuer)
            raise SsoFailed(
                "The provider published signing keys keyplane cannot read; check the "
                "provider's configuration."
            ) from None
        self._jwks[jwks_uri] = (time.monotonic() + self._cache_seconds, keys)
        return keys

    # --- step 1: send the browser to the provider ---------------------------------------------
    async def start(
        self, db: AsyncSession, org_id: int, redirect_uri: str, next_path: str
    ) -> tuple[str, str]:
        """The provider's authorization URL and the state (for the browser-binding cookie)."""
        row = await db.get(OrgSso, org_id)
        if row is None or not row.enabled:
            raise SsoFailed("This organization has no SSO sign-in; sign in with your password.")
        document = await self.discover(row.issuer)
        state = generate_token(43)
        nonce = generate_token(43)
        verifier = generate_token(64)
        await db.execute(delete(OidcLogin).where(OidcLogin.expires_at < utcnow()))
        db.add(
            OidcLogin(
                state_hash=_hash(state),
                org_id=org_id,
                nonce=nonce,
                code_verifier=verifier,
                next_path=next_path,
                expires_at=utcnow() + LOGIN_LIFETIME,
            )
        )
        url: str = prepare_grant_uri(
            str(document["authorization_endpoint"]),
            row.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope="openid email profile",
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return url, state

    # --- step 2: the provider sends the browser back -------------------------------------------
    async def finish(
        self,
        transaction: Transaction,
        keyring: Keyring,
        *,
        state: str,
        code: str,
        browser_state: str | None,
        redirect_uri: str,
    ) -> tuple[int, int, str]:
        """Verify the answer and make the person a member: (user id, org id, next path). The
        pending sign-in is consumed in its own transaction first: a state is good once."""
        if not state or browser_state != state:
            log.warning("sso.state_mismatch")
            raise SsoFailed(
                "This sign-in did not start in this browser (the state does not match); "
                "start again from the sign-in page."
            )
        async with transaction() as db:
            login = await db.get(OidcLogin, _hash(state))
            if login is not None:
                await db.delete(login)  # single use, whatever happens next
        if login is None or (aware(login.expires_at) or utcnow()) <= utcnow():
            raise SsoFailed(
                "This sign-in has expired or was already used; start again from the sign-in page."
            )
        if not code:
            raise SsoFailed("The identity provider sent no sign-in code; start again.")
        async with transaction() as db:
            row = await db.get(OrgSso, login.org_id)
            if row is None or not row.enabled:
                raise SsoFailed("SSO was switched off for this organization while you signed in.")
            document = await self.discover(row.issuer)
            secret = _client_secret(keyring, row)
            id_token = await self._exchange(
                row, document, code, login.code_verifier, secret, redirect_uri
            )
            claims = await self._verify(row, document, id_token, login.nonce)
            user_id = await self._member(db, row, claims)
            return user_id, row.org_id, login.next_path

    async def _exchange(
        self,
        row: OrgSso,
        document: dict[str, Any],
        code: str,
        verifier: str,
        secret: str,
        redirect_uri: str,
    ) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": row.client_id,
        }
        try:
            async with self._http() as http:
                response = await http.post(
                    str(document["token_endpoint"]),
                    data=form,
                    auth=(row.client_id, secret),  # client_secret_basic
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as error:
            log.warning("sso.token_unreachable", issuer=row.issuer, error=type(error).__name__)
            raise SsoFailed(
                f"The identity provider's token endpoint could not be reached "
                f"({type(error).__name__}); try again later."
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else None
            log.warning(
                "sso.token_refused", issuer=row.issuer, status=response.status_code, error=reason
            )
            raise SsoFailed(
                f"The identity provider refused the sign-in code (HTTP {response.status_code}"
                f"{', ' + str(reason)[:100] if reason else ''}); check the client id and secret "
                "in the SSO settings, then start again."
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            log.warning("sso.no_id_token", issuer=row.issuer)
            raise SsoFailed("The identity provider answered without an ID token; is it OpenID?")
        return id_token

    async def _verify(
        self, row: OrgSso, document: dict[str, Any], id_token: str, nonce: str
    ) -> dict[str, Any]:
        jwks_uri = str(document["jwks_uri"])
        keys = await self.key_set(row.issuer, jwks_uri)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except (BadSignatureError, InvalidKeyIdError, ValueError):
                # The provider may have rotated its keys since we cached them.
                keys = await self.key_set(row.issuer, jwks_uri, refresh=True)
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            claims = dict(token.claims)
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_SKEW,
                iss={"essential": True, "value": row.issuer},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except ExpiredTokenError:
            log.warning("sso.token_rejected", issuer=row.issuer, reason="expired")
            raise SsoFailed(
                "The identity provider's ID token has expired; check that the clocks agree, "
                "then start again."
            ) from None
        except (MissingClaimError, InvalidClaimError) as error:
            claim = getattr(error, "claim", None) or str(error)[:60]
            log.warning("sso.token_rejected", issuer=row.issuer, reason="claim", claim=claim)
            raise SsoFailed(
                f"The identity provider's ID token failed the {claim} check; start again, and "
                "if it happens again check the SSO settings."
            ) from None
        except (JoseError, ValueError, TypeError) as error:
            log.warning("sso.token_rejected", issuer=row.issuer, reason=type(error).__name__)
            raise SsoFailed(
                "The ID token's signature does not verify against the identity provider's "
                "published keys; the token was forged or the issuer is wrong."
            ) from None
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if (
            not isinstance(audiences, list)
            or row.client_id not in audiences
            or (len(audiences) > 1 and claims.get("azp") != row.client_id)
        ):
            log.warning("sso.token_rejected", issuer=row.issuer, reason="audience")
            raise SsoFailed(
                "The ID token was issued for another application (its audience is not this "
                "organization's client id); check the client id in the SSO settings."
            )
        return claims

    async def _member(self, db: AsyncSession, row: OrgSso, claims: dict[str, Any]) -> int:
        """Just-in-time membership: the verified email of an allowed domain."""
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SsoFailed(
                "The identity provider did not share an email address; allow the 'email' "
                "scope for this application."
            )
        if claims.get("email_verified") is False:
            raise SsoFailed(
                "The identity provider says this email address is not verified; verify it "
                "there first."
            )
        email = accounts.normalize_email(email)
        domain = email.rpartition("@")[2]
        if domain not in (row.allowed_domains or []):
            log.warning("sso.domain_refused", org_id=row.org_id, domain=domain)
            raise SsoFailed(
                f"Addresses at {domain} may not sign in to this organization; ask an "
                "administrator to add the domain."
            )
        user = await db.scalar(select(User).where(User.email == email))
        if user is not None:
            # An organization's provider vouches for its own people only: it must not sign
            # in an account that also belongs to another organization (whose admins never
            # trusted this provider), or one organization could take over another's members.
            elsewhere = await db.scalar(
                select(OrgMember.org_id)
                .where(OrgMember.user_id == user.id, OrgMember.org_id != row.org_id)
                .limit(1)
            )
            if elsewhere is not None:
                log.warning("sso.account_elsewhere", org_id=row.org_id, user_id=user.id)
                raise SsoFailed(
                    "This email's account also belongs to other organizations, so this "
                    "organization's SSO cannot sign it in; sign in with its password instead."
                )
        if user is None:
            # No password: this person signs in through the provider only.
            user = User(email=email, password_hash="", created_at=utcnow())
            db.add(user)
            await db.flush()
        member = await db.get(OrgMember, (row.org_id, user.id))
        if member is None:
            db.add(
                OrgMember(
                    org_id=row.org_id, user_id=user.id, role=OrgRole.MEMBER, client=row.jit_clients
                )
            )
            accounts._member_event(
                db,
                "member.sso_joined",
                row.org_id,
                user_id=user.id,
                email=email,
                client=row.jit_clients,
            )
            await access_changed(db, row.org_id)
        log.info("sso.signed_in", org_id=row.org_id, user_id=user.id)
        return user.id
