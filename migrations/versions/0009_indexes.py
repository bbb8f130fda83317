"""indexes for production load and scale

Measured with bench/scale.py (1M orders on PostgreSQL); each index is justified by an
EXPLAIN ANALYZE of the query that needed it (see the commit messages):

- purchase_order (status, due_at) and (status, accept_by): the SLA conditions of the
  monitors' console (orders/sla.py) filter one state by its deadline column; the progress
  list sorts by that deadline.
- purchase_order (status, completed_at) and (status, closed_at): a settlement run selects
  the orders completed or ruled on in its period (orders/settlement.py: candidates).
- purchase_order (paid_at, currency, subtotal): the dashboard's GMV series sums the
  subtotal of orders paid in the last 30 days / 12 months from the index alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op

import marketplace.database  # noqa: F401

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER_INDEXES = {
    "ix_purchase_order_status_due_at": ["status", "due_at"],
    "ix_purchase_order_status_accept_by": ["status", "accept_by"],
    "ix_purchase_order_status_completed_at": ["status", "completed_at"],
    "ix_purchase_order_status_closed_at": ["status", "closed_at"],
    "ix_purchase_order_paid_at": ["paid_at", "currency", "subtotal"],
}


def upgrade() -> None:
    for name, columns in ORDER_INDEXES.items():
        op.create_index(name, "purchase_order", columns, unique=False)


def downgrade() -> None:
    for name in reversed(ORDER_INDEXES):
        op.drop_index(name, table_name="purchase_order")
