"""product.title_alt, product.summary_alt: an optional second-language title and summary

A listing is written in one language (``title``, ``summary``); these hold the other, so a
Chinese reader sees a Chinese title first and an English reader an English one. Existing
listings keep their texts; NULL means the listing has one language only.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 03:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | Sequence[str] | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title_alt', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('summary_alt', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('summary_alt')
        batch_op.drop_column('title_alt')
