"""knowledge and labels: labels, data providers, snippets with a full-text index

Revision ID: 0007
Revises: 0006

The full-text index differs per database, so it is created here and not declared on the
models: SQLite gets an FTS5 table over `snippets` kept in sync by triggers, PostgreSQL a GIN
index over the same `to_tsvector` expression the retrieval query uses
(keyplane.adapters.sql.search).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE snippets_fts USING fts5(title, content, content='snippets', "
    "content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER snippets_fts_insert AFTER INSERT ON snippets BEGIN "
    "INSERT INTO snippets_fts(rowid, title, content) VALUES (new.id, new.title, new.content); "
    "END",
    "CREATE TRIGGER snippets_fts_delete AFTER DELETE ON snippets BEGIN "
    "INSERT INTO snippets_fts(snippets_fts, rowid, title, content) "
    "VALUES ('delete', old.id, old.title, old.content); END",
    "CREATE TRIGGER snippets_fts_update AFTER UPDATE ON snippets BEGIN "
    "INSERT INTO snippets_fts(snippets_fts, rowid, title, content) "
    "VALUES ('delete', old.id, old.title, old.content); "
    "INSERT INTO snippets_fts(rowid, title, content) VALUES (new.id, new.title, new.content); "
    "END",
]
POSTGRES_INDEX = (
    "CREATE INDEX ix_snippets_search ON snippets "
    "USING gin (to_tsvector('english', title || ' ' || content))"
)


def _scoped(*columns: sa.Column[Any]) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("id", BigId, nullable=False),
        sa.Column("project_id", BigId, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        *columns,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "labels",
        *_scoped(
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("key", sa.String(64), nullable=False),
            sa.Column("description", sa.String(500), nullable=True),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_labels_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("project_id", "mode", "key", name=op.f("uq_labels_project_id")),
    )
    op.create_table(
        "data_providers",
        *_scoped(
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("type", sa.String(16), nullable=False),
            sa.Column("config", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("snippets_created", sa.Integer(), nullable=False),
            sa.Column("snippets_updated", sa.Integer(), nullable=False),
            sa.Column("snippets_removed", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_data_providers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_providers")),
    )
    op.create_index("ix_data_providers_scope", "data_providers", ["project_id", "mode", "id"])
    op.create_table(
        "snippets",
        *_scoped(
            sa.Column("title", sa.String(300), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("url", sa.String(2000), nullable=True),
            sa.Column("provider_id", BigId, nullable=True),
            sa.Column("source", sa.String(2000), nullable=True),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_snippets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["data_providers.id"],
            name=op.f("fk_snippets_provider_id_data_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snippets")),
        sa.UniqueConstraint("provider_id", "source", name=op.f("uq_snippets_provider_id")),
    )
    op.create_index("ix_snippets_scope", "snippets", ["project_id", "mode", "id"])
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS snippets_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS snippets_fts")
    op.drop_table("snippets")  # drops ix_snippets_search with it on PostgreSQL
    op.drop_table("data_providers")
    op.drop_table("labels")
