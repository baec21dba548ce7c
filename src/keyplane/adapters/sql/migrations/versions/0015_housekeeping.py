"""housekeeping: when deployment-wide jobs last ran, and indexes for retention

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyplane.adapters.sql.migrations import online

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Retention deletes by time; the hourly usage index also serves anomaly detection's
# "every key used this hour".
_INDEXES = (
    ("ix_key_usage_hourly_hour", "key_usage_hourly", "hour"),
    ("ix_key_clients_last_seen", "key_clients", "last_seen"),
    ("ix_webhook_deliveries_created_at", "webhook_deliveries", "created_at"),
    ("ix_audit_events_created_at", "audit_events", "created_at"),
)


def upgrade() -> None:
    # The indexes first: on PostgreSQL each is built (and committed) on its own, so a run
    # cut short is simply repeated (online.create_index skips or rebuilds what exists).
    for name, table, column in _INDEXES:
        online.create_index(name, table, [column])
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("job_runs")
