"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyplane.adapters.sql.database import create_engine
from keyplane.adapters.sql.migrate import HEAD, current_revision, upgrade
from keyplane.adapters.sql.models import Base, KeyUsageHourly
from keyplane.adapters.sql.search import INDEX_OBJECTS
from keyplane.runtime import Runtime
from tests.conftest import BACKENDS, POSTGRES_ADMIN


def _declared(name: str | None, _type: str, _parent: dict[str, Any]) -> bool:
    # The full-text index objects differ per database and exist only in migration 0007.
    return name not in INDEX_OBJECTS


async def test_migrations_match_the_models(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": _declared}),
                Base.metadata,
            )
        )
    assert diff == []


async def test_the_full_text_index_exists(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE name = 'snippets_fts'"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_snippets_search'"
        found = (await connection.exec_driver_sql(query)).scalar()
    assert found is not None


def test_head_names_the_newest_migration() -> None:
    # `upgrade` skips Alembic when the database is at HEAD: a migration added without moving
    # HEAD would never run.
    from alembic.script import ScriptDirectory

    from keyplane.adapters.sql.migrate import alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


async def test_a_database_at_head_is_not_migrated_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Alembic ran on a database already at HEAD")

    monkeypatch.setattr(command, "upgrade", refuse)
    assert await current_revision(runtime.engine) == HEAD
    await upgrade(runtime.engine)
    assert await current_revision(runtime.engine) == HEAD


# --- upgrading a database that holds data ------------------------------------------------------

INDEXES_ADDED_ONLINE = [
    "ix_api_keys_expiring",
    "ix_key_usage_hourly_hour",
    "ix_key_clients_last_seen",
    "ix_webhook_deliveries_created_at",
    "ix_audit_events_created_at",
]


@pytest.fixture(params=BACKENDS)
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of its own (these tests move its schema up and down)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield engine
        await engine.dispose()
        return
    async with _postgres_scratch() as engine:
        yield engine


@pytest.fixture
async def scratch_postgres() -> AsyncIterator[AsyncEngine]:
    async with _postgres_scratch() as engine:
        yield engine


@asynccontextmanager
async def _postgres_scratch() -> AsyncIterator[AsyncEngine]:
    name = f"keyplane_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        engine = create_engine(f"{base}/{name}")
        try:
            yield engine
        finally:
            await engine.dispose()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _statements(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def _schema_diff(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        diff: list[Any] = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": _declared}),
                Base.metadata,
            )
        )
    return diff


async def test_indexes_added_to_tables_with_data_do_not_block_writes(scratch: AsyncEngine) -> None:
    await upgrade(scratch, "0013")
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    async with scratch.begin() as connection:
        await connection.execute(
            insert(KeyUsageHourly),
            [
                {
                    "key_id": f"key_{n}",
                    "hour": hour,
                    "status_class": "success",
                    "permission": "project:read",
                    "count": n,
                }
                for n in range(3)
            ],
        )
    statements = _statements(scratch)
    await upgrade(scratch)

    assert await current_revision(scratch) == HEAD
    assert await _schema_diff(scratch) == []
    for index in INDEXES_ADDED_ONLINE:
        built = [s for s in statements if "CREATE INDEX" in s and f"{index}" in s]
        assert len(built) == 1, (index, built)
        if scratch.dialect.name == "postgresql":  # SQLite has no such thing, nor needs it
            assert built[0].startswith(f'CREATE INDEX CONCURRENTLY "{index}"'), built
    async with scratch.connect() as connection:
        assert (
            await connection.execute(select(func.count()).select_from(KeyUsageHourly))
        ).scalar() == 3


async def test_a_migration_cut_short_is_run_again_over_what_it_made(
    scratch: AsyncEngine,
) -> None:
    await upgrade(scratch)
    postgres = scratch.dialect.name == "postgresql"
    # 0015 cut short after its indexes (and its new column): each of those steps committed
    # on its own (PostgreSQL's concurrent builds; SQLite's DDL). On PostgreSQL one index was
    # left INVALID by a cancelled build.
    async with scratch.begin() as connection:
        if postgres:
            await connection.exec_driver_sql(
                "UPDATE pg_index SET indisvalid = false "
                "WHERE indexrelid = 'ix_key_usage_hourly_hour'::regclass"
            )
        await connection.exec_driver_sql("DROP TABLE job_runs")
        await connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0014'")
    statements = _statements(scratch)
    await upgrade(scratch)

    assert await current_revision(scratch) == HEAD
    assert await _schema_diff(scratch) == []
    if not postgres:
        return
    assert [s for s in statements if "INDEX CONCURRENTLY" in s] == [
        'DROP INDEX CONCURRENTLY IF EXISTS "ix_key_usage_hourly_hour"',
        'CREATE INDEX CONCURRENTLY "ix_key_usage_hourly_hour" ON "key_usage_hourly" ("hour")',
    ]
    async with scratch.connect() as connection:
        valid = await connection.exec_driver_sql(
            "SELECT indisvalid FROM pg_index "
            "WHERE indexrelid = 'ix_key_usage_hourly_hour'::regclass"
        )
        assert valid.scalar() is True


async def test_postgresql_migrators_starting_together_take_turns(
    scratch_postgres: AsyncEngine,
) -> None:
    # Hosts of a scaled-out deployment start together; SQLite serves one host, where
    # `keyplane serve` migrates once before its workers start.
    scratch = scratch_postgres
    others = [create_engine(scratch.url.render_as_string(hide_password=False)) for _ in range(2)]
    try:
        # Without turns they deadlock (or fail on each other's tables): bounded, to fail.
        together = asyncio.gather(upgrade(scratch), *(upgrade(engine) for engine in others))
        await asyncio.wait_for(together, 60)
    finally:
        for engine in others:
            await engine.dispose()
    assert await current_revision(scratch) == HEAD
    assert await _schema_diff(scratch) == []
