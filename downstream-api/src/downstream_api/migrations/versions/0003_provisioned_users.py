"""Create the provisioned_users table (SCIM provisioning), keyed by tenant id + Entra object id.

Revision ID: 0003_provisioned_users
Revises: 0002_groups
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_provisioned_users"
down_revision: str | None = "0002_groups"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "provisioned_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("user_name", sa.String(256), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "object_id", name="uq_provisioned_users_tenant_object"),
    )
    op.create_index("ix_provisioned_users_name", "provisioned_users", ["tenant_id", "user_name"])


def downgrade() -> None:
    op.drop_index("ix_provisioned_users_name", table_name="provisioned_users")
    op.drop_table("provisioned_users")
