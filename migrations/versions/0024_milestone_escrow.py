"""milestone: submission, the buyer's answer and the money it released (issue 13, escrow)

Milestones used to be ``pending`` or ``done`` (marked by the institution, no money moved).
Now the institution submits a milestone (note, files on a progress update), the buyer
approves it (or asks for changes, with a reason; the timer approves after
MILESTONE_AUTO_APPROVE_DAYS of silence) and the approval releases its share of the order
from escrow (ledger posting ``milestone_release``, id kept in ``release_posting``).

Existing rows: ``done`` milestones of orders still open become ``submitted`` (submitted now,
so the buyer gets the full approval window and the 3-day notice); those of closed orders
become ``approved`` by ``completion`` (their money was settled with the whole order). The
status column widens to 20 characters (``changes_requested``).

settlement_item: a statement line is a whole order (``kind`` "order", as before) or one
ledger posting of an order (``release`` of a milestone while the order still runs, or a
staff ``clawback``): ``kind`` and ``posting`` (UNIQUE) added; ``order_id`` is no longer
UNIQUE by itself but through a partial UNIQUE index on whole-order lines (``posting IS
NULL``), so an order still settles in one batch as a whole while its releases go into earlier
ones. Existing rows are whole-order lines.

Chain: follows 0023 (milestone deviation alerts).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0024'
down_revision: str | Sequence[str] | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "submitted", "changes_requested", "approved", "disputed", "ruled")
OPEN = ("pending_payment", "paid", "accepted", "in_progress", "delivered", "disputed")


def _in(values) -> str:
    return "status in (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_milestone_status'), type_='check')
        batch_op.alter_column('status', existing_type=sa.String(length=16),
                              type_=sa.String(length=20), existing_nullable=False)
        batch_op.add_column(sa.Column('submitted_at',
                                      marketplace.database.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('submission_note', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('submission_update_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_at',
                                      marketplace.database.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('decision_note', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('approved_by', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('auto_notice_at',
                                      marketplace.database.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('released_amount', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('release_posting', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_milestone_submission_update_id_progress_update'), 'progress_update',
            ['submission_update_id'], ['id'], ondelete='SET NULL')
    open_orders = ", ".join(f"'{s}'" for s in OPEN)
    op.execute("UPDATE milestone SET status = 'submitted', submitted_at = CURRENT_TIMESTAMP "  # noqa: S608 (constants)
               "WHERE status = 'done' AND order_id IN (SELECT id FROM purchase_order "
               f"WHERE status IN ({open_orders}))")
    op.execute("UPDATE milestone SET status = 'approved', approved_by = 'completion', "
               "submitted_at = completed_at, decided_at = completed_at WHERE status = 'done'")
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.create_check_constraint(batch_op.f('ck_milestone_status'), _in(STATUSES))
        batch_op.create_check_constraint(batch_op.f('ck_milestone_released_not_negative'),
                                         'released_amount >= 0')


    with op.batch_alter_table('settlement_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='order'))
        batch_op.add_column(sa.Column('posting', sa.String(length=32), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_settlement_item_order_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_settlement_item_posting'), ['posting'])
        batch_op.create_index(batch_op.f('ix_settlement_item_order_id'), ['order_id'],
                              unique=False)
        batch_op.create_check_constraint(batch_op.f('ck_settlement_item_kind'),
                                         "kind in ('order', 'release', 'clawback')")
        batch_op.create_check_constraint(batch_op.f('ck_settlement_item_kind_posting'),
                                         "(kind = 'order') = (posting IS NULL)")
    op.create_index('uq_settlement_item_whole_order', 'settlement_item', ['order_id'],
                    unique=True, sqlite_where=sa.text('posting IS NULL'),
                    postgresql_where=sa.text('posting IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_settlement_item_whole_order', table_name='settlement_item')
    op.execute("DELETE FROM settlement_item WHERE posting IS NOT NULL")
    with op.batch_alter_table('settlement_item', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_settlement_item_kind_posting'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_settlement_item_kind'), type_='check')
        batch_op.drop_index(batch_op.f('ix_settlement_item_order_id'))
        batch_op.drop_constraint(batch_op.f('uq_settlement_item_posting'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_settlement_item_order_id'),
                                          ['order_id'])
        batch_op.drop_column('posting')
        batch_op.drop_column('kind')
    op.execute("UPDATE milestone SET status = 'done' WHERE status IN "
               "('submitted', 'approved', 'disputed', 'ruled')")
    op.execute("UPDATE milestone SET status = 'pending' WHERE status = 'changes_requested'")
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_milestone_released_not_negative'),
                                 type_='check')
        batch_op.drop_constraint(batch_op.f('ck_milestone_status'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_milestone_submission_update_id_progress_update'),
                                 type_='foreignkey')
        batch_op.drop_column('release_posting')
        batch_op.drop_column('released_amount')
        batch_op.drop_column('auto_notice_at')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('decision_note')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('submission_update_id')
        batch_op.drop_column('submission_note')
        batch_op.drop_column('submitted_at')
        batch_op.alter_column('status', existing_type=sa.String(length=20),
                              type_=sa.String(length=16), existing_nullable=False)
        batch_op.create_check_constraint(batch_op.f('ck_milestone_status'),
                                         "status in ('pending', 'done')")
