"""monitors' console: no schema change (a documented no-op)

The console needs no table or column of its own:

- interventions are timeline rows (``order_event``: staff_note, deadline_extended,
  staff_nudge, cancel, resolve) plus ``audit_log`` rows, written in the same transaction;
- a deadline extension updates the existing ``purchase_order.due_at`` / ``accept_by``;
- the SLA status (orders/sla.py) is computed from existing columns, never stored, so it
  cannot go stale; its filters run on the (status, due_at) and (status, accept_by)
  indexes that 0009_indexes adds.

The revision stays in the chain so the history keeps a single head.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 23:20:00
"""

from collections.abc import Sequence

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to create: see the module docstring."""


def downgrade() -> None:
    """Nothing to drop: see the module docstring."""
