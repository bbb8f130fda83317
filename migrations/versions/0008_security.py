"""security: login throttling with lockout back-off (password-reset tokens need no table:
they are signed and bound to the password hash, so using one invalidates it)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'login_throttle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('lockouts', sa.Integer(), nullable=False),
        sa.Column('locked_until', marketplace.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_failure_at', marketplace.database.UTCDateTime(timezone=True),
                  nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttle')),
        sa.UniqueConstraint('email', name=op.f('uq_login_throttle_email')),
    )
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_locked_until'), ['locked_until'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_locked_until'))
    op.drop_table('login_throttle')
