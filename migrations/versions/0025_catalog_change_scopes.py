"""catalog_change: what each catalogue version changed, so cached pages are dropped by scope

Until now one site-wide catalogue version keyed every cached visitor page: any change (a
credibility recompute, one listing's price) emptied every cache in every worker. Each version
bump now also writes one row naming the scopes it touched (a listing, an institution, a
category, ... or ``*``); processes read the rows since the version they last saw and drop
only the pages of those scopes (catalog/page_cache.py, issue 17). Old rows are pruned as
new ones are written; a process that falls behind the pruning drops everything.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | Sequence[str] | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'catalog_change',
        sa.Column('version', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('version', name=op.f('pk_catalog_change')),
    )


def downgrade() -> None:
    op.drop_table('catalog_change')
