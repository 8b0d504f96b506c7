"""connection registry: setup state of ibkr_credentials, per-account settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ibkr_common.db.types
from ibkr_common.db.rls import enable_registry_scan, enable_rls_on, grant_app_role_if_present

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = ibkr_common.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("ibkr_credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway_ssl", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("gateway_ca_pem", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="unverified"))
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("bootstrap", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("acknowledged", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("missing_disclosures", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("verified_at", UTC_DATETIME, nullable=True))
        batch_op.alter_column("key_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.create_unique_constraint("uq_credentials_connection", ["connection"])

    op.create_table(
        "ibkr_connection_accounts",
        sa.Column("connection", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("options_level", sa.Integer(), nullable=False),
        sa.Column("live_enabled", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("account_type", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("net_liquidation", ibkr_common.db.types.Money(), nullable=True),
        sa.Column("verified_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("connection", "account_id"),
    )
    with op.batch_alter_table("ibkr_connection_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ibkr_connection_accounts_user_id"), ["user_id"], unique=False)
    bind = op.get_bind()
    enable_rls_on(bind, ["ibkr_connection_accounts"])
    enable_registry_scan(bind, ["ibkr_credentials", "ibkr_connection_accounts"])
    grant_app_role_if_present(bind)


def downgrade() -> None:
    with op.batch_alter_table("ibkr_connection_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ibkr_connection_accounts_user_id"))
    op.drop_table("ibkr_connection_accounts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS ibkr_credentials_registry_scan ON ibkr_credentials")
    with op.batch_alter_table("ibkr_credentials", schema=None) as batch_op:
        batch_op.drop_constraint("uq_credentials_connection", type_="unique")
        batch_op.alter_column("key_id", existing_type=sa.String(length=32), nullable=False)
        for column in ("verified_at", "missing_disclosures", "acknowledged", "bootstrap", "enabled", "state",
                       "gateway_ca_pem", "gateway_ssl"):
            batch_op.drop_column(column)
