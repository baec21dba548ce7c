"""key usage: hourly counters per key, status class and permission

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_usage_hourly",
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_class", sa.String(16), nullable=False),
        sa.Column("permission", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "key_id", "hour", "status_class", "permission", name=op.f("pk_key_usage_hourly")
        ),
    )


def downgrade() -> None:
    op.drop_table("key_usage_hourly")
