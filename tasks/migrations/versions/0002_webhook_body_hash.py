"""webhook deliveries are unique by the SHA-256 of their body too

A signed body replayed under a new delivery id (which the signature does not cover) must be a
duplicate. Existing rows get the hash of their stored body, the oldest of a provider's identical
bodies only: replays stored before this check keep NULL, which the unique constraint allows.

Revision ID: 0002
Revises: 0001
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, provider, raw_body FROM webhook_events ORDER BY id")).all()
    seen: set[tuple[str, str]] = set()
    for row_id, provider, body in rows:
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        if (provider, digest) in seen:
            continue
        seen.add((provider, digest))
        bind.execute(sa.text("UPDATE webhook_events SET body_sha256 = :d WHERE id = :i"), {"d": digest, "i": row_id})
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_webhook_events_body"), ["provider", "body_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_webhook_events_body"), type_="unique")
        batch_op.drop_column("body_sha256")
