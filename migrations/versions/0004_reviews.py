"""reviews: two-way ratings of completed orders (placeholder until filled in)

Revision ID: 0004
Revises: 0003o
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import marketplace.database  # noqa: F401

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003o'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
