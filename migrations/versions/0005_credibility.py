"""credibility: scores, breakdowns and history for both sides

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credibility_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('credibility_level', sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column('credibility_updated_at',
                                      marketplace.database.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_organisation_credibility_score'),
                              ['credibility_score'], unique=False)

    op.create_table('credibility_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.Column('computed_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score >= 0 and score <= 100',
                       name=op.f('ck_credibility_snapshot_score_range')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_credibility_snapshot_organisation_id_organisation'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credibility_snapshot'))
    )
    with op.batch_alter_table('credibility_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_credibility_snapshot_org_time',
                              ['organisation_id', 'computed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credibility_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_credibility_snapshot_org_time')
    op.drop_table('credibility_snapshot')

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_credibility_score'))
        batch_op.drop_column('credibility_updated_at')
        batch_op.drop_column('credibility_level')
        batch_op.drop_column('credibility_score')
