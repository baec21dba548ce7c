"""`keyplane` commands (DESIGN §8). They act on the database named by KEYPLANE_DATABASE_URL as
the operator; a running server sees their changes within a second through the change feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import make_url, select

from keyplane.adapters.sql.models import ApiKey, Organization, Project
from keyplane.adapters.sql.repositories import aware, iso, org_limits, utcnow
from keyplane.cli import permissions, security
from keyplane.cli import sso as sso_cli
from keyplane.cli.durations import parse_duration, parse_rate
from keyplane.cli.output import console, emit_json, fail, table
from keyplane.cli.scan import scan as scan_files
from keyplane.domain.errors import KeyplaneError
from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import KeyLabel
from keyplane.observability import configure_logging
from keyplane.runtime import Runtime
from keyplane.services import accounts, pii_inventory
from keyplane.services import audit as audit_service
from keyplane.services import housekeeping as housekeeping_service
from keyplane.services import usage as usage_service
from keyplane.services.keys import Actor, KeySpec, describe, reencrypt
from keyplane.services.schedule import claim_turn
from keyplane.settings import LogFormat, Settings

app = typer.Typer(
    help="keyplane: API keys for multi-project AI-agent platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
projects_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list, rotate and revoke API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="Plans and rate-limit settings of organizations.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_settings() -> Settings:
    """The KEYPLANE_* configuration, or a one-line message naming what is wrong with it."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"KEYPLANE_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        fail(f"invalid configuration: {problems}")


def run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one command against a freshly started runtime (migrating first); domain errors
    become a one-line message on stderr and exit code 1."""

    settings = load_settings()
    # Logs go to stderr (structlog's default is stdout): stdout is the command's output,
    # which scripts parse (--json).
    configure_logging(json_format=settings.log_format == LogFormat.JSON)

    async def main() -> T:
        runtime = await Runtime.start(settings, background=False)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except KeyplaneError as error:
        fail(error.message)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Migrate the database, then serve the API (and dashboard)."""
    import uvicorn

    settings = load_settings()

    async def migrate(runtime: Runtime) -> None:
        return None

    run(migrate)  # migrate once here, so that workers never race to do it
    console.print(
        f"keyplane listening on [bold]http://{host}:{port}[/] "
        f"(database: {make_url(settings.database_url).render_as_string(hide_password=True)}).\n"
        "First time? Create an owner, an organization and a project with:\n"
        "  keyplane bootstrap --email you@example.com --password '…'\n"
        "then a key with: keyplane keys create --project 1 --name 'My key' -p project:read",
        highlight=False,
    )
    uvicorn.run(
        "keyplane.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,  # keyplane logs each request itself, structured, with ids
        server_header=False,
        # A worker importing the app on a busy machine can need more than uvicorn's default
        # 5 s to answer its supervisor's first ping; uvicorn would kill and respawn it in a loop.
        timeout_worker_healthcheck=30,
        # Keep idle connections longer than a load balancer's idle timeout (often 60 s): when
        # the server closes first, a request racing the close fails with a 502 at the balancer.
        timeout_keep_alive=75,
    )


@app.command()
def bootstrap(
    email: Annotated[str, typer.Option(help="The owner's email (dashboard login).")],
    password: Annotated[str, typer.Option(help="The owner's password (8+ characters).")],
    org: Annotated[str, typer.Option(help="Organization name.")] = "My organization",
    project: Annotated[str, typer.Option(help="First project's name.")] = "My project",
    plan: Annotated[str, typer.Option(help="standard, professional or enterprise.")] = "standard",
    json_output: JsonFlag = False,
) -> None:
    """Create the first owner with an organization and a project."""

    async def work(runtime: Runtime) -> accounts.Bootstrap:
        async with runtime.transaction() as db:
            return await accounts.bootstrap(
                db, email=email, password=password, org_name=org, project_name=project, plan=plan
            )

    made = run(work)
    result = {"org_id": made.org_id, "user_id": made.user_id, "project_id": made.project_id}
    if json_output:
        emit_json(result)
    else:
        console.print(
            f"Created organization {made.org_id}, owner {email} (user {made.user_id}) and "
            f"project {made.project_id}.\nNext: keyplane keys create --project {made.project_id} "
            "--name 'My key' -p project:read -p conversation:read",
            highlight=False,
        )


def _org_json(org: Organization) -> dict[str, Any]:
    limits = org_limits(org)
    return {
        "id": org.id,
        "name": org.name,
        "plan": org.plan,
        "rate_limit": {"per_minute": limits.per_minute, "per_day": limits.per_day},
        "rate_limit_scope": org.rate_limit_scope,
    }


@orgs_app.command("set-plan")
def orgs_set_plan(
    org_id: Annotated[int, typer.Argument(help="Organization id.")],
    plan: Annotated[str, typer.Option(help="standard, professional or enterprise.")],
    per_minute: Annotated[
        int | None, typer.Option(help="Enterprise only: custom requests per minute.")
    ] = None,
    per_day: Annotated[int | None, typer.Option(help="Enterprise only: custom per day.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Change an organization's plan (and an enterprise's custom limits)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            return _org_json(await accounts.set_plan(db, org_id, plan, per_minute, per_day))

    data = run(work)
    if json_output:
        emit_json(data)
    else:
        limits = data["rate_limit"]
        console.print(
            f"Organization {org_id} is on the {data['plan']} plan: {limits['per_minute']}/min, "
            f"{limits['per_day']}/day.",
            highlight=False,
        )


@orgs_app.command("set-limit-scope")
def orgs_set_limit_scope(
    org_id: Annotated[int, typer.Argument(help="Organization id.")],
    scope: Annotated[str, typer.Argument(help="key (default), project or org.")],
    json_output: JsonFlag = False,
) -> None:
    """Choose who shares a rate-limit budget: each key, each project, or the organization."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            return _org_json(await accounts.set_limit_scope(db, org_id, scope))

    data = run(work)
    if json_output:
        emit_json(data)
    else:
        console.print(f"Organization {org_id} now limits per {scope}.")


@projects_app.command("create")
def projects_create(
    org: Annotated[int, typer.Option("--org", help="Organization id.")],
    name: Annotated[str, typer.Option(help="Project name.")],
    json_output: JsonFlag = False,
) -> None:
    async def work(runtime: Runtime) -> Project:
        async with runtime.transaction() as db:
            return await accounts.create_project(db, org, name)

    project = run(work)
    data = {"id": project.id, "org_id": project.org_id, "name": project.name}
    emit_json(data) if json_output else console.print(f"Created project {project.id}.")


@projects_app.command("list")
def projects_list(json_output: JsonFlag = False) -> None:
    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            rows = (await db.scalars(select(Project).order_by(Project.id))).all()
        return [
            {"id": p.id, "org_id": p.org_id, "name": p.name, "created_at": iso(p.created_at)}
            for p in rows
        ]

    data = run(work)
    if json_output:
        emit_json(data)
    else:
        table(
            "Projects",
            ["id", "org", "name", "created"],
            [[p["id"], p["org_id"], p["name"], p["created_at"]] for p in data],
        )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'Production CRM Sync'.")],
    permission: Annotated[
        list[str], typer.Option("--permission", "-p", help="A permission; repeat for more.")
    ],
    project: Annotated[int | None, typer.Option(help="Project id (a project key).")] = None,
    user: Annotated[str | None, typer.Option(help="Owner email (a user key).")] = None,
    test: Annotated[bool, typer.Option("--test", help="An sk_test_ key (test data).")] = False,
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d; default never.")] = None,
    ip: Annotated[list[str] | None, typer.Option(help="Allowed CIDR; repeat for more.")] = None,
    rate_limit: Annotated[str | None, typer.Option(help="Per-key override, e.g. 50/min.")] = None,
    label: Annotated[
        KeyLabel | None,
        typer.Option(help="production (rotate every 90 days), development (180), contractor (30)"),
    ] = None,
    browser: Annotated[
        bool,
        typer.Option("--browser", help="With --test: may be used from web pages (Origin header)."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Create a project key (--project) or a user key (--user). The secret is printed once."""
    if (project is None) == (user is None):
        raise typer.BadParameter("give exactly one of --project ID or --user EMAIL")
    spec = KeySpec(
        name=name,
        permissions=permission,
        mode=Mode.TEST if test else Mode.LIVE,
        expires_at=utcnow() + timedelta(seconds=parse_duration(expires_in)) if expires_in else None,
        ip_allowlist=list(ip or []),
        rate_limit=parse_rate(rate_limit) if rate_limit else None,
        label=label,
        allow_browser=browser,
    )

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            if project is not None:
                issued = await runtime.keys.create_project_key(db, Actor.operator(), project, spec)
            else:
                assert user is not None
                owner = await accounts.user_by_email(db, user)
                issued = await runtime.keys.create_user_key(db, Actor.operator(), owner.id, spec)
        return describe(issued.row) | {"secret": issued.secret}

    key = run(work)
    if json_output:
        emit_json(key)
        return
    console.print(
        f"Created {key['kind']} key {key['id']} ({key['name']}) with "
        f"{', '.join(key['permissions'])}.\n\n  {key['secret']}\n\n"
        "Copy it now: it will not be shown again.",
        highlight=False,
    )


@keys_app.command("list")
def keys_list(
    project: Annotated[int | None, typer.Option(help="Project id.")] = None,
    user: Annotated[str | None, typer.Option(help="Owner email, for user keys.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Active keys of a project (or a user), masked."""
    if (project is None) == (user is None):
        raise typer.BadParameter("give exactly one of --project ID or --user EMAIL")

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            if project is not None:
                rows = await runtime.keys.list_project_keys(db, Actor.operator(), project)
            else:
                assert user is not None
                owner = await accounts.user_by_email(db, user)
                rows = await runtime.keys.list_user_keys(db, owner.id)
        return [describe(r) for r in rows]

    keys = run(work)
    if json_output:
        emit_json(keys)
        return
    table(
        "API keys",
        ["id", "name", "mode", "secret", "permissions", "created", "last used", "expires"],
        [
            [
                k["id"],
                k["name"],
                k["mode"],
                "••••" + k["hint"].lstrip("…"),
                " ".join(k["permissions"]),
                k["created_at"],
                k["last_used_at"] or "never",
                k["expires_at"] or "never",
            ]
            for k in keys
        ],
    )


async def _key(runtime: Runtime, key_id: str) -> ApiKey:
    async with runtime.sessions() as db:
        row = await db.get(ApiKey, key_id)
    revoked = aware(row.revoked_at) if row else None
    if row is None or (revoked is not None and revoked <= utcnow()):
        fail(f"No active key {key_id!r}.")
    return row


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")]) -> None:
    """Revoke a key at once; running servers enforce it within a second."""

    async def work(runtime: Runtime) -> None:
        row = await _key(runtime, key_id)
        async with runtime.transaction() as db:
            await runtime.keys.revoke(db, Actor.operator(), await db.merge(row))

    run(work)
    console.print(f"Revoked {key_id}.")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    grace: Annotated[str, typer.Option(help="How long the old secret keeps working.")] = "24h",
    json_output: JsonFlag = False,
) -> None:
    """Issue a new secret with the same settings; the old one works until the grace ends."""
    grace_seconds = parse_duration(grace)

    async def work(runtime: Runtime) -> dict[str, Any]:
        row = await _key(runtime, key_id)
        async with runtime.transaction() as db:
            issued = await runtime.keys.rotate(
                db, Actor.operator(), await db.merge(row), grace_seconds
            )
        return describe(issued.row) | {"secret": issued.secret}

    key = run(work)
    if json_output:
        emit_json(key)
        return
    console.print(
        f"Rotated {key_id} into {key['id']}.\n\n  {key['secret']}\n\nCopy it now: it will not be "
        f"shown again. The old secret keeps working for {grace}.",
        highlight=False,
    )


@keys_app.command("usage")
def keys_usage(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    days: Annotated[int, typer.Option(min=1, max=366, help="How far back.")] = 7,
    group_by: Annotated[str, typer.Option(help="hour or day.")] = "day",
    json_output: JsonFlag = False,
) -> None:
    """Requests of a key by period and status, and the permissions it used."""
    if group_by not in ("hour", "day"):
        raise typer.BadParameter("--group-by takes hour or day")

    async def work(runtime: Runtime) -> dict[str, Any]:
        await _key(runtime, key_id)
        async with runtime.sessions() as db:
            end = utcnow()
            return await usage_service.report(db, key_id, end - timedelta(days=days), end, group_by)

    data = run(work)
    if json_output:
        emit_json(data)
        return
    table(
        f"Usage of {key_id}",
        ["period", "success", "4xx", "429", "5xx", "total"],
        [
            [
                p["period"],
                p["success"],
                p["client_error"],
                p["rate_limited"],
                p["server_error"],
                p["total"],
            ]
            for p in data["data"]
        ],
    )
    used = ", ".join(f"{name} ({count})" for name, count in data["permissions"].items())
    console.print(f"Permissions used: {used or 'none'}", highlight=False)


@keys_app.command("reencrypt")
def keys_reencrypt() -> None:
    """Move stored keys to the newest KEYPLANE_SECRET_KEY version (after adding one)."""

    async def work(runtime: Runtime) -> int:
        async with runtime.transaction() as db:
            return await reencrypt(db, runtime.keyring)

    moved = run(work)
    console.print(f"Re-encrypted {moved} key(s); older secret versions are no longer needed.")


@app.command()
def audit(
    project: Annotated[int, typer.Option(help="Project id.")],
    pii: Annotated[
        bool,
        typer.Option(
            "--pii",
            help="The compliance inventory instead: every key and webhook that can reach "
            "end users' personal data, with owner, purpose and last use.",
        ),
    ] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV (with --pii).")] = False,
    json_output: JsonFlag = False,
) -> None:
    """The quarterly key audit: unused keys, overdue rotation, over-privileged keys; with
    --pii, the inventory of access to personal data (GDPR records, SOC 2 key inventory)."""
    if pii:
        _pii_inventory(project, csv_output=csv_output, json_output=json_output)
        return

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            await accounts.get_project(db, project)
            return await audit_service.key_report(db, project)

    report = run(work)
    if json_output:
        emit_json(report)
        return
    table(
        f"Key audit of project {project}",
        ["id", "name", "created", "last used", "findings"],
        [
            [
                k["id"],
                k["name"],
                k["created_at"],
                k["last_used_at"] or "never",
                "; ".join(k["findings"]) or "ok",
            ]
            for k in report
        ],
    )


def _pii_inventory(project: int, *, csv_output: bool, json_output: bool) -> None:
    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            await accounts.get_project(db, project)
            return await pii_inventory.inventory(db, project)

    items = run(work)
    if json_output:
        emit_json(items)
        return
    if csv_output:
        typer.echo(pii_inventory.to_csv(items), nl=False)
        return
    table(
        f"Access to personal data in project {project}",
        ["type", "name", "mode", "owner", "personal data", "last used"],
        [
            [
                i["type"],
                i["name"],
                i["mode"],
                i["owner"] or "-",
                ", ".join(i["personal_data"]),
                i["last_used_at"] or "never",
            ]
            for i in items
        ],
    )


@app.command("audit-log")
def audit_log(
    project: Annotated[int, typer.Option(help="Project id.")],
    limit: Annotated[int, typer.Option(min=1, help="Most recent events to print.")] = 1000,
) -> None:
    """Export the project's audit events as JSON lines, newest first."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            await accounts.get_project(db, project)
            items, _ = await audit_service.events(db, project, limit=limit)
            return items

    for event in run(work):
        typer.echo(json.dumps(event, default=str))


@app.command()
def housekeeping(json_output: JsonFlag = False) -> None:
    """Delete now what is past its retention (KEYPLANE_*_RETENTION_DAYS) and what expired.
    Servers do this themselves every KEYPLANE_HOUSEKEEPING_INTERVAL_SECONDS."""

    async def work(runtime: Runtime) -> dict[str, int]:
        deleted = await housekeeping_service.sweep(runtime.sessions, runtime.retention)
        async with runtime.transaction() as db:  # servers then wait a whole interval
            await claim_turn(db, housekeeping_service.JOB, timedelta(0), utcnow())
        return deleted

    deleted = run(work)
    if json_output:
        emit_json(deleted)
    else:
        table(
            "Deleted",
            ["what", "rows"],
            [(name.replace("_", " "), n) for name, n in deleted.items()],
        )


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories.", exists=True)],
) -> None:
    """Find keyplane keys in files; exit 1 when any is found (use as a pre-commit hook)."""
    found = list(scan_files(paths))
    for file, line, masked in found:
        # Plain output, never wrapped: hooks and CI parse one finding per line.
        typer.echo(f"{file}:{line}: keyplane key {masked}")
    if found:
        console.print(
            f"{len(found)} key(s) found: remove them, and revoke any that was committed.",
            style="bold red",
        )
        raise typer.Exit(1)


app.add_typer(security.alerts_app, name="alerts")
app.add_typer(security.webhooks_app, name="webhooks")
app.add_typer(permissions.permissions_app, name="permissions")
orgs_app.command("set-leak-policy")(security.set_leak_policy)
orgs_app.add_typer(sso_cli.sso_app, name="sso")
orgs_app.command("brand")(sso_cli.brand)
app.add_typer(sso_cli.clients_app, name="clients")


def main() -> None:
    app()
