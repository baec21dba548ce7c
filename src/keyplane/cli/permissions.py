"""`keyplane permissions …`: the built-in catalog and a project's own permissions (issue 10)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from keyplane.cli.output import console, emit_json, table
from keyplane.domain.permissions import catalog
from keyplane.runtime import Runtime
from keyplane.services import custom_permissions as cp
from keyplane.services.keys import Actor

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[int, typer.Option("--project", help="Project id.")]

permissions_app = typer.Typer(
    help="The built-in permission catalog and your own API's permissions per project.",
    no_args_is_help=True,
)


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    from keyplane.cli.app import run  # the app module registers these commands

    return run(work)


@permissions_app.command("list")
def permissions_list(
    project: Annotated[
        int | None,
        typer.Option("--project", help="Also list this project's own permissions."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The built-in catalog, and with --project that project's own permissions."""
    builtin = [
        {
            "name": p["name"],
            "implies": p["implies"],
            "description": p["description"],
            "custom": False,
        }
        for p in catalog()
        if p["level"] == "project"
    ]

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        if project is None:
            return []
        async with runtime.sessions() as db:
            rows = await cp.list_permissions(db, runtime.keys, Actor.operator(), project)
        return [cp.describe(r) | {"custom": True} for r in rows]

    custom = _run(work)
    items = builtin + custom
    if json_output:
        emit_json(items)
        return
    table(
        "Permissions" if project is None else f"Permissions of project {project}",
        ["name", "implies", "custom", "description"],
        [
            [p["name"], ", ".join(p["implies"]), "yes" if p["custom"] else "", p["description"]]
            for p in items
        ],
    )


@permissions_app.command("add")
def permissions_add(
    name: Annotated[str, typer.Argument(help="resource:action, e.g. invoices:read")],
    project: ProjectOption,
    description: Annotated[str, typer.Option(help="What it allows.")] = "",
    implies: Annotated[
        list[str] | None,
        typer.Option(
            "--implies",
            "-i",
            help="A registered permission this one includes (repeatable). Default: "
            "<resource>:read when registered.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Register a permission of your own API for a project's keys."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        async with runtime.transaction() as db:
            row = await cp.register(
                db, runtime.keys, Actor.operator(), project, name, description, implies
            )
            return cp.describe(row)

    created = _run(work)
    if json_output:
        emit_json(created)
        return
    implied = f" (implies {', '.join(created['implies'])})" if created["implies"] else ""
    console.print(f"Registered {created['name']} in project {project}{implied}.", highlight=False)


@permissions_app.command("remove")
def permissions_remove(
    name: Annotated[str, typer.Argument(help="The custom permission's name.")],
    project: ProjectOption,
) -> None:
    """Delete a custom permission; every key of the project loses it at once."""

    async def work(runtime: Runtime) -> None:
        async with runtime.transaction() as db:
            await cp.delete(db, runtime.keys, Actor.operator(), project, name)

    _run(work)
    console.print(f"Removed {name} from project {project} and from its keys.", highlight=False)
