"""orders.oversold and listings.end_reason: an order's listing is SOLD, the product's others end

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oversold", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("oversold")
