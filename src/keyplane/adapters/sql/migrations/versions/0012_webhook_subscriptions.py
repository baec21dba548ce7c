"""webhook subscriptions per mode, disabled after sustained failure, replays; browser keys

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("mode", sa.String(8), server_default="live", nullable=False))
        batch.add_column(sa.Column("description", sa.String(200), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(500), nullable=True))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("replay_of", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("allow_browser", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allow_browser")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("replay_of")
    with op.batch_alter_table("webhook_endpoints") as batch:
        for column in ("disabled_reason", "disabled_at", "updated_at", "description", "mode"):
            batch.drop_column(column)
