"""purchase_order.batched_at: which orders a settlement batch already holds

The staff batch list counts the settlement backlog: orders completed or ruled on and in no
batch. Tested against ``settlement_item`` that meant an anti-join over every such order a
batch already holds; after a month's run (98k orders at 1M orders a year, unpaid until the
statements are paid) the page took 370-550 ms (bench/scale.py). ``batched_at`` is set with
the order's settlement item, and two partial indexes hold only the unbatched orders, so the
backlog reads only the backlog.

- ``batched_at``: filled here from the batch that holds each order (``settlement_item``);
- ``ix_purchase_order_unbatched_completed`` (completed_at) and
  ``ix_purchase_order_unbatched_resolved`` (closed_at), each WHERE its status and
  ``batched_at IS NULL``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.database import UTCDateTime

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNBATCHED = {
    'ix_purchase_order_unbatched_completed': ('completed_at', 'completed'),
    'ix_purchase_order_unbatched_resolved': ('closed_at', 'resolved'),
}


def upgrade() -> None:
    with op.batch_alter_table('purchase_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batched_at', UTCDateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE purchase_order SET batched_at = (
            SELECT settlement_batch.created_at FROM settlement_item
            JOIN settlement_batch ON settlement_batch.id = settlement_item.batch_id
            WHERE settlement_item.order_id = purchase_order.id)
        WHERE id IN (SELECT order_id FROM settlement_item)""")
    for name, (column, status) in UNBATCHED.items():
        where = sa.text(f"status = '{status}' AND batched_at IS NULL")
        op.create_index(name, 'purchase_order', [column],
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name in UNBATCHED:
        op.drop_index(name, table_name='purchase_order')
    with op.batch_alter_table('purchase_order', schema=None) as batch_op:
        batch_op.drop_column('batched_at')
