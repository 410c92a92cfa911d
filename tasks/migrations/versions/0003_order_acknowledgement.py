"""Orders: when and by whom an operator acknowledged them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("acknowledged_by", sa.String(128), nullable=False, server_default=""))
    op.create_index("ix_orders_acknowledged_at", "orders", ["acknowledged_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_acknowledged_at", table_name="orders")
    op.drop_column("orders", "acknowledged_by")
    op.drop_column("orders", "acknowledged_at")
