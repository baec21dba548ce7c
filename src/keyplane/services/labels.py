"""Conversation labels: one per case-folded name in a project and mode, created on first use.
The first spelling is kept: PUT "billing" after "Billing" finds "Billing", and conversations
labelled either way carry "Billing"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Label
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.keyformat import Mode


def key_of(name: str) -> str:
    return name.strip().casefold()


def describe(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "created_at": iso(label.created_at),
        "updated_at": iso(label.updated_at),
    }


async def _find(db: AsyncSession, project_id: int, mode: Mode, keys: Sequence[str]) -> list[Label]:
    rows = await db.scalars(
        select(Label).where(Label.project_id == project_id, Label.mode == mode, Label.key.in_(keys))
    )
    return list(rows.all())


async def ensure(
    db: AsyncSession, project_id: int, mode: Mode, names: Sequence[str]
) -> tuple[list[Label], set[str]]:
    """The labels for `names` (deduplicated case-insensitively, in order), creating the missing
    ones; also returns the keys that were created."""
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(key_of(name), name.strip())
    found = {label.key: label for label in await _find(db, project_id, mode, list(wanted))}
    created: set[str] = set()
    for key, name in wanted.items():
        if key in found:
            continue
        now = utcnow()
        label = Label(
            project_id=project_id, mode=mode, name=name, key=key, created_at=now, updated_at=now
        )
        try:
            # A savepoint: a concurrent request creating the same label must not undo ours.
            async with db.begin_nested():
                db.add(label)
        except IntegrityError:
            label = (await _find(db, project_id, mode, [key]))[0]
        else:
            created.add(key)
        found[key] = label
    return [found[key] for key in wanted], created


async def upsert(
    db: AsyncSession, project_id: int, mode: Mode, name: str, description: str | None
) -> tuple[dict[str, Any], bool]:
    """PUT semantics; returns the label and whether it was created."""
    (label,), created = await ensure(db, project_id, mode, [name])
    if description is not None and description != label.description:
        label.description = description
        label.updated_at = utcnow()
    await db.flush()
    return describe(label), bool(created)


async def page(
    db: AsyncSession, project_id: int, mode: Mode, *, limit: int, after_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(Label).where(Label.project_id == project_id, Label.mode == mode)
    rows, last = await keyset_page(
        db, query, Label.id, limit=limit, after_id=after_id, newest_first=False
    )
    return [describe(r) for r in rows], last
