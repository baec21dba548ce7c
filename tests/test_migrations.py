"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from keyplane.adapters.sql.models import Base
from keyplane.adapters.sql.search import INDEX_OBJECTS
from keyplane.runtime import Runtime


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

    from keyplane.adapters.sql.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


async def test_a_database_at_head_is_not_migrated_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    from keyplane.adapters.sql.migrate import HEAD, current_revision, upgrade

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Alembic ran on a database already at HEAD")

    monkeypatch.setattr(command, "upgrade", refuse)
    assert await current_revision(runtime.engine) == HEAD
    await upgrade(runtime.engine)
    assert await current_revision(runtime.engine) == HEAD
