"""order_event.note_key/note_args: the platform's own timeline notes in the reader's language

Notes the platform writes on an order's timeline (a milestone submitted, an amount released,
a refund) were stored as English sentences, so a Chinese reader saw English under Chinese
headings. They are now stored as a key and its values and put into words when shown
(orders/timeline.py); ``note`` keeps the English text for exports and older rows.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | Sequence[str] | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('note_args', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.drop_column('note_args')
        batch_op.drop_column('note_key')
