"""product: the (status, category) index also holds the institution

Matching a need counts every institution's published listings in the need's sub-category
(demand.matching.rank): with ``provider_id`` in the index that GROUP BY reads the index
alone instead of one table row per listing (bench/matching.py: thousands of rows per
sub-category at 100k listings). The new index serves every read the old one served (same
leading columns), so it replaces it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 06:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0022'
down_revision: str | Sequence[str] | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.create_index('ix_product_status_category_provider',
                              ['status', 'category_id', 'provider_id'], unique=False)
        batch_op.drop_index('ix_product_status_category')


def downgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.create_index('ix_product_status_category', ['status', 'category_id'],
                              unique=False)
        batch_op.drop_index('ix_product_status_category_provider')
