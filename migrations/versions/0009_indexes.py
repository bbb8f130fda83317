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
- progress_update (order_id, percent) and milestone (order_id, status, share_bp): the
  percent done of an order (orders/sla.py: done_expr), evaluated for every order inside the
  SLA warning window, read from the index alone (index-only scans, no heap visits).

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


DONE_INDEXES = {
    "ix_progress_update_order_percent": ("progress_update", ["order_id", "percent"]),
    "ix_milestone_order_status_share": ("milestone", ["order_id", "status", "share_bp"]),
}


def upgrade() -> None:
    for name, columns in ORDER_INDEXES.items():
        op.create_index(name, "purchase_order", columns, unique=False)
    for name, (table, columns) in DONE_INDEXES.items():
        op.create_index(name, table, columns, unique=False)
    upgrade_catalog_version()
    upgrade_console_figures()


def downgrade() -> None:
    downgrade_console_figures()
    downgrade_catalog_version()
    for name, (table, _columns) in reversed(DONE_INDEXES.items()):
        op.drop_index(name, table_name=table)
    for name in reversed(ORDER_INDEXES):
        op.drop_index(name, table_name="purchase_order")


# --------------------------------------------------------------------------- catalogue version
# (added by the page-cache work, separate from the indexes above) catalog/page_cache.py: one
# row whose counter is bumped in the same transaction as every change the public catalogue
# pages show; cached pages and category counts are keyed by it.

def upgrade_catalog_version() -> None:
    table = op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade_catalog_version() -> None:
    op.drop_table("catalog_version")


# --------------------------------------------------------------------------- console figures
# (added by the console-scale work, separate from the above) orders/figures.py keeps a daily
# roll-up of orders placed / paid / GMV per category and currency and the orders per status,
# in the same transaction as each order change; the dashboard reads those instead of the
# whole order table. Three more purchase_order indexes back the progress list's per-state
# ordered reads (sort by amount, by placed time) and its per-category counts.

CONSOLE_INDEXES = {
    "ix_purchase_order_status_subtotal": ["status", "subtotal"],
    "ix_purchase_order_status_created_at": ["status", "created_at"],
    "ix_purchase_order_category_status": ["category_id", "status"],
    "ix_purchase_order_status_updated_at": ["status", "updated_at"],  # dashboard disputes
}


def upgrade_console_figures() -> None:
    for name, columns in CONSOLE_INDEXES.items():
        op.create_index(name, "purchase_order", columns, unique=False)
    # The dashboard's newest sign-ups (ORDER BY created_at DESC, id DESC LIMIT 20).
    op.create_index("ix_organisation_created_at", "organisation", ["created_at", "id"],
                    unique=False)
    op.create_table(
        "order_day_figure",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders_created", sa.BigInteger(), nullable=False),
        sa.Column("orders_paid", sa.BigInteger(), nullable=False),
        sa.Column("gmv", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "category_id", "currency",
                                name=op.f("pk_order_day_figure")),
    )
    op.create_table(
        "order_state_count",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_order_state_count")),
    )
    # Backfill from the orders already there (the same figures orders/figures.py: rebuild()
    # computes; `flask rebuild-console-figures` recomputes them at any time).
    if op.get_bind().dialect.name == "postgresql":
        created, paid = ("(created_at AT TIME ZONE 'UTC')::date",
                         "(paid_at AT TIME ZONE 'UTC')::date")
    else:
        created, paid = "date(created_at)", "date(paid_at)"
    op.execute(f"""
        INSERT INTO order_day_figure (day, category_id, currency, orders_created, orders_paid,
                                      gmv)
        SELECT day, category_id, currency, SUM(created), SUM(paid), SUM(gmv) FROM (
            SELECT {created} AS day, COALESCE(category_id, 0) AS category_id, currency,
                   COUNT(*) AS created, 0 AS paid, 0 AS gmv
            FROM purchase_order GROUP BY 1, 2, 3
            UNION ALL
            SELECT {paid}, COALESCE(category_id, 0), currency, 0, COUNT(*), SUM(subtotal)
            FROM purchase_order WHERE paid_at IS NOT NULL GROUP BY 1, 2, 3
        ) AS figures GROUP BY day, category_id, currency
    """)  # noqa: S608 (constants only)
    op.execute("INSERT INTO order_state_count (status, orders) "
               "SELECT status, COUNT(*) FROM purchase_order GROUP BY status")


def downgrade_console_figures() -> None:
    op.drop_table("order_state_count")
    op.drop_table("order_day_figure")
    op.drop_index("ix_organisation_created_at", table_name="organisation")
    for name in reversed(CONSOLE_INDEXES):
        op.drop_index(name, table_name="purchase_order")
