"""reviews: two-way ratings of completed orders (review table; rating average and count
denormalised on product for pages and search)

Revision ID: 0004
Revises: 0003o
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003o'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('author_org_id', sa.Integer(), nullable=False),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('subject_org_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('quality', sa.Integer(), nullable=True),
    sa.Column('timeliness', sa.Integer(), nullable=True),
    sa.Column('communication', sa.Integer(), nullable=True),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.Column('clarity', sa.Integer(), nullable=True),
    sa.Column('cooperation', sa.Integer(), nullable=True),
    sa.Column('payment', sa.Integer(), nullable=True),
    sa.Column('score_x100', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hidden_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hidden_reason', sa.Text(), nullable=True),
    sa.Column('hidden_by_id', sa.Integer(), nullable=True),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('replied_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("side in ('buyer', 'provider')", name=op.f('ck_review_side')),
    sa.CheckConstraint('clarity IS NULL OR (clarity >= 1 AND clarity <= 5)', name=op.f('ck_review_clarity_range')),
    sa.CheckConstraint('communication IS NULL OR (communication >= 1 AND communication <= 5)', name=op.f('ck_review_communication_range')),
    sa.CheckConstraint('cooperation IS NULL OR (cooperation >= 1 AND cooperation <= 5)', name=op.f('ck_review_cooperation_range')),
    sa.CheckConstraint('payment IS NULL OR (payment >= 1 AND payment <= 5)', name=op.f('ck_review_payment_range')),
    sa.CheckConstraint('quality IS NULL OR (quality >= 1 AND quality <= 5)', name=op.f('ck_review_quality_range')),
    sa.CheckConstraint('score_x100 >= 100 AND score_x100 <= 500', name=op.f('ck_review_score_range')),
    sa.CheckConstraint('timeliness IS NULL OR (timeliness >= 1 AND timeliness <= 5)', name=op.f('ck_review_timeliness_range')),
    sa.CheckConstraint('value IS NULL OR (value >= 1 AND value <= 5)', name=op.f('ck_review_value_range')),
    sa.ForeignKeyConstraint(['author_org_id'], ['organisation.id'], name=op.f('fk_review_author_org_id_organisation')),
    sa.ForeignKeyConstraint(['author_user_id'], ['user_account.id'], name=op.f('fk_review_author_user_id_user_account')),
    sa.ForeignKeyConstraint(['hidden_by_id'], ['user_account.id'], name=op.f('fk_review_hidden_by_id_user_account')),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'], name=op.f('fk_review_order_id_purchase_order'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_review_product_id_product'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subject_org_id'], ['organisation.id'], name=op.f('fk_review_subject_org_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review')),
    sa.UniqueConstraint('order_id', 'side', name='uq_review_order_side')
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_subject_org_id'), ['subject_org_id'], unique=False)
        batch_op.create_index('ix_review_subject_published', ['subject_org_id', 'side', 'published_at'], unique=False)

    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rating_x100', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rating_count', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('rating_count')
        batch_op.drop_column('rating_x100')

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index('ix_review_subject_published')
        batch_op.drop_index(batch_op.f('ix_review_subject_org_id'))
        batch_op.drop_index(batch_op.f('ix_review_product_id'))
        batch_op.drop_index(batch_op.f('ix_review_order_id'))

    op.drop_table('review')
