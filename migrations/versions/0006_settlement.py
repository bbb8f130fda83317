"""settlement: batches, provider statements and the orders in them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _figures() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False)
            for name in ('gross', 'refunds', 'voucher', 'fee', 'net')]


def upgrade() -> None:
    op.create_table('settlement_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    *_figures(),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_settlement_batch_period_order')),
    sa.CheckConstraint('sequence >= 1', name=op.f('ck_settlement_batch_sequence_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_settlement_batch_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_batch')),
    sa.UniqueConstraint('period_start', 'period_end', 'currency', 'sequence', name='uq_settlement_batch_period')
    )
    op.create_table('settlement_statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('provider_org_id', sa.Integer(), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    *_figures(),
    sa.Column('payout_reference', sa.String(length=64), nullable=True),
    sa.Column('paid_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(paid_at IS NULL) = (payout_reference IS NULL)', name=op.f('ck_settlement_statement_paid_reference')),
    sa.ForeignKeyConstraint(['batch_id'], ['settlement_batch.id'], name=op.f('fk_settlement_statement_batch_id_settlement_batch')),
    sa.ForeignKeyConstraint(['paid_by_id'], ['user_account.id'], name=op.f('fk_settlement_statement_paid_by_id_user_account')),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organisation.id'], name=op.f('fk_settlement_statement_provider_org_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_statement')),
    sa.UniqueConstraint('batch_id', 'provider_org_id', name='uq_settlement_statement_provider')
    )
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_statement_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_statement_provider_org_id'), ['provider_org_id'], unique=False)

    op.create_table('settlement_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    *_figures(),
    sa.ForeignKeyConstraint(['batch_id'], ['settlement_batch.id'], name=op.f('fk_settlement_item_batch_id_settlement_batch')),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'], name=op.f('fk_settlement_item_order_id_purchase_order')),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statement.id'], name=op.f('fk_settlement_item_statement_id_settlement_statement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_item')),
    sa.UniqueConstraint('order_id', name=op.f('uq_settlement_item_order_id'))
    )
    with op.batch_alter_table('settlement_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_item_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_item_statement_id'), ['statement_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('settlement_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_item_statement_id'))
        batch_op.drop_index(batch_op.f('ix_settlement_item_batch_id'))
    op.drop_table('settlement_item')
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_statement_provider_org_id'))
        batch_op.drop_index(batch_op.f('ix_settlement_statement_batch_id'))
    op.drop_table('settlement_statement')
    op.drop_table('settlement_batch')
