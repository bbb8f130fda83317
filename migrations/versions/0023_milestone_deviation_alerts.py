"""milestone_alert, and a (status, due_date) index on milestone (issue 13, deviation alerts)

- ``milestone_alert``: one row per deviation alert sent (orders/alerts.py). Its unique key
  (milestone, kind, due date) makes the daily job tell buyer, institution and staff once per
  deviation; after a staff extension the milestone has a new due date, so a new deviation
  alerts again. Existing orders get no rows: their current deviations alert on the next run.
- ``ix_milestone_status_due_date``: the SLA's milestone conditions (orders/sla.py) read the
  milestones past due / due soon across all orders from this index.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 05:38:58.934003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0023'
down_revision: str | Sequence[str] | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('milestone_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('milestone_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('overdue', 'at_risk')", name=op.f('ck_milestone_alert_kind')),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestone.id'], name=op.f('fk_milestone_alert_milestone_id_milestone'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'], name=op.f('fk_milestone_alert_order_id_purchase_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestone_alert')),
    sa.UniqueConstraint('milestone_id', 'kind', 'due_date', name='uq_milestone_alert_once')
    )
    with op.batch_alter_table('milestone_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestone_alert_order_id'), ['order_id'], unique=False)

    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.create_index('ix_milestone_status_due_date', ['status', 'due_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.drop_index('ix_milestone_status_due_date')

    with op.batch_alter_table('milestone_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestone_alert_order_id'))

    op.drop_table('milestone_alert')
