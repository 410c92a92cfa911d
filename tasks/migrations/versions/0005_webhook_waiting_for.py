"""webhook_events.waiting_for: a status notice kept until its order is created

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_for", sa.String(length=160), nullable=True))
        batch_op.create_index(batch_op.f("ix_webhook_events_waiting_for"), ["waiting_for"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_events_waiting_for"))
        batch_op.drop_column("waiting_for")
