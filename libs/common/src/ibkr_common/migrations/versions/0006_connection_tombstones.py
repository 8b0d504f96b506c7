"""connection tombstones: a deleted connection id is held back from other users for the quarantine

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ibkr_common.db.types
from ibkr_common.db.rls import enable_registry_scan, enable_rls_on, grant_app_role_if_present

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = ibkr_common.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ibkr_connection_tombstones",
        sa.Column("connection", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", UTC_DATETIME, nullable=False),
        sa.Column("until", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("connection", "user_id"),
    )
    bind = op.get_bind()
    enable_rls_on(bind, ["ibkr_connection_tombstones"])
    enable_registry_scan(bind, ["ibkr_connection_tombstones"])
    grant_app_role_if_present(bind)


def downgrade() -> None:
    op.drop_table("ibkr_connection_tombstones")
