"""Batch upserts (issue 11): many end users, snippets or table rows in one request, one
transaction and one rate-limit count. A failing item fails the whole batch (nothing is
written) with an error naming the item's index and field; on success each item gets a result
in request order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Snippet
from keyplane.domain.errors import KeyplaneError, NotFound, ValidationFailed
from keyplane.domain.keyformat import Mode
from keyplane.services import end_users, snippets, tables

MAX_ITEMS = 1000
Item = TypeVar("Item")


def _at(index: int, error: KeyplaneError) -> ValidationFailed:
    """The error of item `index`, naming it and the field at fault; nothing was written."""
    details = error.extra.get("details") or [{"loc": [], "msg": error.message}]
    located = []
    field = None
    for detail in details:
        loc = [p for p in detail.get("loc", []) if p != "body"]
        field = field or (".".join(str(p) for p in loc) or None)
        located.append(
            detail
            | {
                "loc": ["body", "items", index, *loc],
                "index": index,
                "field": ".".join(str(p) for p in loc) or None,
            }
        )
    where = f"item {index}" + (f", field {field}" if field else "")
    return ValidationFailed(
        f"Batch refused, nothing was written: {where}: {error.message}", details=located
    )


async def _each(
    items: Sequence[Item], apply: Callable[[int, Item], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    results = []
    for index, item in enumerate(items):
        try:
            results.append({"index": index} | await apply(index, item))
        except (ValidationFailed, NotFound) as error:
            raise _at(index, error) from None
    return results


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": results,
        "created": sum(1 for r in results if r["status"] == "created"),
        "updated": sum(1 for r in results if r["status"] == "updated"),
    }


async def upsert_users(
    db: AsyncSession, project_id: int, mode: Mode, items: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Each item is {external_id, ...profile fields}: created or updated as PATCH /users/{id}
    would (fields left out are kept, external_attributes merged)."""

    async def apply(_index: int, item: dict[str, Any]) -> dict[str, Any]:
        changes = {k: v for k, v in item.items() if k != "external_id"}
        user, created = await end_users.upsert(db, project_id, mode, item["external_id"], changes)
        return {"external_id": user["external_id"], "status": "created" if created else "updated"}

    return summary(await _each(items, apply))


async def upsert_snippets(
    db: AsyncSession, project_id: int, mode: Mode, items: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Each item is {id?, title, content, url?}: with an id that snippet is updated; else
    the hand-written snippet with the same url is (what makes a docs sync idempotent); else
    a new one is created."""

    async def apply(_index: int, item: dict[str, Any]) -> dict[str, Any]:
        snippet_id = item.get("id")
        if snippet_id is None and item.get("url"):
            snippet_id = await db.scalar(
                select(Snippet.id)
                .where(
                    Snippet.project_id == project_id,
                    Snippet.mode == mode,
                    Snippet.provider_id.is_(None),
                    Snippet.url == item["url"],
                )
                .order_by(Snippet.id)
                .limit(1)
            )
        fields: dict[str, Any] = {k: item[k] for k in ("title", "content", "url") if k in item}
        if snippet_id is None:
            made = await snippets.create(
                db,
                project_id,
                mode,
                title=item["title"],
                content=item["content"],
                url=item.get("url"),
            )
            return {"id": made["id"], "status": "created"}
        try:
            changed = await snippets.update(db, project_id, mode, snippet_id, fields)
        except NotFound as missing:
            raise ValidationFailed(
                missing.message, details=[{"loc": ["id"], "msg": "no such snippet"}]
            ) from None
        return {"id": changed["id"], "status": "updated"}

    return summary(await _each(items, apply))


async def upsert_rows(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    table_id: int,
    items: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Each item is {id?, values}: with an id the cells given change (as PATCH); without,
    a row is added (every cell checked as POST)."""
    await tables.get_table(db, project_id, mode, table_id)  # 404 for the whole request

    async def apply(_index: int, item: dict[str, Any]) -> dict[str, Any]:
        row_id = item.get("id")
        if row_id is None:
            added = await tables.add_row(db, project_id, mode, table_id, item["values"])
            return {"id": added["id"], "status": "created"}
        try:
            changed = await tables.update_row(
                db, project_id, mode, table_id, row_id, item["values"]
            )
        except NotFound as missing:
            raise ValidationFailed(
                missing.message, details=[{"loc": ["id"], "msg": "no such row"}]
            ) from None
        return {"id": changed["id"], "status": "updated"}

    return summary(await _each(items, apply))
