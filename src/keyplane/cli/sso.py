"""`keyplane orgs sso …`, `keyplane orgs brand` and `keyplane clients …` (issue 12): an
organization's OpenID Connect sign-in, its white-label basics, and reseller clients confined to
their assigned projects. The client secret is read from stdin or an environment variable,
never from the command line (where `ps` and shell history would keep it), and never printed."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.repositories import iso
from keyplane.cli.output import console, emit_json, fail, table
from keyplane.runtime import Runtime
from keyplane.services import accounts, branding, clients, sso
from keyplane.services.keys import Actor

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OrgArgument = Annotated[int, typer.Argument(help="The organization's id.")]
OrgOption = Annotated[int, typer.Option("--org", help="The organization's id.")]
UserOption = Annotated[str, typer.Option("--user", help="The client's email.")]
SECRET_ENV = "KEYPLANE_OIDC_CLIENT_SECRET"  # noqa: S105 - the variable's name

sso_app = typer.Typer(help="OpenID Connect sign-in of an organization.", no_args_is_help=True)
clients_app = typer.Typer(
    help="Reseller clients: members confined to the projects assigned to them.",
    no_args_is_help=True,
)


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    from keyplane.cli.app import run  # the app module registers these commands

    return run(work)


def _sso_json(config: sso.SsoConfig | None) -> dict[str, Any]:
    if config is None:
        return {"enabled": False, "configured": False}
    shown = asdict(config)
    shown["allowed_domains"] = list(config.allowed_domains)
    shown["configured"] = True
    return shown


def _print_sso(config: sso.SsoConfig | None, json_output: bool) -> None:
    if json_output:
        emit_json(_sso_json(config))
        return
    if config is None:
        console.print("No SSO configured; members sign in with their passwords.")
        return
    table(
        f"SSO of organization {config.org_id}",
        ["setting", "value"],
        [
            ["enabled", str(config.enabled)],
            ["issuer", config.issuer],
            ["client id", config.client_id],
            ["client secret", "stored (sealed)" if config.has_secret else "missing"],
            ["allowed domains", ", ".join(config.allowed_domains)],
            ["new members are clients", str(config.jit_clients)],
            ["default project role", config.default_project_role],
            ["password sign-in", str(config.password_login)],
        ],
    )


def _secret(from_stdin: bool) -> str | None:
    import os

    if from_stdin:
        line = sys.stdin.readline().strip()
        if not line:
            fail('No client secret on stdin; pipe it in, e.g. `printf %s "$SECRET" | …`.')
        return line
    return os.environ.get(SECRET_ENV) or None


@sso_app.command("set")
def sso_set(
    org_id: OrgArgument,
    issuer: Annotated[str, typer.Option(help="The provider's issuer URL (https).")],
    client_id: Annotated[str, typer.Option(help="The client id the provider gave keyplane.")],
    domain: Annotated[
        list[str], typer.Option("--domain", "-d", help="An allowed email domain (repeatable).")
    ],
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            help=f"Read the client secret from stdin (else from ${SECRET_ENV}; neither: keep "
            "the stored one)."
        ),
    ] = False,
    default_role: Annotated[
        str, typer.Option(help="Project role pre-selected when assigning clients.")
    ] = "p_member",
    password_login: Annotated[
        bool, typer.Option(help="Whether members may also sign in with a password.")
    ] = True,
    jit_clients: Annotated[
        bool, typer.Option(help="Whether people joining through SSO become clients.")
    ] = True,
    enabled: Annotated[bool, typer.Option(help="Whether SSO sign-in is on.")] = True,
    json_output: JsonFlag = False,
) -> None:
    """Configure (or change) the organization's OpenID Connect sign-in."""
    secret = _secret(client_secret_stdin)

    async def work(runtime: Runtime) -> sso.SsoConfig:
        async with runtime.transaction() as db:
            return await sso.configure(
                db,
                runtime.keyring,
                org_id,
                issuer=issuer,
                client_id=client_id,
                client_secret=secret,
                allowed_domains=domain,
                default_project_role=default_role,
                password_login=password_login,
                jit_clients=jit_clients,
                enabled=enabled,
                allow_http_loopback=runtime.settings.oidc_allow_http_loopback,
            )

    _print_sso(_run(work), json_output)


@sso_app.command("show")
def sso_show(org_id: OrgArgument, json_output: JsonFlag = False) -> None:
    """The organization's SSO settings (never the client secret)."""

    async def work(runtime: Runtime) -> sso.SsoConfig | None:
        async with runtime.sessions() as db:
            await _org(db, org_id)
            return await sso.get_config(db, org_id)

    _print_sso(_run(work), json_output)


@sso_app.command("remove")
def sso_remove(org_id: OrgArgument) -> None:
    """Remove the organization's SSO; members sign in with passwords again."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await sso.remove(db, org_id)

    _run(work)
    console.print(f"SSO removed from organization {org_id}.")


async def _org(db: AsyncSession, org_id: int) -> None:
    from keyplane.adapters.sql.models import Organization
    from keyplane.domain.errors import NotFound

    if await db.get(Organization, org_id) is None:
        raise NotFound(f"No organization with id {org_id}.")


def brand(
    org_id: OrgArgument,
    name: Annotated[str, typer.Option(help="Product name shown instead of keyplane.")] = "",
    logo: Annotated[str, typer.Option(help="Logo URL (https).")] = "",
    color: Annotated[str, typer.Option(help="Accent colour, #rrggbb.")] = "",
    base_url: Annotated[
        str, typer.Option(help="API base URL shown in key dialogs and examples (https).")
    ] = "",
    json_output: JsonFlag = False,
) -> None:
    """Set the organization's white-label basics (empty values: keyplane's defaults)."""

    async def work(runtime: Runtime) -> branding.Branding:
        async with runtime.transaction() as db:
            return await branding.configure(
                db, org_id, product_name=name, logo_url=logo, color=color, base_url=base_url
            )

    result = asdict(_run(work))
    if json_output:
        emit_json(result)
        return
    table(
        f"Branding of organization {org_id}",
        ["setting", "value"],
        [[k, str(v or "")] for k, v in result.items() if k != "org_id"],
    )


# --- clients ---------------------------------------------------------------------------------
async def _user_id(db: AsyncSession, email: str) -> int:
    return (await accounts.user_by_email(db, email)).id


@clients_app.command("list")
def clients_list(org: OrgOption, json_output: JsonFlag = False) -> None:
    """Every client with their assigned projects and keys (the reseller view)."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            await _org(db, org)
            listed = await clients.overview(db, None, org)
        return [
            {
                "user_id": c.user_id,
                "email": c.email,
                "projects": [{"id": p, "name": n, "roles": list(r)} for p, n, r in c.projects],
                "keys": [
                    {
                        "id": k.id,
                        "name": k.name,
                        "kind": k.kind,
                        "mode": k.mode,
                        "hint": "…" + k.hint,
                        "project_id": k.project_id,
                        "last_used_at": iso(k.last_used_at),
                    }
                    for k in c.keys
                ],
            }
            for c in listed
        ]

    rows = _run(work)
    if json_output:
        emit_json(rows)
        return
    table(
        f"Clients of organization {org}",
        ["email", "projects", "keys", "last used"],
        [
            [
                c["email"],
                ", ".join(f"{p['name']} (#{p['id']})" for p in c["projects"]) or "none",
                str(len(c["keys"])),
                max((k["last_used_at"] or "" for k in c["keys"]), default="") or "never",
            ]
            for c in rows
        ],
    )


@clients_app.command("add")
def clients_add(org: OrgOption, user: UserOption) -> None:
    """Make a member a client: they keep only the projects you assign them."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await clients.set_client(db, None, org, await _user_id(db, user), client=True)

    _run(work)
    console.print(f"{user} is a client of organization {org}; assign projects with `assign`.")


@clients_app.command("remove")
def clients_remove(org: OrgOption, user: UserOption) -> None:
    """Make a client a regular member again (their assignments go)."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await clients.set_client(db, None, org, await _user_id(db, user), client=False)

    _run(work)
    console.print(f"{user} is a regular member of organization {org} again.")


@clients_app.command("assign")
def clients_assign(
    org: OrgOption,
    user: UserOption,
    project: Annotated[int, typer.Option(help="The project (chatbot) id.")],
    role: Annotated[
        str,
        typer.Option(help="The client's project role there (default: the SSO default role)."),
    ] = "",
) -> None:
    """Assign a project to a client."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await clients.assign(db, None, org, await _user_id(db, user), project, role)

    _run(work)
    console.print(f"Project {project} assigned to {user}.")


@clients_app.command("unassign")
def clients_unassign(
    org: OrgOption,
    user: UserOption,
    project: Annotated[int, typer.Option(help="The project (chatbot) id.")],
) -> None:
    """Take a project away from a client; their keys lose it at once."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await clients.unassign(db, None, org, await _user_id(db, user), project)

    _run(work)
    console.print(f"Project {project} unassigned from {user}.")


@clients_app.command("revoke-keys")
def clients_revoke_keys(org: OrgOption, user: UserOption) -> None:
    """Revoke every key the client holds in the organization."""

    async def work(runtime: Runtime) -> int:
        async with runtime.transaction() as db:
            return await clients.revoke_everything(
                db, runtime.keys, Actor.operator(), org, await _user_id(db, user)
            )

    count = _run(work)
    console.print(f"Revoked {count} key{'s' if count != 1 else ''} of {user}.")
