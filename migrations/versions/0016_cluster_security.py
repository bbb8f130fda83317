"""cluster and security (issue 16): voucher programme regions; search replica cursors

- ``voucher_programme.regions``: region codes of the enterprises a programme funds (empty:
  any region). The demo programme (seed-demo-vouchers) is the Suzhou Industrial Park's.
- ``search_outbox`` on SQLite: AUTOINCREMENT, so ids are never reused after pruning;
- ``search_replica``: one row per search-index replica (one per app host), with the id of
  the last ``search_outbox`` row it has applied. The outbox is now an append-only log read
  by every replica; rows are pruned only below the lowest cursor and after a retention
  (catalog/search/replicas.py).

Credit codes were already unique (``uq_organisation_credit_code``, 0001); names that copy
another organisation's name or credit code are refused by the sign-up service.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.database import UTCDateTime

revision: str = '0016'
down_revision: str | Sequence[str] | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # A log read by cursors must never reuse an id once rows are pruned: AUTOINCREMENT
        # (PostgreSQL's sequence never goes back anyway).
        with op.batch_alter_table('search_outbox', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}):
            pass
    with op.batch_alter_table('voucher_programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('regions', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    op.create_table(
        'search_replica',
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('applied_id', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_search_replica')),
    )


def downgrade() -> None:
    op.drop_table('search_replica')
    with op.batch_alter_table('voucher_programme', schema=None) as batch_op:
        batch_op.drop_column('regions')
