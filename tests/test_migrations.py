"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from keyplane.adapters.sql.models import Base
from keyplane.runtime import Runtime


async def test_migrations_match_the_models(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []
