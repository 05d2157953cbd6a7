"""Records may be shared with one group of the owner's tenant.

Revision ID: 0002_groups
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_groups"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("shared_group_id", sa.String(36), nullable=True))
    op.create_index("ix_records_shared", "records", ["tenant_id", "shared_group_id"])


def downgrade() -> None:
    op.drop_index("ix_records_shared", table_name="records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("shared_group_id")
