"""orders paging index (orders.get pages an account's orders newest first by id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 00:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ibkr_orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_account_page", ["connection", "account_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ibkr_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_account_page")
