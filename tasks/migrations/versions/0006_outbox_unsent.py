"""outbox_unsent: what is still to be published, apart from the event rows

Revision ID: 0006
Revises: 0005

Marking a row sent used to update ``outbox_events`` (published_at, bus_id), rewriting the
whole row with its JSON; now publishing deletes the row's id from ``outbox_unsent``, which a
trigger fills on every insert into ``outbox_events``.
"""

import sqlalchemy as sa
from alembic import op

from shared.outbox_trigger import create_trigger, drop_trigger

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table("outbox_unsent", sa.Column("id", _ID, nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_unsent")))
    op.execute("INSERT INTO outbox_unsent (id) SELECT id FROM outbox_events WHERE published_at IS NULL")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_unsent")
        batch_op.drop_column("bus_id")
        batch_op.drop_column("published_at")
    create_trigger(None, op.get_bind())  # after the batch: on SQLite it rebuilds the table


def downgrade() -> None:
    drop_trigger(op.get_bind())
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("bus_id", sa.String(length=32), nullable=True))
    # The time and bus id of a publish are not kept any more: a published row gets the time of the downgrade.
    op.execute("UPDATE outbox_events SET published_at = CURRENT_TIMESTAMP "
               "WHERE id NOT IN (SELECT id FROM outbox_unsent)")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_unsent", ["id"], unique=False,
                              postgresql_where=sa.text("published_at IS NULL"),
                              sqlite_where=sa.text("published_at IS NULL"))
    op.drop_table("outbox_unsent")
