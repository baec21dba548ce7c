"""an index for the expiry reminders: live keys by expiry time

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_LIVE = sa.text("expires_at IS NOT NULL AND revoked_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_api_keys_expiring",
        "api_keys",
        ["expires_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_api_keys_expiring", table_name="api_keys")
