"""SSO sign-in in a real browser (issue 12): a reseller's branded sign-in page, the round trip
through a real OpenID Connect provider on loopback, and a client who then sees only the
chatbot assigned to them."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import KEYPLANE, Server
from tests.e2e.test_dashboard_browser import screenshots, sign_in
from tests.oidc_provider import Provider, RunningProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with RunningProvider(Provider(email="carol@acme.example")) as running:
        yield running


def _org_of(server: Server) -> int:
    projects = json.loads(server.cli("projects", "list", "--json"))
    return int(next(p["org_id"] for p in projects if p["id"] == server.project_id))


def test_client_signs_in_with_sso_and_sees_only_their_chatbot(
    page: Page, server: Server, provider: Provider
) -> None:
    org = _org_of(server)
    other = json.loads(
        server.cli("projects", "create", "--org", str(org), "--name", "Globex bot", "--json")
    )["id"]
    subprocess.run(
        [
            str(KEYPLANE), "orgs", "sso", "set", str(org),
            "--issuer", provider.issuer, "--client-id", provider.client_id,
            "-d", "acme.example", "--client-secret-stdin",
        ],
        input=provider.client_secret + "\n",
        env=server.env | {"KEYPLANE_OIDC_ALLOW_HTTP_LOOPBACK": "true"},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    server.cli("orgs", "brand", str(org), "--name", "Acme AI", "--color", "#aa3300")

    page.goto(f"/dashboard/sso/{org}")
    expect(page.get_by_role("heading", name="Sign in to Acme AI")).to_be_visible()
    expect(page.locator("#product-name")).to_have_text("Acme AI")
    screenshots(page, "sso-login")
    page.get_by_role("link", name="Sign in with SSO").click()
    # Through the provider and back: signed in, as a client with nothing assigned yet.
    expect(page).to_have_url(f"{server.url}/dashboard/account/api-keys")
    expect(page.locator(".who")).to_have_text("carol@acme.example")
    expect(page.locator("#project-switcher option")).to_have_count(0)

    server.cli(
        "clients", "assign", "--org", str(org), "--user", "carol@acme.example",
        "--project", str(server.project_id), "--role", "p_owner",
    )  # fmt: skip
    page.reload()
    options = page.locator("#project-switcher option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_text("Support Bot")
    expect(page.locator("body")).not_to_contain_text("Globex bot")
    page.goto(f"/dashboard/projects/{other}/settings/api-keys")
    expect(page.locator("main")).to_contain_text("No project with id")
    expect(page.locator("body")).not_to_contain_text("Globex")
    page.goto(f"/dashboard/projects/{server.project_id}/settings/api-keys")
    expect(page.get_by_role("button", name="Create API Key")).to_be_visible()
    screenshots(page, "sso-client-keys")

    # She creates a key for her chatbot; the reseller sees it and revokes all she holds.
    page.get_by_role("button", name="Create API Key").click()
    dialog = page.get_by_role("dialog", name="Create API Key")
    page.get_by_label("Name").fill("Carol's widget")
    dialog.get_by_role("checkbox", name=re.compile("^project:read")).check()
    page.get_by_role("button", name="Create Key").click()
    shown = page.get_by_role("dialog", name="Your new API key")
    expect(shown).to_be_visible()
    expect(page.locator("#api-base-url")).to_have_text(server.url)
    expect(page.locator("#key-example")).to_contain_text(
        f"curl {server.url}/v1/projects/{server.project_id}"
    )
    shown.get_by_role("button", name="I have stored it, close").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server.email)
    page.get_by_role("link", name=re.compile("Clients$")).click()
    card = page.locator("section.client", has_text="carol@acme.example")
    expect(card).to_contain_text("Support Bot")
    expect(card).to_contain_text("Carol's widget")
    screenshots(page, "sso-clients")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Revoke every key of carol@acme.example").click()
    expect(page.get_by_role("status")).to_contain_text("Every key this client held is revoked")
    expect(page.locator("section.client", has_text="carol@acme.example")).to_contain_text(
        "No active keys"
    )
