"""housekeeping: when deployment-wide jobs last ran, when each webhook last delivered, and
indexes for retention

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
    # Each step may already be done: PostgreSQL commits each concurrent index build on its
    # own, SQLite each DDL statement, so a run cut short is simply repeated.
    for name, table, column in _INDEXES:
        online.create_index(name, table, [column])
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
        if_not_exists=True,
    )
    # Deliveries are deleted after their retention; the PII inventory's "last used" of a
    # webhook must outlive them.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("webhook_endpoints")}
    if "last_delivered_at" not in columns:
        op.add_column(
            "webhook_endpoints", sa.Column("last_delivered_at", sa.DateTime(timezone=True))
        )
    op.execute(
        "UPDATE webhook_endpoints SET last_delivered_at = (SELECT max(delivered_at) "
        "FROM webhook_deliveries WHERE webhook_deliveries.endpoint_id = webhook_endpoints.id)"
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "last_delivered_at")
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("job_runs")
