"""Row-level security by tenant on the tenant-keyed tables: a second wall behind every query's tenant filter.

# zt: developer-strategy-authorization-best-practices
Each query already filters by the caller's tenant id (from the token, never from the request). A query that
forgot to, or an injection that dropped the filter, would still see only the tenant the service declared
for the transaction (`app.tenant_id`, set with set_config(..., true) by downstream_api.db.Database): rows of
any other tenant are invisible and can't be written. No tenant declared: no rows at all. The policy binds
every role but the tables' owner (the admin identity that runs the migrations); the service's role owns
nothing and has no BYPASSRLS. PostgreSQL only: SQLite has no row-level security (and is refused in production).

Revision ID: 0004_row_level_security
Revises: 0003_provisioned_users
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision: str = "0004_row_level_security"
down_revision: str | None = "0003_provisioned_users"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("records", "provisioned_users")
# missing_ok: a connection that declared no tenant reads NULL, which equals nothing.
TENANT = "current_setting('app.tenant_id', true)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_by_tenant ON {table} USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY {table}_by_tenant ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
