"""an index for the expiry reminders: live keys by expiry time

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

from keyplane.adapters.sql.migrations import online

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    online.create_index(
        "ix_api_keys_expiring",
        "api_keys",
        ["expires_at"],
        where="expires_at IS NOT NULL AND revoked_at IS NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_api_keys_expiring", table_name="api_keys")
