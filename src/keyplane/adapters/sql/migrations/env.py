"""Alembic environment: always handed a live connection by `keyplane.adapters.sql.migrate`."""

from __future__ import annotations

from alembic import context

from keyplane.adapters.sql.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `keyplane.adapters.sql.migrate.upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite needs batch mode to alter tables
    compare_type=True,
    # A transaction per migration: one that builds an index concurrently on PostgreSQL
    # (migrations/online.py) must commit what came before it.
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
