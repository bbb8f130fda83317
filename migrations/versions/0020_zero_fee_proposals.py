"""proposal and quote: a price of zero is allowed (zero-fee financial proposals)

A financial proposal's price is its service fee, and DESIGN.md §3 says a financial
service fee may be zero. Such a proposal must be able to win: award turns it into a quote
and a quote-mode order, so both CHECKs become ``price >= 0``:

- ``proposal``: ``ck_proposal_price_positive`` → ``ck_proposal_price_not_negative``;
- ``quote``: ``ck_quote_price_positive`` → ``ck_quote_price_not_negative`` (institutions'
  own quotes are still refused at zero by orders.quotes.send_quote).

Downgrade fails if zero prices exist (the old CHECK would not hold): they are real awards.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0020'
down_revision: str | Sequence[str] | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('proposal', 'quote')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'ck_{table}_price_positive'), type_='check')
            batch_op.create_check_constraint(batch_op.f(f'ck_{table}_price_not_negative'),
                                             'price >= 0')


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'ck_{table}_price_not_negative'),
                                     type_='check')
            batch_op.create_check_constraint(batch_op.f(f'ck_{table}_price_positive'),
                                             'price > 0')
