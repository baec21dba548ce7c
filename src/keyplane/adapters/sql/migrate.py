"""Apply Alembic migrations to the configured database (run by `keyplane serve` on start).

Alembic is imported only when there is something to migrate: a process that finds its
database at `HEAD` never loads it (~10 MB resident per API process, DESIGN §10)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (a test checks it against Alembic's head).
HEAD = "0015"
MIGRATION_LOCK = 0x6B65_7970_6C61_6E65  # "keyplane": the advisory lock migrators take turns on
LOCK_POLL_SECONDS = 0.2


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    if revision == "head" and await current_revision(engine) == HEAD:
        return

    def run(connection: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection), revision)

    # Not engine.begin(): Alembic runs each migration in a transaction of its own, and steps
    # out of it for what PostgreSQL only does outside one (migrations/online.py).
    async with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            await _lock(connection)
        try:
            await connection.run_sync(run)
            await connection.commit()
        finally:
            if postgres:
                await _unlock(connection)


async def _lock(connection: AsyncConnection) -> None:
    """Hosts starting together migrate one after the other (Alembic reads the version only
    once it holds the lock): with transactions per migration and concurrent index builds, two
    migrators would otherwise trip over each other's work. Polled, never waited for inside a
    transaction: a concurrent index build waits for every open transaction to end, so a
    migrator queued on the lock in one would deadlock with the one building."""
    statement = text("SELECT pg_try_advisory_lock(:id)")
    while not (await connection.execute(statement, {"id": MIGRATION_LOCK})).scalar():
        await connection.rollback()
        await asyncio.sleep(LOCK_POLL_SECONDS)
    await connection.commit()


async def _unlock(connection: AsyncConnection) -> None:
    """Release the migration lock; a connection that cannot is closed instead (its session,
    and with it the lock, ends), never handed back to the pool still holding it."""
    try:
        await connection.rollback()
        await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK})
        await connection.commit()
    except Exception:
        await connection.invalidate()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        version: str | None = (
            await connection.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar()
    return version
