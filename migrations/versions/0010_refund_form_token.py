"""refund: one-time form token (UNIQUE) and the voucher part of a refund

- ``refund.form_token``: the refund form's one-time token, under a unique index, so a
  double-submitted form issues one refund (orders.payments.staff_refund);
- ``refund.voucher_amount``: the value a staff refund gave back to the innovation voucher
  (refunds are split between cash and voucher in proportion to the voucher's share);
- ``refund.payment_id`` may be NULL and ``amount`` zero when the voucher takes the whole
  refund (an order paid entirely by voucher): the CHECK becomes
  ``amount >= 0 and voucher_amount >= 0 and amount + voucher_amount > 0``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_CHECK = "amount >= 0 and voucher_amount >= 0 and amount + voucher_amount > 0"


def upgrade() -> None:
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voucher_amount', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('form_token', sa.String(length=64), nullable=True))
        batch_op.alter_column('payment_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(batch_op.f('ck_refund_amount_positive'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_refund_amounts_positive'), NEW_CHECK)
        batch_op.create_index('uq_refund_form_token', ['form_token'], unique=True)


def downgrade() -> None:
    op.execute("DELETE FROM refund WHERE payment_id IS NULL OR amount = 0")
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_index('uq_refund_form_token')
        batch_op.drop_constraint(batch_op.f('ck_refund_amounts_positive'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_refund_amount_positive'), 'amount > 0')
        batch_op.alter_column('payment_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('form_token')
        batch_op.drop_column('voucher_amount')
