"""reseller clients: client members and their assigned projects, OIDC sign-in, branding

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_org_id_organizations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("org_members") as batch:
        batch.add_column(
            sa.Column("client", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "client_assignments",
        sa.Column("user_id", _BIG_ID, nullable=False),
        sa.Column("project_id", _BIG_ID, nullable=False),
        sa.Column("org_id", _BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _org_fk("client_assignments"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_client_assignments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_client_assignments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_client_assignments")),
    )
    op.create_index("ix_client_assignments_project_id", "client_assignments", ["project_id"])
    op.create_index("ix_client_assignments_org_id", "client_assignments", ["org_id"])
    op.create_table(
        "org_sso",
        sa.Column("org_id", _BIG_ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("secret_version", sa.Integer(), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("allowed_domains", sa.JSON(), nullable=False),
        sa.Column("jit_clients", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("default_project_role", sa.String(64), nullable=False),
        sa.Column("password_login", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("org_sso"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_sso")),
    )
    op.create_table(
        "org_branding",
        sa.Column("org_id", _BIG_ID, nullable=False),
        sa.Column("product_name", sa.String(100), nullable=True),
        sa.Column("logo_url", sa.String(2000), nullable=True),
        sa.Column("color", sa.String(7), nullable=True),
        sa.Column("base_url", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("org_branding"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_branding")),
    )
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("org_id", _BIG_ID, nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_path", sa.String(1000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("oidc_logins"),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oidc_logins")),
    )


def downgrade() -> None:
    op.drop_table("oidc_logins")
    op.drop_table("org_branding")
    op.drop_table("org_sso")
    op.drop_index("ix_client_assignments_org_id", table_name="client_assignments")
    op.drop_index("ix_client_assignments_project_id", table_name="client_assignments")
    op.drop_table("client_assignments")
    with op.batch_alter_table("org_members") as batch:
        batch.drop_column("client")
