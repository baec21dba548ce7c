"""rate limits: organization limits and scope, change versions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_limit_per_day", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("rate_limit_scope", sa.String(16), nullable=False, server_default="key")
        )
        batch.add_column(
            sa.Column("access_version", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("access_version")
        batch.drop_column("rate_limit_scope")
        batch.drop_column("rate_limit_per_day")
        batch.drop_column("rate_limit_per_minute")
