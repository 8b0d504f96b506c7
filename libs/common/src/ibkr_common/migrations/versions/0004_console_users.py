"""console users (the operator console's sign-in accounts)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ibkr_common.db.types
from ibkr_common.db.rls import grant_app_role_if_present

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("owner_user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", ibkr_common.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ibkr_common.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'trader', 'admin')", name="ck_console_users_role"),
        sa.PrimaryKeyConstraint("username"),
    )
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_users_owner_user_id"), ["owner_user_id"], unique=False)
    grant_app_role_if_present(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_users_owner_user_id"))
    op.drop_table("console_users")
