"""Apply Alembic migrations to the configured database (run by `keyplane serve` on start).

Alembic is imported only when there is something to migrate: a process that finds its
database at `HEAD` never loads it (~10 MB resident per API process, DESIGN §10)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (a test checks it against Alembic's head).
HEAD = "0015"


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
        await connection.run_sync(run)
        await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        version: str | None = (
            await connection.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar()
    return version
