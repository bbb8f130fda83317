"""credibility_dirty: organisations whose credibility waits for a recompute

An order transition used to recompute the credibility of both parties inside the buyer's or
institution's request (12 queries and a snapshot write). Now the transition marks both
organisations here, in its own transaction, and `flask --app marketplace
refresh-credibility` (the jobs loop, or cron) recomputes them after commit.

- ``organisation_id`` (primary key, cascades with the organisation);
- ``since``: the oldest unprocessed mark; ``marks``: bumped by every mark, so the drain only
  deletes a row that nobody marked again while it was recomputing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credibility_dirty',
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('since', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('marks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_credibility_dirty_organisation_id_organisation'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organisation_id', name=op.f('pk_credibility_dirty'))
    )


def downgrade() -> None:
    op.drop_table('credibility_dirty')
