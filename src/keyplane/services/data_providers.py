"""Data providers and their sync job: a sync reads the provider's source and makes the
provider's snippets match it (creates, updates, removes), recording status and counts on the
provider. The job runs in the API process; it claims the provider with a conditional update,
so two processes never run the same sync at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql.models import DataProvider, Snippet
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound, ValidationFailed
from keyplane.domain.keyformat import Mode
from keyplane.services import webhooks
from keyplane.services.knowledge_sources import Collected, collect_directory, collect_urls, inside
from keyplane.settings import Settings

log = structlog.get_logger(__name__)

# A sync still "pending" or "running" after this long died with its process: a new request
# may start over instead of waiting forever.
STALE_AFTER = timedelta(minutes=15)
BUSY = ("pending", "running")


def describe(provider: DataProvider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "name": provider.name,
        "type": provider.type,
        "config": dict(provider.config),
        "sync": {
            "status": provider.status,
            "snippets_created": provider.snippets_created,
            "snippets_updated": provider.snippets_updated,
            "snippets_removed": provider.snippets_removed,
            "last_error": provider.last_error,
            "requested_at": iso(provider.requested_at),
            "started_at": iso(provider.started_at),
            "finished_at": iso(provider.finished_at),
        },
        "created_at": iso(provider.created_at),
        "updated_at": iso(provider.updated_at),
    }


def check_directory(path: str, roots: list[Path]) -> None:
    where = [{"loc": ["body", "config", "path"], "msg": "directory not allowed"}]
    candidate = Path(path)
    if not candidate.is_absolute() or not inside(candidate, roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ValidationFailed(
            f"config.path must be an absolute path inside {allowed} "
            "(set KEYPLANE_DATA_PROVIDER_ROOTS to allow other directories).",
            details=where,
        )
    if not candidate.is_dir():
        raise ValidationFailed(f"config.path {path} is not an existing directory.", details=where)


async def create(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    *,
    name: str,
    type_: str,
    config: dict[str, Any],
    roots: list[Path],
) -> dict[str, Any]:
    if type_ == "directory":
        check_directory(config["path"], roots)
    now = utcnow()
    provider = DataProvider(
        project_id=project_id,
        mode=mode,
        name=name,
        type=type_,
        config=config,
        status="idle",
        snippets_created=0,
        snippets_updated=0,
        snippets_removed=0,
        created_at=now,
        updated_at=now,
    )
    db.add(provider)
    await db.flush()
    return describe(provider)


async def _find(db: AsyncSession, project_id: int, mode: Mode, provider_id: int) -> DataProvider:
    provider = await db.scalar(
        select(DataProvider).where(
            DataProvider.id == provider_id,
            DataProvider.project_id == project_id,
            DataProvider.mode == mode,
        )
    )
    if provider is None:
        raise NotFound(f"No data provider {provider_id} in project {project_id} ({mode} data).")
    return provider


async def get(db: AsyncSession, project_id: int, mode: Mode, provider_id: int) -> dict[str, Any]:
    return describe(await _find(db, project_id, mode, provider_id))


async def page(
    db: AsyncSession, project_id: int, mode: Mode, *, limit: int, after_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(DataProvider).where(
        DataProvider.project_id == project_id, DataProvider.mode == mode
    )
    rows, last = await keyset_page(
        db, query, DataProvider.id, limit=limit, after_id=after_id, newest_first=False
    )
    return [describe(r) for r in rows], last


async def request_sync(
    db: AsyncSession, project_id: int, mode: Mode, provider_id: int
) -> tuple[dict[str, Any], bool]:
    """Mark a sync as pending. Returns the provider and whether the caller should start the
    job (False while one is already pending or running: the request joins it)."""
    provider = await _find(db, project_id, mode, provider_id)
    now = utcnow()
    since = func.coalesce(DataProvider.started_at, DataProvider.requested_at)
    # One conditional update, not a read and a write: two requests at once (on SQLite, the
    # second read the state before the first committed) both started a sync, and the two
    # jobs then collided inserting the same snippets.
    started = await db.execute(
        update(DataProvider)
        .where(
            DataProvider.id == provider.id,
            or_(DataProvider.status.not_in(BUSY), since.is_(None), since <= now - STALE_AFTER),
        )
        .values(status="pending", requested_at=now, started_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await db.refresh(provider)
    return describe(provider), started.rowcount == 1  # type: ignore[attr-defined]


async def _collect(provider: DataProvider, settings: Settings) -> Collected:
    if provider.type == "directory":
        return await collect_directory(
            str(provider.config["path"]), settings.knowledge_roots, settings.data_provider_max_bytes
        )
    return await collect_urls(
        list(provider.config["urls"]),
        settings.data_provider_max_bytes,
        settings.data_provider_timeout_seconds,
    )


async def _apply(db: AsyncSession, provider: DataProvider, collected: Collected) -> tuple[int, ...]:
    existing = {
        s.source: s
        for s in (await db.scalars(select(Snippet).where(Snippet.provider_id == provider.id)))
    }
    created = updated = removed = 0
    now = utcnow()
    for source, (document, url) in collected.documents.items():
        snippet = existing.get(source)
        if snippet is None:
            db.add(
                Snippet(
                    project_id=provider.project_id,
                    mode=provider.mode,
                    title=document.title,
                    content=document.content,
                    url=url,
                    provider_id=provider.id,
                    source=source,
                    created_at=now,
                    updated_at=now,
                )
            )
            created += 1
        elif (snippet.title, snippet.content, snippet.url) != (
            document.title,
            document.content,
            url,
        ):
            snippet.title, snippet.content, snippet.url = document.title, document.content, url
            snippet.updated_at = now
            updated += 1
    for origin, stale in existing.items():
        if origin not in collected.seen:
            await db.delete(stale)
            removed += 1
    await db.flush()
    return created, updated, removed


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    provider_id: int,
    collected: Collected | None,
    status: str,
    error: str | None,
) -> tuple[int, ...]:
    counts: tuple[int, ...] = (0, 0, 0)
    async with sessions() as db:
        row = await db.get(DataProvider, provider_id)
        if row is None:  # deleted meanwhile, with its project
            return counts
        if collected is not None:
            counts = await _apply(db, row, collected)
        row.status = status
        row.snippets_created, row.snippets_updated, row.snippets_removed = counts
        row.last_error = error
        row.finished_at = row.updated_at = utcnow()
        await webhooks.enqueue(
            db,
            row.project_id,
            "data_provider.sync.failed" if status == "failed" else "data_provider.sync.completed",
            {"data_provider": describe(row)},
            row.mode,
        )
        await db.commit()
    return counts


async def run_sync(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, provider_id: int
) -> None:
    """The background job. Reads the source outside any transaction, then applies the result
    in one transaction together with the provider's new status."""
    async with sessions() as db:
        claimed = await db.execute(
            update(DataProvider)
            .where(DataProvider.id == provider_id, DataProvider.status == "pending")
            .values(status="running", started_at=utcnow())
        )
        await db.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return
        provider = await db.get(DataProvider, provider_id)
        assert provider is not None
    counts: tuple[int, ...] = (0, 0, 0)
    collected: Collected | None
    error: str | None
    try:
        collected = await _collect(provider, settings)
        status = "failed" if collected.errors else "succeeded"
        error = "; ".join(collected.errors)[:2000] or None
    except (OSError, ValueError) as failure:
        collected, status, error = None, "failed", str(failure)[:2000]
    except Exception as failure:
        log.error(
            "data_provider_sync_failed", provider_id=provider_id, error_type=type(failure).__name__
        )
        collected, status, error = (
            None,
            "failed",
            "the sync failed unexpectedly; see the server log",
        )
    try:
        counts = await _finish(sessions, provider_id, collected, status, error)
    except Exception as failure:  # the source was read but could not be stored
        log.error(
            "data_provider_sync_failed", provider_id=provider_id, error_type=type(failure).__name__
        )
        status = "failed"
        await _finish(
            sessions, provider_id, None, status, "the snippets could not be stored; retry"
        )
    log.info(
        "data_provider_synced",
        provider_id=provider_id,
        status=status,
        created=counts[0],
        updated=counts[1],
        removed=counts[2],
    )
