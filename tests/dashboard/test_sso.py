"""OpenID Connect sign-in (issue 12) against a real provider process on loopback: the whole
flow over HTTP (dashboard → provider → callback), just-in-time membership as a confined
client, and every way a sign-in must fail with a clear message and no session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import select

from keyplane.adapters.sql.models import OrgMember, OrgSso, User
from keyplane.domain.errors import ValidationFailed
from keyplane.services import accounts, clients, sso
from keyplane.settings import Settings
from tests.conftest import PASSWORD, TEST_SECRET, World, free_port
from tests.dashboard.test_auth_pages import form_token, session_csrf, sign_in
from tests.oidc_provider import Provider, RunningProvider, Tamper


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with RunningProvider(Provider()) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_tamper(provider: Provider) -> None:
    provider.tamper = Tamper()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test provider speaks plain http on loopback, which the operator must allow."""
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        oidc_allow_http_loopback=True,
        _env_file=None,  # type: ignore[call-arg]
    )


async def configure(world: World, provider: Provider, **options: object) -> None:
    settings: dict[str, object] = {
        "allow_http_loopback": True,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "allowed_domains": ["acme.example"],
    } | options
    async with world.runtime.transaction() as db:
        await sso.configure(db, world.runtime.keyring, world.org_id, **settings)  # type: ignore[arg-type]


async def go_through_provider(client: httpx.AsyncClient, world: World) -> httpx.Response:
    """Start on the organization's sign-in page, let the provider approve, and come back."""
    page = await client.get(f"/dashboard/sso/{world.org_id}")
    assert page.status_code == 200
    assert 'id="sso-start"' in page.text
    started = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert started.status_code == 303, started.text
    authorize = started.headers["location"]
    async with httpx.AsyncClient() as browser:  # the real provider, over HTTP
        approved = await browser.get(authorize)
    assert approved.status_code == 302, approved.text
    back = approved.headers["location"]
    assert back.startswith("http://keyplane.test/dashboard/sso/callback?")
    return await client.get(back)


async def test_sso_sign_in_creates_a_confined_client(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider, default_project_role="p_owner")
    done = await go_through_provider(client, world)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard"
    assert "keyplane_session=" in done.headers["set-cookie"]
    # PKCE: the provider got a verifier matching the challenge (it refuses otherwise).
    assert provider.token_requests[-1]["code_verifier"]
    async with world.runtime.sessions() as db:
        user = await db.scalar(select(User).where(User.email == provider.email))
        assert user is not None
        member = await db.get(OrgMember, (world.org_id, user.id))
        assert member is not None
        assert member.client
        assert member.role == "o_member"
    # A client with nothing assigned sees no project.
    account = await client.get("/dashboard/account/api-keys")
    assert account.status_code == 200
    assert "My project" not in account.text
    # Assigned one, it appears — and only it.
    second = await world.project("Other client bot")
    async with world.runtime.transaction() as db:
        # No role given: the organization's SSO default role (p_owner here).
        await clients.assign(db, world.owner_id, world.org_id, user.id, world.project_id, "")
    keys = await client.get(f"/dashboard/projects/{world.project_id}/settings/api-keys")
    assert keys.status_code == 200
    assert "My project" in keys.text
    assert "Other client bot" not in keys.text
    hidden = await client.get(f"/dashboard/projects/{second}/settings/api-keys")
    assert hidden.status_code == 404
    assert "Other client bot" not in hidden.text
    # Revealing a secret needs a recent password, which an SSO account does not have.
    csrf = await session_csrf(client)
    created = await client.post(
        f"/v1/projects/{world.project_id}/api-keys",
        json={"name": "carol", "permissions": ["project:read"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert created.status_code == 201
    reveal = await client.post(
        f"/v1/projects/{world.project_id}/api-keys/{created.json()['id']}/reveal",
        headers={"X-CSRF-Token": csrf},
    )
    assert reveal.status_code == 403
    for _ in range(6):  # refused, never counted: there is no password to guess
        confirm = await client.post("/v1/session/reauthenticate", json={"password": "anything"})
        assert confirm.status_code == 403
        assert confirm.json()["error"] == "password_login_disabled"
    assert "signs in through SSO and has no password" in confirm.json()["message"]


async def test_a_returning_member_is_not_duplicated(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider, jit_clients=False)
    assert (await go_through_provider(client, world)).status_code == 303
    client.cookies.clear()
    assert (await go_through_provider(client, world)).status_code == 303
    async with world.runtime.sessions() as db:
        users = (await db.scalars(select(User).where(User.email == provider.email))).all()
        assert len(users) == 1
        member = await db.get(OrgMember, (world.org_id, users[0].id))
        assert member is not None
        assert not member.client


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (Tamper(forge=True), "signature does not verify"),
        (Tamper(forge=True, unknown_kid=True), "signature does not verify"),
        (Tamper(audience="someone-else"), "issued for another application"),
        (Tamper(expires_in=-600), "has expired"),
        (Tamper(nonce="not-the-nonce"), "nonce"),
        (Tamper(email_verified=False), "not verified"),
    ],
)
async def test_bad_tokens_are_refused_with_a_clear_message(
    client: httpx.AsyncClient,
    world: World,
    provider: Provider,
    tamper: Tamper,
    message: str,
) -> None:
    await configure(world, provider)
    provider.tamper = tamper
    with structlog.testing.capture_logs() as logs:
        refused = await go_through_provider(client, world)
    assert refused.status_code == 400
    assert message in refused.text
    assert "keyplane_session=" not in refused.headers.get("set-cookie", "")
    assert provider.client_secret not in refused.text
    assert provider.client_secret not in repr(logs)
    async with world.runtime.sessions() as db:
        assert await db.scalar(select(User).where(User.email == provider.email)) is None


async def test_wrong_state_and_replays_are_refused(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider)
    started = await client.get(f"/dashboard/sso/{world.org_id}/start")
    async with httpx.AsyncClient() as browser:
        back = (await browser.get(started.headers["location"])).headers["location"]
    # The callback in another browser (no state cookie): refused.
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://keyplane.test"
    ) as attacker:
        stolen = await attacker.get(back)
    assert stolen.status_code == 400
    assert "did not start in this browser" in stolen.text
    # A state that does not match this browser's cookie: refused.
    forged = back.replace("state=", "state=x")
    wrong = await client.get(forged)
    assert wrong.status_code == 400
    assert "state does not match" in wrong.text
    # The refused attempts consumed nothing: the real browser can still finish, once.
    done = await client.get(back)
    assert done.status_code == 303
    client.cookies.delete("keyplane_session")
    # Even with the state cookie put back, the state is spent.
    state = back.split("state=")[1].split("&")[0]
    client.cookies.set("keyplane_oidc_state", state, domain="keyplane.test")
    replay = await client.get(back)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert "keyplane_session=" not in replay.headers.get("set-cookie", "")
    provider_error = await client.get(
        "/dashboard/sso/callback?error=access_denied&error_description=User+cancelled"
    )
    assert provider_error.status_code == 400
    assert "access_denied" in provider_error.text


async def test_misconfigured_or_unreachable_providers_say_so(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    # Nothing listens there: the discovery document is unreachable.
    await configure(world, provider, issuer=f"http://127.0.0.1:{free_port()}")
    with structlog.testing.capture_logs() as logs:
        down = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert down.status_code == 400
    assert "could not be reached" in down.text
    assert any(entry["event"] == "sso.unreachable" for entry in logs)
    # The provider names another issuer than the one configured.
    provider.tamper = Tamper(issuer="https://evil.example")
    await configure(world, provider)
    wrong = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert wrong.status_code == 400
    assert "names the issuer" in wrong.text
    # A path that is no provider at all.
    await configure(world, provider, issuer=provider.issuer + "/nothing")
    missing = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert missing.status_code == 400
    assert "HTTP 404" in missing.text
    # No SSO at all for an organization.
    none = await client.get("/dashboard/sso/999999/start")
    assert none.status_code == 400
    assert "no SSO" in none.text


async def test_configuration_is_validated(world: World, provider: Provider) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"issuer": "ftp://idp.example"}, "https URL"),
        ({"issuer": "http://idp.example"}, "https URL"),
        ({"issuer": "http://127.0.0.1:9", "allow_http_loopback": False}, "https URL"),
        ({"issuer": "https://idp.example/?x=1"}, "no query"),
        ({"client_id": " "}, "client id"),
        ({"allowed_domains": []}, "at least one allowed email domain"),
        ({"allowed_domains": ["not a domain!"]}, "not an email domain"),
        ({"default_project_role": "p_nope"}, "Unknown project role"),
        ({"password_login": False, "enabled": False}, "only be switched off while SSO"),
        ({"client_secret": "tab\tin it"}, "printable"),
    ]
    for options, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            await configure(world, provider, **options)
    async with world.runtime.transaction() as db:
        with pytest.raises(ValidationFailed, match="client secret"):
            await sso.configure(
                db,
                world.runtime.keyring,
                world.org_id,
                issuer=provider.issuer,
                client_id="x",
                client_secret=None,
                allowed_domains=["acme.example"],
                allow_http_loopback=True,
            )


async def test_the_client_secret_is_stored_sealed_and_never_shown(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider)
    async with world.runtime.sessions() as db:
        row = await db.get(OrgSso, world.org_id)
        assert row is not None
        assert provider.client_secret.encode() not in row.secret_sealed
    await sign_in(client, world.email)
    page = await client.get(f"/dashboard/orgs/{world.org_id}/settings")
    assert page.status_code == 200
    assert provider.client_id in page.text
    assert provider.client_secret not in page.text
    assert "leave empty to keep it" in page.text
    # Saving the form without a secret keeps the stored one: sign-in still works.
    csrf = await session_csrf(client)
    saved = await client.post(
        f"/dashboard/orgs/{world.org_id}/settings/sso",
        data={
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": "",
            "allowed_domains": "acme.example, acme.co.uk",
            "default_project_role": "p_member",
            "enabled": "1",
            "jit_clients": "1",
            "password_login": "1",
            "csrf": csrf,
        },
    )
    assert saved.status_code == 303
    bad = await client.post(
        f"/dashboard/orgs/{world.org_id}/settings/sso",
        data={"issuer": "nope", "client_id": "x", "allowed_domains": "acme.example", "csrf": csrf},
    )
    assert bad.status_code == 422
    assert "https URL" in bad.text
    client.cookies.clear()
    assert (await go_through_provider(client, world)).status_code == 303


async def test_password_sign_in_can_be_switched_off(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, "dave@acme.example", PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
    await configure(world, provider, password_login=False)
    refused = await sign_in(client, "dave@acme.example")
    assert refused.status_code == 403
    assert "signs in with SSO only" in refused.text
    api = await client.post(
        "/v1/session", json={"email": "dave@acme.example", "password": PASSWORD}
    )
    assert api.status_code == 403
    assert api.json()["error"] == "password_login_disabled"
    # A wrong password still says only that (nothing about SSO).
    wrong = await sign_in(client, "dave@acme.example", "wrong password!")
    assert wrong.status_code == 401
    assert "SSO" not in wrong.text
    # The organization's own page offers no password form.
    page = await client.get(f"/dashboard/sso/{world.org_id}")
    assert 'id="password-off"' in page.text
    assert 'name="password"' not in page.text
    # Owners keep their password, so a broken provider cannot lock everyone out.
    assert (await sign_in(client, world.email)).status_code == 303


async def test_members_of_other_domains_are_refused(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider, allowed_domains=["globex.example"])
    refused = await go_through_provider(client, world)
    assert refused.status_code == 400
    assert "acme.example may not sign in" in refused.text
    login = await client.get("/dashboard/login")
    assert form_token(login.text)


async def test_an_undecryptable_stored_secret_is_a_clear_message(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider)
    async with world.runtime.transaction() as db:
        row = await db.get(OrgSso, world.org_id)
        assert row is not None
        row.secret_sealed = b"\x00" * 40  # e.g. sealed under a secret key this server lacks
    with structlog.testing.capture_logs() as logs:
        refused = await go_through_provider(client, world)
    assert refused.status_code == 400
    assert "enter it again in the SSO settings" in refused.text
    assert any(entry["event"] == "sso.secret_unreadable" for entry in logs)


async def test_sso_cannot_sign_in_members_of_other_organizations(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    """One organization's provider must not take over an account another organization
    trusts (the provider's admin could mint a token for any email of an allowed domain)."""
    async with world.runtime.transaction() as db:
        made = await accounts.bootstrap(
            db, email=provider.email, password=PASSWORD, org_name="Carol's own"
        )
    await configure(world, provider)
    refused = await go_through_provider(client, world)
    assert refused.status_code == 400
    assert "belongs to other organizations" in refused.text
    assert "keyplane_session=" not in refused.headers.get("set-cookie", "")
    async with world.runtime.sessions() as db:
        assert await db.get(OrgMember, (world.org_id, made.user_id)) is None


async def test_a_failing_provider_is_asked_again_after_a_pause_or_a_settings_change(
    client: httpx.AsyncClient, world: World, provider: Provider
) -> None:
    await configure(world, provider)
    provider.tamper = Tamper(issuer="https://evil.example")
    first = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert "names the issuer" in first.text
    provider.tamper = Tamper()  # fixed at the provider, but keyplane waits a little
    paused = await client.get(f"/dashboard/sso/{world.org_id}/start")
    assert paused.status_code == 400
    assert "names the issuer" in paused.text
    # An admin saving the SSO settings retries at once.
    await sign_in(client, world.email)
    csrf = await session_csrf(client)
    saved = await client.post(
        f"/dashboard/orgs/{world.org_id}/settings/sso",
        data={
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "allowed_domains": "acme.example",
            "enabled": "1",
            "password_login": "1",
            "csrf": csrf,
        },
    )
    assert saved.status_code == 303
    assert (await client.get(f"/dashboard/sso/{world.org_id}/start")).status_code == 303
