"""Indexes added to tables that already hold data, without stopping writes.

A plain CREATE INDEX on PostgreSQL blocks every write to the table while it builds (usage
flushes, key changes, audit events: seconds to minutes on a large deployment, during a rolling
upgrade whose older processes are still serving). CREATE INDEX CONCURRENTLY does not, but
must run outside a transaction, so it runs in Alembic's autocommit block. A concurrent build
that was interrupted leaves an INVALID index behind, which IF NOT EXISTS would then keep for
ever: such a leftover is dropped and built again (migrators take turns, migrate.upgrade, so
an invalid index is never another host's build under way). SQLite builds the index in place,
IF NOT EXISTS: its DDL commits statement by statement, so a migration cut short is re-run
over what it already made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_index(name: str, table: str, columns: list[str], where: str | None = None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(
            name,
            table,
            columns,
            sqlite_where=sa.text(where) if where else None,
            if_not_exists=True,
        )
        return
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        valid = bind.execute(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": name},
        ).scalar()
        if valid:
            return
        if valid is False:
            bind.exec_driver_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        listed = ", ".join(f'"{column}"' for column in columns)
        condition = f" WHERE {where}" if where else ""
        bind.exec_driver_sql(
            f'CREATE INDEX CONCURRENTLY "{name}" ON "{table}" ({listed}){condition}'
        )
