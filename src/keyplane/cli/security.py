"""`keyplane alerts …`, `keyplane webhooks …` and `keyplane orgs set-leak-policy` (issue 7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from keyplane.cli.output import console, emit_json, table
from keyplane.domain.keyformat import Mode
from keyplane.runtime import Runtime
from keyplane.services import accounts, alerts, leaks, webhooks
from keyplane.services.keys import Actor

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[int, typer.Option("--project", help="Project id.")]

alerts_app = typer.Typer(help="Security alerts of a project.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Signed webhooks for alerts and reminders.", no_args_is_help=True)


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    from keyplane.cli.app import run  # the app module registers these commands

    return run(work)


@alerts_app.command("list")
def alerts_list(
    project: Annotated[
        int | None, typer.Option("--project", help="Project id; omit for every alert.")
    ] = None,
    unacknowledged: Annotated[bool, typer.Option(help="Only alerts not yet handled.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    json_output: JsonFlag = False,
) -> None:
    """The project's alerts, newest first; without --project every alert, including
    failed-authentication bursts that name no key."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            if project is not None:
                await accounts.get_project(db, project)
            items, _ = await alerts.list_alerts(
                db, project, limit=limit, unacknowledged=unacknowledged
            )
            return items

    items = _run(work)
    if json_output:
        emit_json(items)
        return
    table(
        f"Alerts of project {project}" if project is not None else "Alerts",
        ["id", "created", "severity", "kind", "key", "message", "acknowledged"],
        [
            [
                a["id"],
                a["created_at"],
                a["severity"],
                a["kind"],
                a["key_id"],
                a["message"],
                a["acknowledged_at"] or "no",
            ]
            for a in items
        ],
    )


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    project: ProjectOption,
    json_output: JsonFlag = False,
) -> None:
    """Mark an alert as handled."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            return await alerts.acknowledge(db, project, alert_id, None)

    data = _run(work)
    if json_output:
        emit_json(data)
    else:
        console.print(f"Alert {alert_id} acknowledged at {data['acknowledged_at']}.")


@webhooks_app.command("add")
def webhooks_add(
    project: ProjectOption,
    url: Annotated[str, typer.Option(help="http(s) URL receiving signed JSON POSTs.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="An event to send (repeatable; default: all)."),
    ] = None,
    test: Annotated[
        bool, typer.Option("--test", help="Receive test-mode events instead of live ones.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Subscribe a URL; prints its signing secret once."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            row, secret = await webhooks.create(
                db,
                runtime.keyring,
                project,
                url,
                event,
                Actor.operator(),
                mode=Mode.TEST if test else Mode.LIVE,
                destinations=runtime.webhooks.destinations,
            )
            return webhooks.describe(row) | {"secret": secret}

    created = _run(work)
    if json_output:
        emit_json(created)
        return
    console.print(
        f"Webhook {created['id']} → {created['url']} ({', '.join(created['events'])}).\n"
        f"Signing secret (shown once): {created['secret']}",
        highlight=False,
        soft_wrap=True,
    )


@webhooks_app.command("list")
def webhooks_list(project: ProjectOption, json_output: JsonFlag = False) -> None:
    """The project's webhooks (never their secrets)."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.sessions() as db:
            await accounts.get_project(db, project)
            return [webhooks.describe(r) for r in await webhooks.list_endpoints(db, project)]

    items = _run(work)
    if json_output:
        emit_json(items)
        return
    table(
        f"Webhooks of project {project}",
        ["id", "url", "events", "created"],
        [[w["id"], w["url"], ", ".join(w["events"]), w["created_at"]] for w in items],
    )


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[int, typer.Argument(help="The webhook's id.")],
    project: ProjectOption,
) -> None:
    """Delete a webhook; its pending deliveries are dropped."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await webhooks.remove(db, project, webhook_id, Actor.operator())

    _run(work)
    console.print(f"Webhook {webhook_id} removed.")


def set_leak_policy(
    org_id: Annotated[int, typer.Argument(help="Organization id.")],
    policy: Annotated[str, typer.Argument(help="revoke (default) or flag.")],
    json_output: JsonFlag = False,
) -> None:
    """What a leak report does to the organization's keys: revoke them, or only flag them."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            org = await leaks.set_leak_policy(db, org_id, policy)
            return {"id": org.id, "leak_policy": org.leak_policy}

    data = _run(work)
    if json_output:
        emit_json(data)
    else:
        outcome = {"revoke": "revoked", "flag": "flagged (an alert only)"}[policy]
        console.print(f"Organization {org_id}: reported leaked keys are now {outcome}.")
