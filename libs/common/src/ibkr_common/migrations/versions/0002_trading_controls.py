"""trading controls (halt / resume)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ibkr_common.db.types
from ibkr_common.db.rls import enable_rls_on, grant_app_role_if_present

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ibkr_trading_controls",
        sa.Column("connection", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("changed_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", ibkr_common.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection"),
    )
    with op.batch_alter_table("ibkr_trading_controls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ibkr_trading_controls_user_id"), ["user_id"], unique=False)
    bind = op.get_bind()
    enable_rls_on(bind, ["ibkr_trading_controls"])
    grant_app_role_if_present(bind)


def downgrade() -> None:
    with op.batch_alter_table("ibkr_trading_controls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ibkr_trading_controls_user_id"))
    op.drop_table("ibkr_trading_controls")
