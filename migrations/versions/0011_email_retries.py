"""email_message: retry with back-off, give up on permanent refusals

- ``attempts``: failures of this message (a refused recipient, a temporary 4xx); a server
  that is down or refuses us does not count against the message;
- ``retry_after``: the earliest next try after a temporary failure (back-off);
- ``gave_up_at``: set on a permanent refusal (5xx) or after too many failures; the row is
  never tried again and shows in ``flask outbox``;
- a partial index over the rows still to be sent, the only ones ``send-mail`` reads.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.database import UTCDateTime

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "sent_at IS NULL AND gave_up_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('retry_after', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('gave_up_at', UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_email_message_pending', 'email_message', ['created_at', 'id'],
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index('ix_email_message_pending', table_name='email_message')
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_column('gave_up_at')
        batch_op.drop_column('retry_after')
        batch_op.drop_column('attempts')
