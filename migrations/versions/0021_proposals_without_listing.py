"""proposals and quote requests without a listing (institutions without listings answer needs)

A verified institution without published listings may answer a need it was invited to or
that is public on the board; when it wins, the order stands on the need, not on a listing:

- ``proposal.product_id`` may be NULL (no listing to place the order on);
- ``quote_request.product_id`` may be NULL, and two columns say what such a request is for:
  ``quote_request.title`` (the need's title) and ``quote_request.category_id`` (the need's
  sub-category: commission rate and contract type of the order).

Downgrade deletes nothing: it fails if rows without a listing exist (they are real awards).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | Sequence[str] | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('proposal', schema=None) as batch_op:
        batch_op.alter_column('product_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.alter_column('product_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('title', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('category_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_quote_request_category_id_category'),
                                    'category', ['category_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_quote_request_category_id_category'),
                                 type_='foreignkey')
        batch_op.drop_column('category_id')
        batch_op.drop_column('title')
        batch_op.alter_column('product_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('proposal', schema=None) as batch_op:
        batch_op.alter_column('product_id', existing_type=sa.Integer(), nullable=False)
