"""`keyplane orgs sso …`, `keyplane orgs brand` and `keyplane clients …` (issue 12)."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from keyplane.cli.app import app
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.settings import Settings
from tests.cli.conftest import Cli, flat, probe
from tests.conftest import PASSWORD


def _member(org_id: int, email: str) -> None:
    async def work() -> None:
        runtime = await Runtime.start(Settings(), migrate=False, background=False)
        try:
            async with runtime.transaction() as db:
                user = await accounts.create_user(db, email, PASSWORD)
                await accounts.set_org_role(db, org_id, user.id, "o_member")
        finally:
            await runtime.close()

    asyncio.run(work())


def test_sso_set_show_and_remove(cli: Cli) -> None:
    org = cli.bootstrap()["org_id"]
    secret = "s3cr3t-from-the-provider"
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "orgs", "sso", "set", str(org),
            "--issuer", "https://login.acme.example/realms/acme/",
            "--client-id", "keyplane",
            "-d", "acme.example", "-d", "ACME.co.uk",
            "--client-secret-stdin", "--no-password-login", "--json",
        ],
        input=secret + "\n",
    )  # fmt: skip
    assert done.exit_code == 0, done.stdout + done.stderr
    assert secret not in done.stdout
    shown = cli.json(f"orgs sso show {org}")
    assert shown["issuer"] == "https://login.acme.example/realms/acme"
    assert shown["allowed_domains"] == ["acme.example", "acme.co.uk"]
    assert shown["password_login"] is False
    assert shown["has_secret"] is True
    assert secret not in str(shown)
    table = cli.run(f"orgs sso show {org}").stdout
    assert "stored (sealed)" in table
    assert secret not in table
    # Bad input is a one-line error, exit 1.
    bad = cli.run(
        f"orgs sso set {org} --issuer http://idp.example --client-id x -d acme.example", code=1
    )
    assert "https URL" in flat(bad.stderr)
    no_domain = cli.run(
        f"orgs sso set {org} --issuer https://idp.example --client-id x -d x", code=1
    )
    assert "not an email domain" in flat(no_domain.stderr)
    missing = cli.run("orgs sso show 999", code=1)
    assert "No organization with id 999" in missing.stderr
    cli.run(f"orgs sso remove {org}")
    assert cli.json(f"orgs sso show {org}") == {"enabled": False, "configured": False}


def test_brand(cli: Cli) -> None:
    org = cli.bootstrap()["org_id"]
    shown = cli.json(
        f"orgs brand {org} --name 'Acme AI' --color '#AA3300' --base-url https://api.acme.example"
    )
    assert shown["product_name"] == "Acme AI"
    assert shown["color"] == "#aa3300"
    assert shown["base_url"] == "https://api.acme.example"
    bad = cli.run(f"orgs brand {org} --color blue", code=1)
    assert "hex colour" in flat(bad.stderr)


def test_clients_assign_confine_and_revoke(cli: Cli) -> None:
    made = cli.bootstrap()
    org, first = made["org_id"], made["project_id"]
    second = cli.json(f"projects create --org {org} --name 'Globex bot'")["id"]
    _member(org, "alice@acme.example")
    cli.run(f"clients add --org {org} --user alice@acme.example")
    cli.run(
        f"clients assign --org {org} --user alice@acme.example --project {first} --role p_owner"
    )
    key = cli.json("keys create --user alice@acme.example --name 'alice' -p project:read")
    assert probe(key["secret"], first).status_code == 200
    assert probe(key["secret"], second).status_code == 403
    listed = cli.json(f"clients list --org {org}")
    assert listed[0]["email"] == "alice@acme.example"
    assert [p["id"] for p in listed[0]["projects"]] == [first]
    assert [k["name"] for k in listed[0]["keys"]] == ["alice"]
    assert "alice@acme.example" in cli.run(f"clients list --org {org}").stdout
    cli.run(f"clients unassign --org {org} --user alice@acme.example --project {first}")
    assert probe(key["secret"], first).status_code == 403
    revoked = cli.run(f"clients revoke-keys --org {org} --user alice@acme.example")
    assert "Revoked 1 key" in revoked.stdout
    assert probe(key["secret"], first).json()["error"] == "api_key_revoked"
    not_client = cli.run(f"clients assign --org {org} --user owner@example.com --project 1", code=1)
    assert "Only clients" in flat(not_client.stderr)
    cli.run(f"clients remove --org {org} --user alice@acme.example")
    assert cli.json(f"clients list --org {org}") == []
