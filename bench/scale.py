"""Scale check: the monitors' console and the nightly jobs on a year of a busy supermarket.

Run by hand, not as a test:

    .venv/bin/python bench/scale.py              # 100k listings, 10k enterprises, 1M orders
    .venv/bin/python bench/scale.py --small      # 10x smaller, for a quick look
    .venv/bin/python bench/scale.py --database-url postgresql+psycopg://...  # existing database

Without ``--database-url`` it starts a throwaway PostgreSQL cluster the way ``scripts/test``
does (server binaries from /usr/lib/postgresql/*/bin, run as the postgres user when we are
root, data and socket in a temporary directory, listening on a free loopback port, fsync
off) and removes it at the end. The database given with ``--database-url`` is emptied
(its ``public`` schema is dropped), so never point it at one you care about.

Then it migrates to head and generates, in bulk (the demo loader for institutions and
enterprises, server-side ``INSERT ... SELECT`` for everything else, one per-order plan
computed in Python and copied in):

- the demo's 150 institutions, listings copied up to ``--listings`` (with their packages),
  ``--enterprises`` enterprises with their owners, staff logins;
- innovation-voucher programmes and vouchers;
- ``--orders`` orders over the last ~13 months in every state, with lines, payments,
  refunds, voucher redemptions, timeline events, milestones, progress updates and the
  ledger postings each state implies (orders/ledger.py), every order balancing to zero;
- settlement batches for the months already settled, and reviews of completed orders.

and measures, through the real app (Flask test client, logged in as staff), p50/p95 of the
console pages, and the time of the nightly credibility recompute and of last month's
settlement batch, printing a table of goal / measured / pass at the end.

The generator (``generate()``) is database-portable (SQLite too): tests/test_scale_generator.py
runs it at a small size on both databases and checks the data is consistent.
"""

# ruff: noqa: S608
# (Every SQL string here is assembled from constants of this file, never from input.)
from __future__ import annotations

import argparse
import bisect
import contextlib
import logging
import math
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, insert, select, text  # noqa: E402
from sqlalchemy import inspect as sa_inspect  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from catalog.models import Category, Package, Product  # noqa: E402
from marketplace.models import Organisation, User  # noqa: E402
from orders.models import CommissionRate, Voucher, VoucherProgramme  # noqa: E402

SEED = 20261123
DAY = 86_400
HOUR = 3_600
CURRENCY = "CNY"
DEFAULT_SIZES = {"listings": 100_000, "enterprises": 10_000, "orders": 1_000_000}

# Share of orders in each state: a year of history, most of it settled, a month or two of
# work in flight. The counts are exact (largest remainder), so tests can check them.
STATE_SHARES = {
    "settled": 0.555, "completed": 0.10, "cancelled": 0.08, "declined": 0.03,
    "resolved": 0.015, "disputed": 0.005, "pending_payment": 0.015, "paid": 0.02,
    "accepted": 0.025, "in_progress": 0.095, "delivered": 0.06,
}
# Platform commission per top-level category (basis points), written as CommissionRate rows
# so new orders placed in the app use the same rates.
TOP_RATES = {"finance": 200, "ip": 600, "evaluation": 500, "advisory": 800,
             "inspection": 500, "rnd-sharing": 400, "tech-transfer": 1000}
VOUCHER_SHARE_BP = 3000
BANK_TRANSFER_SHARE = 0.15
ON_TIME_SHARE = 0.85
MILESTONE_MIN_SUBTOTAL = 2_000_000  # orders from ¥20,000 carry three milestones
MILESTONES = ((1, "Kick-off and requirements confirmed", 3000, 3000),
              (2, "Main work delivered for review", 4000, 7000),
              (3, "Final report and hand-over", 3000, 10000))


def say_default(message: str) -> None:
    print(message, flush=True)


# =========================================================================== SQL dialect

class Dialect:
    """The few SQL spellings that differ between PostgreSQL and SQLite."""

    def __init__(self, name: str):
        self.name = name
        self.pg = name == "postgresql"

    def series(self, count: int) -> str:
        """A FROM item ``s`` with one column ``n`` = 1..count."""
        if self.pg:
            return f"generate_series(1, {int(count)}) AS s(n)"
        return (f"(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq "
                f"WHERE n < {int(count)}) SELECT n FROM seq) AS s")

    def ts(self, seconds: str) -> str:
        """A UTC timestamp from epoch seconds (as the column type stores it)."""
        if self.pg:
            return f"to_timestamp({seconds})"
        return f"strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000'"

    def day(self, seconds: str) -> str:
        if self.pg:
            return f"(to_timestamp({seconds}) AT TIME ZONE 'UTC')::date"
        return f"date({seconds}, 'unixepoch')"

    def true(self) -> str:
        return "true" if self.pg else "1"

    def false(self) -> str:
        return "false" if self.pg else "0"


def _timed(say: Callable[[str], object], timings: dict[str, float], label: str):
    @contextlib.contextmanager
    def block():
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        timings[label] = elapsed
        say(f"  {label:<38} {elapsed:7.1f} s")
    return block()


# =========================================================================== plan of orders

@dataclass
class Sizes:
    listings: int
    enterprises: int
    orders: int


def state_counts(total: int) -> dict[str, int]:
    """Exact number of orders per state for ``total`` (largest remainder)."""
    raw = {state: total * share for state, share in STATE_SHARES.items()}
    counts = {state: int(value) for state, value in raw.items()}
    left = total - sum(counts.values())
    for state in sorted(raw, key=lambda s: raw[s] - counts[s], reverse=True)[:left]:
        counts[state] += 1
    return counts


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def previous_month(now: datetime) -> tuple[date, date]:
    """First and last day of the calendar month before ``now``."""
    this_start = month_start(now)
    last_end = this_start - timedelta(days=1)
    return last_end.replace(day=1).date(), last_end.date()


def _half_up(amount: int, bp: int) -> int:
    return (amount * bp + 5000) // 10000


PLAN_COLUMNS = (
    "id", "n", "status", "method", "buyer_org_id", "buyer_user_id", "provider_org_id",
    "provider_user_id", "product_id", "package_id", "category_id", "quantity", "unit_price",
    "subtotal", "voucher_amount", "voucher_id", "commission_bp", "created_s", "paid_s",
    "accepted_s", "due_s", "delivered_s", "completed_s", "disputed_s", "closed_s",
    "accept_by_s", "payment_due_s", "percent", "ruling", "ruling_refund",
    "a_held", "a_transfer", "a_voucher", "a_capture", "a_release", "a_refund", "a_vreturn",
    "a_recognise", "a_fee", "a_payout", "pay_status", "settle_month",
)
_PLAN_TYPES = {"status": "VARCHAR(20)", "method": "VARCHAR(16)", "ruling": "VARCHAR(16)",
               "pay_status": "VARCHAR(16)", "settle_month": "VARCHAR(7)"}


_ROW_TEMPLATE = dict.fromkeys(PLAN_COLUMNS)
_ROW_TEMPLATE.update(percent=0, a_held=0, a_transfer=0, a_voucher=0, a_capture=0, a_release=0,
                     a_refund=0, a_vreturn=0, a_recognise=0, a_fee=0, a_payout=0,
                     pay_status="pending")


class Planner:
    """Decides every order in Python (deterministic from the seed), as plain tuples."""

    def __init__(self, rng: random.Random, now: int, prev_month_start: int,
                 products: list[tuple], buyers: list[tuple], provider_users: dict[int, int],
                 vouchers: dict[int, int], rates: dict[int, int]):
        self.rng = rng
        self.now = now
        self.prev_month_start = prev_month_start
        self.products = products
        self.buyers = buyers
        self.provider_users = provider_users
        self.vouchers = vouchers
        self.rates = rates
        first = month_start(datetime.fromtimestamp(now - 800 * DAY, UTC))
        self.month_starts, self.month_labels = [], []
        while first.timestamp() <= now + 62 * DAY:
            self.month_starts.append(int(first.timestamp()))
            self.month_labels.append(f"{first:%Y-%m}")
            first = month_start(first + timedelta(days=32))

    def _pick(self, items: list, power: float):
        # Popularity: a few listings and buyers get many orders, most get a few.
        return items[int(len(items) * self.rng.random() ** power)]

    def _u(self, lo: float, hi: float) -> int:
        return int(lo + (hi - lo) * self.rng.random())

    def _work(self, days: int) -> int:
        if self.rng.random() < ON_TIME_SHARE:
            return int(days * DAY * self.rng.uniform(0.4, 1.0))
        return days * DAY + self._u(HOUR, 12 * DAY)

    def order(self, status: str) -> dict:
        rng, u, now = self.rng, self._u, self.now
        (product_id, provider_id, category_id, eligible, package_id, price,
         days) = self._pick(self.products, 1.6)
        buyer_org, buyer_user = self._pick(self.buyers, 1.4)
        quantity = 2 if rng.random() < 0.08 else 1
        subtotal = price * quantity
        voucher_id = self.vouchers.get(buyer_org)
        voucher = 0
        if voucher_id and eligible and rng.random() < 0.7:
            voucher = _half_up(subtotal, VOUCHER_SHARE_BP)
        if not voucher:
            voucher_id = None
        due_amount = subtotal - voucher
        method = "bank_transfer" if rng.random() < BANK_TRANSFER_SHARE else "card"
        row = _ROW_TEMPLATE.copy()
        row.update(status=status, method=method, buyer_org_id=buyer_org,
                   buyer_user_id=buyer_user, provider_org_id=provider_id,
                   provider_user_id=self.provider_users.get(provider_id),
                   product_id=product_id, package_id=package_id, category_id=category_id,
                   quantity=quantity, unit_price=price, subtotal=subtotal,
                   voucher_amount=voucher, voucher_id=voucher_id,
                   commission_bp=self.rates.get(category_id, 500))

        def before_accept(accepted: int) -> None:
            row["accepted_s"] = accepted
            row["due_s"] = accepted + days * DAY
            paid = accepted - u(HOUR, 47 * HOUR)
            row["paid_s"] = paid
            row["created_s"] = paid - u(600, 30 * HOUR)

        if status == "pending_payment":
            row["created_s"] = now - u(0, 3 * DAY)
        elif status == "paid":
            row["paid_s"] = now - u(0, 80 * HOUR)  # some are past the 72 h acceptance limit
            row["created_s"] = row["paid_s"] - u(600, 30 * HOUR)
        elif status == "accepted":
            before_accept(now - u(0, 2 * DAY))
        elif status == "in_progress":
            before_accept(now - u(HOUR, days * DAY * 1.15))
        elif status == "delivered":
            row["delivered_s"] = now - u(0, 7 * DAY)
            before_accept(row["delivered_s"] - self._work(days))
        elif status == "disputed":
            row["disputed_s"] = now - u(0, 30 * DAY)
            before_accept(row["disputed_s"] - u(DAY, max(2, days) * DAY))
            if rng.random() < 0.5:
                row["delivered_s"] = row["disputed_s"] - u(HOUR, 5 * DAY)
                row["accepted_s"] = min(row["accepted_s"], row["delivered_s"] - HOUR)
        elif status in ("completed", "settled"):
            if status == "completed":
                completed = u(self.prev_month_start, now - HOUR)
            else:
                completed = u(now - 395 * DAY, self.prev_month_start - HOUR)
            row["completed_s"] = completed
            row["delivered_s"] = completed - u(HOUR, 7 * DAY)
            before_accept(row["delivered_s"] - self._work(days))
        elif status == "resolved":
            row["closed_s"] = u(self.prev_month_start, now - HOUR)  # awaiting settlement
            row["disputed_s"] = row["closed_s"] - u(DAY, 20 * DAY)
            before_accept(row["disputed_s"] - u(DAY, max(2, days) * DAY))
        elif status == "declined":
            row["closed_s"] = now - u(HOUR, 395 * DAY)
            row["paid_s"] = row["closed_s"] - u(HOUR, 72 * HOUR)
            row["created_s"] = row["paid_s"] - u(600, 30 * HOUR)
        elif status == "cancelled":
            row["closed_s"] = now - u(HOUR, 395 * DAY)
            if rng.random() < 0.5:  # after payment, before the work started
                row["paid_s"] = row["closed_s"] - u(HOUR, 60 * HOUR)
                row["created_s"] = row["paid_s"] - u(600, 30 * HOUR)
            else:
                row["created_s"] = row["closed_s"] - u(HOUR, 3 * DAY)
        row["payment_due_s"] = row["created_s"] + 3 * DAY
        if row["paid_s"] is not None:
            row["accept_by_s"] = row["paid_s"] + 72 * HOUR
        if status in ("declined", "cancelled", "pending_payment"):
            row["method"] = method = "card"
        if status == "resolved":
            kind = rng.random()
            if kind < 0.4:
                row["ruling"], refund = "none", 0
            elif kind < 0.8:
                row["ruling"] = "partial"
                refund = max(1, min(subtotal - 1, subtotal * rng.randint(20, 80) // 100))
            else:
                row["ruling"], refund = "full", subtotal
            row["ruling_refund"] = refund
        self._progress(row)
        self._money(row, due_amount)
        return row

    def _progress(self, row: dict) -> None:
        status = row["status"]
        if status in ("delivered", "completed", "settled"):
            row["percent"] = 100
        elif status in ("in_progress", "disputed", "resolved") and row["accepted_s"]:
            span = max(1, row["due_s"] - row["accepted_s"])
            until = row["disputed_s"] or self.now
            elapsed = min(1.0, max(0.0, (until - row["accepted_s"]) / span))
            # Most institutions keep up with the plan; some fall behind.
            pace = self.rng.uniform(0.9, 1.3) if self.rng.random() < 0.8 else self.rng.uniform(0.2, 0.7)
            row["percent"] = max(0, min(95, int(elapsed * pace * 100) // 5 * 5))

    def _money(self, row: dict, due_amount: int) -> None:
        """The amounts of each ledger posting this state implies (orders/ledger.py)."""
        status, card = row["status"], row["method"] == "card"
        subtotal, voucher, bp = row["subtotal"], row["voucher_amount"], row["commission_bp"]
        paid = row["paid_s"] is not None
        if not paid:
            row["pay_status"] = "canceled" if status == "cancelled" else "pending"
            return
        if card:
            row["a_held"] = due_amount
        else:
            row["a_transfer"] = due_amount
        row["a_voucher"] = voucher
        if status in ("paid", "accepted", "in_progress", "delivered", "disputed"):
            row["pay_status"] = "held" if card else "captured"
            return
        if status in ("declined", "cancelled"):
            row["pay_status"] = "released"
            row["a_release"] = due_amount
            row["a_vreturn"] = voucher
            return
        refund = row["ruling_refund"] or 0
        cash_back = min(refund, due_amount)
        voucher_back = refund - cash_back
        if card:
            row["a_capture"] = due_amount - cash_back
            row["a_release"] = cash_back
            row["pay_status"] = "captured" if row["a_capture"] else "released"
        else:
            row["a_refund"] = cash_back
            row["pay_status"] = "captured"
        row["a_vreturn"] = voucher_back
        base = subtotal - refund
        fee = _half_up(base, bp)  # orders.money.fee_split, in plain integers
        net = base - fee
        row["a_recognise"] = base
        row["a_fee"] = fee
        if status == "settled":
            row["a_payout"] = net
            k = bisect.bisect_right(self.month_starts, row["completed_s"]) - 1
            row["settle_month"] = self.month_labels[k]
            # Paid out on the fourth of the following month.
            row["closed_s"] = self.month_starts[k + 1] + 3 * DAY + 10 * HOUR


# =========================================================================== generator

def _insert_ids(session: Session, model, rows: list[dict]) -> list[int]:
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _set_sequences(conn: Connection, d: Dialect, tables: list[str]) -> None:
    if not d.pg:
        return
    for table in tables:
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT max(id) FROM {table}), 1))"))


def _has_table(conn: Connection, name: str) -> bool:
    return sa_inspect(conn).has_table(name)


def generate(engine: Engine, sizes: Sizes, *, seed: int = SEED, now: datetime | None = None,
             say: Callable[[str], object] = say_default) -> dict:
    """Fill an empty, migrated database. Returns counts and per-step timings."""
    from catalog.categories import seed_categories
    from marketplace.demo.catalogue import load_demo_data

    d = Dialect(engine.dialect.name)
    now_dt = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    now_s = int(now_dt.timestamp())
    prev_start, prev_end = previous_month(now_dt)
    prev_start_s = int(datetime(prev_start.year, prev_start.month, 1, tzinfo=UTC).timestamp())
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    result: dict = {"timings": timings, "now": now_dt, "settlement_period": (prev_start, prev_end)}
    say(f"Generating {sizes.listings:,} listings, {sizes.enterprises:,} enterprises and "
        f"{sizes.orders:,} orders on {d.name} (seed {seed}, now {now_dt:%Y-%m-%d %H:%M} UTC)")

    # ---- institutions, enterprises, staff: the demo loader (bulk inserts) -------------------
    with _timed(say, timings, "demo institutions + enterprises"), Session(engine) as session:
        seed_categories(session)
        load_demo_data(session, seed, enterprises=sizes.enterprises)
        category_rows = list(session.scalars(select(Category)))
        categories = {c.id: (c.parent_id, c.slug) for c in category_rows}
        for category in category_rows:
            if (category.parent_id is None and category.slug in TOP_RATES
                    and session.scalar(select(CommissionRate.id).where(
                        CommissionRate.category_id == category.id)) is None):
                session.add(CommissionRate(category_id=category.id,
                                           rate_bp=TOP_RATES[category.slug]))
        session.commit()

    # ---- listings copied up to the requested count ----------------------------------------
    with _timed(say, timings, "listings + packages"), engine.begin() as conn:
        base = conn.scalar(text("SELECT count(*) FROM product"))
        max_id = conn.scalar(text("SELECT max(id) FROM product"))
        extra = max(0, sizes.listings - base)
        if extra:
            columns = [c.name for c in Product.__table__.columns if c.name != "id"]
            exprs = []
            for name in columns:
                if name == "title":
                    exprs.append("t.title || ' · No. ' || s.n")
                elif name in ("view_count", "favourite_count", "sales_count"):
                    exprs.append(f"(t.{name} * ((s.n % 7) + 1)) / 4")
                else:
                    exprs.append(f"t.{name}")
            conn.execute(text(
                f"INSERT INTO product ({', '.join(columns)}) SELECT {', '.join(exprs)} "
                f"FROM {d.series(extra)} JOIN (SELECT p.*, row_number() OVER (ORDER BY p.id) - 1 "
                f"AS k FROM product p) t ON t.k = s.n % {base} ORDER BY s.n"))
            pcols = [c.name for c in Package.__table__.columns if c.name not in ("id", "product_id")]
            conn.execute(text(
                f"INSERT INTO package (product_id, {', '.join(pcols)}) "
                f"SELECT np.id, {', '.join('pk.' + c for c in pcols)} "
                f"FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM product "
                f"WHERE id > {max_id}) np "
                f"JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM product "
                f"WHERE id <= {max_id}) tp ON tp.k = np.k % {base} "
                f"JOIN package pk ON pk.product_id = tp.id ORDER BY np.id, pk.position"))
        result["listings"] = conn.scalar(text("SELECT count(*) FROM product"))
        result["packages"] = conn.scalar(text("SELECT count(*) FROM package"))

    # ---- what orders can be placed on, and by whom ------------------------------------------
    with _timed(say, timings, "order plan (Python)"), Session(engine) as session:
        first_package = (select(Package.product_id, Package.id, Package.price,
                                Package.delivery_days)
                         .where(Package.position == 0).subquery())
        products = [tuple(r) for r in session.execute(
            select(Product.id, Product.provider_id, Product.category_id, Product.voucher_eligible,
                   first_package.c.id, first_package.c.price, first_package.c.delivery_days)
            .join(first_package, first_package.c.product_id == Product.id)
            .join(Organisation, Organisation.id == Product.provider_id)
            .where(Product.status == "published", Product.pricing_mode == "packaged",
                   first_package.c.price > 0, Organisation.verification_status == "verified",
                   Organisation.suspended.is_(False))
            .order_by(Product.id))]
        rng.shuffle(products)
        buyers = [tuple(r) for r in session.execute(
            select(Organisation.id, User.id).join(User, User.organisation_id == Organisation.id)
            .where(Organisation.kind == "enterprise", User.is_org_owner.is_(True),
                   Organisation.verification_status == "verified")
            .order_by(Organisation.id))]
        rng.shuffle(buyers)
        provider_users = dict(session.execute(
            select(User.organisation_id, User.id).where(User.role == "provider",
                                                        User.is_org_owner.is_(True))).all())
        staff_id = session.scalar(select(User.id).where(User.role == "staff").order_by(User.id))
        parents = {cid: (categories[parent][1] if parent else slug)
                   for cid, (parent, slug) in categories.items()}
        rates = {cid: TOP_RATES.get(top, 500) for cid, top in parents.items()}

        # Voucher programmes: one district programme per region group; a voucher for every
        # third enterprise. Amounts are set once the orders are planned (so they balance).
        programme_rows = [
            {"name": f"{name} innovation voucher {now_dt.year}", "funder": funder,
             "currency": CURRENCY, "budget": 1, "remaining": 1,
             "valid_from": (now_dt - timedelta(days=400)).date(),
             "valid_until": (now_dt + timedelta(days=200)).date(), "eligible_category_ids": [],
             "max_share_bp": VOUCHER_SHARE_BP, "active": True, "created_by_id": staff_id,
             "created_at": now_dt - timedelta(days=400)}
            for name, funder in (("Suzhou Industrial Park", "SIP Science and Technology Bureau"),
                                 ("Suzhou High-tech District", "SND Science and Technology Bureau"),
                                 ("Kunshan", "Kunshan Science and Technology Bureau"))]
        programme_ids = _insert_ids(session, VoucherProgramme, programme_rows)
        holders = buyers[::3]
        voucher_rows = [
            {"programme_id": programme_ids[i % len(programme_ids)], "organisation_id": org,
             "code": f"SV{seed % 1000:03d}{i:08d}", "amount": 1, "balance": 1,
             "note": "Scale check", "granted_by_id": staff_id,
             "granted_at": now_dt - timedelta(days=399)}
            for i, (org, _user) in enumerate(holders)]
        voucher_ids = _insert_ids(session, Voucher, voucher_rows)
        vouchers = {org: vid for (org, _u), vid in zip(holders, voucher_ids, strict=True)}
        session.commit()

        planner = Planner(rng, now_s, prev_start_s, products, buyers, provider_users, vouchers,
                          rates)
        counts = state_counts(sizes.orders)
        statuses = [state for state, count in counts.items() for _ in range(count)]
        rng.shuffle(statuses)
        plan = [planner.order(status) for status in statuses]
        plan.sort(key=lambda row: row["created_s"])
        with engine.connect() as conn:
            base_order = conn.scalar(text("SELECT COALESCE(max(id), 0) FROM purchase_order"))
        for i, row in enumerate(plan, 1):
            row["id"] = base_order + i
            row["n"] = i
        result["state_counts"] = counts
        result["voucher_count"] = len(voucher_ids)

    with _timed(say, timings, "order plan copied in"):
        _load_plan(engine, d, plan)
    del plan

    with _timed(say, timings, "vouchers balanced"), engine.begin() as conn:
        # Each voucher was granted what its orders used plus a balance left; each programme's
        # budget is what it granted plus some left.
        used = ("COALESCE((SELECT sum(p.voucher_amount - p.a_vreturn) FROM scale_plan p "
                "WHERE p.voucher_id = voucher.id AND p.status NOT IN ('cancelled', 'declined')), 0)")
        conn.execute(text(f"UPDATE voucher SET amount = {used} + 5000000 + (id % 7) * 1000000, "
                          "balance = 5000000 + (id % 7) * 1000000"))
        conn.execute(text(
            "UPDATE voucher_programme SET budget = (SELECT sum(amount) FROM voucher v "
            "WHERE v.programme_id = voucher_programme.id) + 100000000, remaining = "
            "(SELECT sum(balance) FROM voucher v WHERE v.programme_id = voucher_programme.id) "
            "+ 100000000"))

    bulk = BulkLoad(engine, d, BULK_TABLES)
    with _timed(say, timings, "secondary indexes dropped"):
        bulk.drop_indexes()
    try:
        _fan_out(bulk, d, staff_id, now_s, say, timings, result)
    finally:
        with _timed(say, timings, "secondary indexes rebuilt"):
            bulk.restore_indexes()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE scale_plan"))
        _set_sequences(conn, d, ["purchase_order", "order_line", "payment", "refund",
                                 "voucher_redemption", "ledger_entry", "order_event",
                                 "milestone", "progress_update"])
    # The orders were written with raw SQL, past the listeners that keep the dashboard's
    # roll-up and per-state counters (orders/figures.py): recompute them from the orders.
    from orders import figures

    with _timed(say, timings, "console figures rebuilt"), Session(engine) as session:
        figures.rebuild(session)
        session.commit()
    if d.pg:
        with _timed(say, timings, "VACUUM ANALYZE"), engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
    with engine.connect() as conn:
        for table in ("purchase_order", "ledger_entry", "order_event", "payment",
                      "milestone", "progress_update", "voucher_redemption", "organisation"):
            result[table] = conn.scalar(text(f"SELECT count(*) FROM {table}"))
    result["generation_seconds"] = sum(timings.values())
    say(f"Generated in {result['generation_seconds']:.1f} s: " + ", ".join(
        f"{result[t]:,} {t}" for t in ("purchase_order", "ledger_entry", "order_event",
                                      "payment", "milestone", "progress_update")))
    return result


def _fan_out(bulk: BulkLoad, d: Dialect, staff_id: int | None, now_s: int, say,
             timings: dict[str, float], result: dict) -> None:
    """Every order's rows, derived from the plan by INSERT ... SELECT."""
    with _timed(say, timings, "orders + lines"), bulk.begin() as conn:
        _insert_orders(conn, d)
    with _timed(say, timings, "payments, refunds, redemptions"), bulk.begin() as conn:
        _insert_payments(conn, d, staff_id)
    with _timed(say, timings, "ledger entries"), bulk.begin() as conn:
        _insert_ledger(conn, d)
    with _timed(say, timings, "timeline events"), bulk.begin() as conn:
        _insert_events(conn, d, staff_id)
    with _timed(say, timings, "milestones + progress updates"), bulk.begin() as conn:
        _insert_progress(conn, d, now_s)
    with bulk.begin() as conn:
        if _has_table(conn, "settlement_item"):
            with _timed(say, timings, "settlement history"):
                _insert_settlements(conn, d, staff_id)
        if _has_table(conn, "review"):
            with _timed(say, timings, "reviews"):
                result["reviews"] = _insert_reviews(conn, d, now_s)


# Tables the order generation fills: their secondary indexes are dropped during the load and
# built again afterwards (faster than maintaining them row by row).
BULK_TABLES = ("purchase_order", "order_line", "payment", "refund", "voucher_redemption",
               "ledger_entry", "order_event", "milestone", "progress_update", "review",
               "settlement_item", "settlement_statement")


class BulkLoad:
    """PostgreSQL bulk-load helpers; on SQLite both are no-ops.

    - Secondary indexes (not those behind primary keys or unique constraints, which keep the
      data honest) of the loaded tables are dropped first and created again at the end.
    - As a superuser (the throwaway cluster's admin connection) foreign-key triggers are
      skipped per transaction (``session_replication_role = replica``): the generator writes
      consistent rows by construction and tests/test_scale_generator.py checks it does.
    """

    def __init__(self, engine: Engine, d: Dialect, tables: tuple[str, ...]):
        self.engine, self.d, self.tables = engine, d, tables
        self.saved: list[str] = []
        self.superuser = False
        if d.pg:
            with engine.connect() as conn:
                self.superuser = bool(conn.scalar(text(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")))

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            if self.superuser:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn

    def drop_indexes(self) -> None:
        if not self.d.pg:
            return
        with self.engine.begin() as conn:
            rows = conn.execute(text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
                "current_schema() AND i.tablename = ANY(:tables) AND NOT EXISTS (SELECT 1 FROM "
                "pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.indexname"),
                {"tables": list(self.tables)}).all()
            for name, definition in rows:
                conn.execute(text(f'DROP INDEX "{name}"'))
                self.saved.append(definition)

    def restore_indexes(self) -> None:
        with self.engine.begin() as conn:
            for definition in self.saved:
                conn.execute(text(definition))
        self.saved = []


def _load_plan(engine: Engine, d: Dialect, plan: list[dict]) -> None:
    columns = ", ".join(f"{c} {_PLAN_TYPES.get(c, 'BIGINT')}" for c in PLAN_COLUMNS)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS scale_plan"))
        conn.execute(text(f"CREATE TABLE scale_plan ({columns})"))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if d.pg:
            with cursor.copy(f"COPY scale_plan ({', '.join(PLAN_COLUMNS)}) FROM STDIN") as copy:
                for row in plan:
                    copy.write_row([row[c] for c in PLAN_COLUMNS])
        else:
            marks = ", ".join("?" for _ in PLAN_COLUMNS)
            cursor.executemany(f"INSERT INTO scale_plan VALUES ({marks})",
                               ([row[c] for c in PLAN_COLUMNS] for row in plan))
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("CREATE UNIQUE INDEX ix_scale_plan_id ON scale_plan (id)"))
        conn.execute(text("CREATE INDEX ix_scale_plan_voucher ON scale_plan (voucher_id)"))
        if d.pg:
            conn.execute(text("ANALYZE scale_plan"))


def _ts(d: Dialect, column: str) -> str:
    return d.ts(column)  # NULL stays NULL on both databases


def _insert_orders(conn: Connection, d: Dialect) -> None:
    ts = lambda c: _ts(d, c)  # noqa: E731
    number = ("'SO-' || " + ("to_char(to_timestamp(p.created_s) AT TIME ZONE 'UTC', 'YYMMDD')"
                             if d.pg else "substr(strftime('%Y%m%d', p.created_s, 'unixepoch'), 3)")
              + " || '-' || p.id")
    conn.execute(text(f"""
        INSERT INTO purchase_order (id, number, kind, status, version, buyer_org_id,
            buyer_user_id, provider_org_id, product_id, category_id, title, currency, subtotal,
            voucher_amount, commission_bp, requirements, payment_method, bank_reference, due_at,
            payment_due_at, paid_at, accept_by, accepted_at, delivered_at, completed_at,
            closed_at, decline_reason, ruling, ruling_refund, created_at, updated_at)
        SELECT p.id, {number}, 'package', p.status, 3, p.buyer_org_id, p.buyer_user_id,
            p.provider_org_id, p.product_id, p.category_id,
            substr(pr.title || ' · ' || pk.name, 1, 200), '{CURRENCY}', p.subtotal,
            p.voucher_amount, p.commission_bp, 'Please see the attached requirements.',
            p.method, CASE WHEN p.method = 'bank_transfer' THEN 'ISB' || p.id END,
            {ts('p.due_s')}, {ts('p.payment_due_s')}, {ts('p.paid_s')}, {ts('p.accept_by_s')},
            {ts('p.accepted_s')}, {ts('p.delivered_s')}, {ts('p.completed_s')},
            {ts('p.closed_s')},
            CASE WHEN p.status = 'declined' THEN 'Fully booked for the requested period.' END,
            p.ruling, p.ruling_refund, {ts('p.created_s')},
            {ts('COALESCE(p.closed_s, p.completed_s, p.delivered_s, p.accepted_s, p.paid_s, p.created_s)')}
        FROM scale_plan p JOIN product pr ON pr.id = p.product_id
        JOIN package pk ON pk.id = p.package_id ORDER BY p.id"""))
    conn.execute(text("""
        INSERT INTO order_line (order_id, product_id, package_id, product_title, package_name,
            unit_price, quantity, delivery_days, deliverables)
        SELECT p.id, p.product_id, p.package_id, pr.title, pk.name, p.unit_price, p.quantity,
            pk.delivery_days, pk.deliverables
        FROM scale_plan p JOIN product pr ON pr.id = p.product_id
        JOIN package pk ON pk.id = p.package_id ORDER BY p.id"""))


def _insert_payments(conn: Connection, d: Dialect, staff_id: int | None) -> None:
    ts = lambda c: _ts(d, c)  # noqa: E731
    amount = "(p.subtotal - p.voucher_amount)"
    authorised = (f"CASE WHEN p.method = 'card' AND p.paid_s IS NOT NULL THEN {amount} "
                  "ELSE 0 END")
    captured = ("CASE WHEN p.method = 'card' THEN p.a_capture "
                "WHEN p.paid_s IS NOT NULL THEN p.a_transfer ELSE 0 END")
    conn.execute(text(f"""
        INSERT INTO payment (id, order_id, method, status, currency, amount, amount_authorised,
            amount_captured, amount_refunded, stripe_payment_intent_id, card_brand, card_last4,
            received_by_id, received_reference, created_at, updated_at, authorised_at,
            captured_at)
        SELECT p.id, p.id, p.method, p.pay_status, '{CURRENCY}', {amount}, {authorised},
            {captured}, p.a_refund,
            CASE WHEN p.method = 'card' THEN 'pi_scale_' || p.id END,
            CASE WHEN p.method = 'card' THEN 'visa' END,
            CASE WHEN p.method = 'card' THEN '4242' END,
            CASE WHEN p.method = 'bank_transfer' AND p.paid_s IS NOT NULL THEN {staff_id or 'NULL'} END,
            CASE WHEN p.method = 'bank_transfer' AND p.paid_s IS NOT NULL THEN 'BOC-' || p.id END,
            {ts('p.created_s')}, {ts('COALESCE(p.closed_s, p.completed_s, p.paid_s, p.created_s)')},
            CASE WHEN p.method = 'card' THEN {ts('p.paid_s')} END,
            CASE WHEN p.method = 'bank_transfer' THEN {ts('p.paid_s')}
                 WHEN p.a_capture > 0 THEN {ts('COALESCE(p.completed_s, p.closed_s)')} END
        FROM scale_plan p ORDER BY p.id"""))
    conn.execute(text(f"""
        INSERT INTO refund (payment_id, order_id, amount, status, reason, created_by_id,
            created_at)
        SELECT p.id, p.id, p.a_refund, 'succeeded', 'Dispute ruling: partial or full refund',
            {staff_id or 'NULL'}, {ts('p.closed_s')}
        FROM scale_plan p WHERE p.a_refund > 0 ORDER BY p.id"""))
    conn.execute(text(f"""
        INSERT INTO voucher_redemption (voucher_id, order_id, amount, returned, created_at)
        SELECT p.voucher_id, p.id, p.voucher_amount,
            CASE WHEN p.status IN ('cancelled', 'declined') THEN p.voucher_amount
                 ELSE p.a_vreturn END, {ts('p.created_s')}
        FROM scale_plan p WHERE p.voucher_amount > 0 ORDER BY p.id"""))


# (kind, [(account, sign, amount column)], time column, memo)
POSTINGS = (
    ("held", [("buyer_funds_held", 1, "a_held"), ("escrow", -1, "a_held")], "paid_s",
     "Card payment authorised and held"),
    ("transfer", [("platform_cash", 1, "a_transfer"), ("escrow", -1, "a_transfer")], "paid_s",
     "Bank transfer received"),
    ("voucher", [("voucher_receivable", 1, "a_voucher"), ("escrow", -1, "a_voucher")], "paid_s",
     "Innovation voucher applied"),
    ("capture", [("platform_cash", 1, "a_capture"), ("buyer_funds_held", -1, "a_capture")],
     "COALESCE(completed_s, closed_s)", "Card payment captured"),
    ("release", [("escrow", 1, "a_release"), ("buyer_funds_held", -1, "a_release")],
     "COALESCE(completed_s, closed_s)", "Card hold released to the buyer"),
    ("refund", [("escrow", 1, "a_refund"), ("platform_cash", -1, "a_refund")], "closed_s",
     "Refund to the buyer"),
    ("voucher_return", [("escrow", 1, "a_vreturn"), ("voucher_receivable", -1, "a_vreturn")],
     "COALESCE(completed_s, closed_s)", "Voucher value given back"),
    ("recognise", [("escrow", 1, "a_recognise"), ("platform_fee_revenue", -1, "a_fee"),
                   ("provider_payable", -1, "a_recognise - a_fee")],
     "COALESCE(completed_s, closed_s)", "Earned: platform fee, rest payable to the institution"),
    ("payout", [("provider_payable", 1, "a_payout"), ("platform_cash", -1, "a_payout")],
     "closed_s", "Paid out to the institution"),
)


def _insert_ledger(conn: Connection, d: Dialect) -> None:
    for kind, lines, moment, memo in POSTINGS:
        guard = lines[0][2]
        selects = []
        for account, sign, amount in lines:
            selects.append(
                f"SELECT id AS order_id, 'o' || id || '-{kind}' AS posting, '{kind}' AS kind, "
                f"'{account}' AS account, {'-' if sign < 0 else ''}({amount}) AS amount, "
                f"{d.ts(moment)} AS created_at FROM scale_plan "
                f"WHERE {guard} > 0 AND ({amount}) <> 0")
        conn.execute(text(
            "INSERT INTO ledger_entry (order_id, posting, kind, account, amount, currency, memo, "
            f"created_at) SELECT order_id, posting, kind, account, amount, '{CURRENCY}', "
            f"'{memo}', created_at FROM ({' UNION ALL '.join(selects)}) x "
            "ORDER BY created_at, order_id, account"))  # appended in time order, as in use


# (name, actor role, from, to, time column, condition, note)
EVENTS = (
    ("placed", "buyer", None, "pending_payment", "created_s", "1 = 1", "Order placed (1 item)."),
    ("pay", "system", "pending_payment", "paid", "paid_s", "paid_s IS NOT NULL",
     "payment received; funds are held"),
    ("accept", "provider", "paid", "accepted", "accepted_s", "accepted_s IS NOT NULL",
     "accepted the order"),
    ("start", "provider", "accepted", "in_progress", "accepted_s + 3600",
     "accepted_s IS NOT NULL AND status <> 'accepted'", "started work"),
    ("deliver", "provider", "in_progress", "delivered", "delivered_s",
     "delivered_s IS NOT NULL", "delivered the work"),
    ("complete", "buyer", "delivered", "completed", "completed_s", "completed_s IS NOT NULL",
     "accepted the delivery; the order is complete"),
    ("settle", "system", "completed", "settled", "closed_s", "status = 'settled'",
     "settled the order with the institution"),
    ("dispute", "buyer", "in_progress", "disputed", "disputed_s", "disputed_s IS NOT NULL",
     "The report misses the agreed scope."),
    ("resolve", "staff", "disputed", "resolved", "closed_s", "status = 'resolved'",
     "Ruled on the dispute after reading the thread."),
    ("decline", "provider", "paid", "declined", "closed_s", "status = 'declined'",
     "Fully booked for the requested period."),
    ("cancel", "buyer", "pending_payment", "cancelled", "closed_s",
     "status = 'cancelled' AND paid_s IS NULL", "cancelled the order"),
    ("cancel", "buyer", "paid", "cancelled", "closed_s",
     "status = 'cancelled' AND paid_s IS NOT NULL", "cancelled the order"),
)


def _insert_events(conn: Connection, d: Dialect, staff_id: int | None) -> None:
    actor = {"buyer": "buyer_user_id", "provider": "provider_user_id",
             "staff": str(staff_id or "NULL"), "system": "NULL"}
    selects = []
    for name, role, from_status, to_status, moment, condition, note in EVENTS:
        selects.append(
            f"SELECT id AS order_id, '{name}' AS name, {actor[role]} AS actor_id, "
            f"'{role}' AS actor_role, {repr(from_status) if from_status else 'NULL'} AS from_status, "
            f"'{to_status}' AS to_status, '{note}' AS note, {moment} AS at FROM scale_plan "
            f"WHERE {condition}")
    conn.execute(text(
        "INSERT INTO order_event (order_id, name, actor_id, actor_role, from_status, to_status, "
        f"note, created_at) SELECT order_id, name, actor_id, actor_role, from_status, to_status, "
        f"note, {d.ts('at')} FROM ({' UNION ALL '.join(selects)}) x ORDER BY at, order_id"))


def _insert_progress(conn: Connection, d: Dialect, now_s: int) -> None:
    steps = " UNION ALL ".join(
        f"SELECT {pos} AS pos, '{title}' AS title, {share} AS share, {cum} AS cum"
        for pos, title, share, cum in MILESTONES)
    done = ("(p.status IN ('delivered', 'completed', 'settled') "
            "OR (p.status IN ('in_progress', 'disputed', 'resolved') AND p.percent >= m.cum / 100))")
    due = "(p.accepted_s + (p.due_s - p.accepted_s) * m.cum / 10000)"
    conn.execute(text(f"""
        INSERT INTO milestone (order_id, position, title, share_bp, due_date, status,
            completed_at, created_at)
        SELECT p.id, m.pos, m.title, m.share, {d.day(due)},
            CASE WHEN {done} THEN 'approved' ELSE 'pending' END,
            CASE WHEN {done} THEN {d.ts(f'CASE WHEN {due} < {now_s} THEN {due} ELSE p.accepted_s END')} END,
            {d.ts('p.accepted_s')}
        FROM scale_plan p CROSS JOIN ({steps}) m
        WHERE p.accepted_s IS NOT NULL AND p.subtotal >= {MILESTONE_MIN_SUBTOTAL}
        ORDER BY p.id, m.pos"""))
    # A mid-way progress note on work in flight, and the delivery note (100 %) on every
    # delivered order.
    conn.execute(text(f"""
        INSERT INTO progress_update (order_id, author_id, percent, note, is_delivery, created_at)
        SELECT id, provider_user_id, percent, note, is_delivery, {d.ts('at')} FROM (
            SELECT id, provider_user_id, percent, 'Work under way: drafts shared with the client.'
                AS note, {d.false()} AS is_delivery,
                accepted_s + (COALESCE(disputed_s, delivered_s, {now_s}) - accepted_s) / 2 AS at
            FROM scale_plan WHERE accepted_s IS NOT NULL AND percent > 0 AND percent < 100
            UNION ALL
            SELECT id, provider_user_id, 100, 'Final deliverables uploaded.', {d.true()},
                delivered_s
            FROM scale_plan WHERE delivered_s IS NOT NULL) x
        ORDER BY id, at"""))


def _insert_settlements(conn: Connection, d: Dialect, staff_id: int | None) -> None:
    """Past months' batches: one per month, a statement per provider, an item per order
    (figures as the ledger has them), every statement paid out."""
    months = conn.execute(text(
        "SELECT settle_month, count(*), sum(subtotal), sum(COALESCE(ruling_refund, 0)), "
        "sum(voucher_amount - a_vreturn), sum(a_fee), sum(a_payout), max(closed_s) "
        "FROM scale_plan WHERE status = 'settled' GROUP BY settle_month ORDER BY settle_month"
    )).all()
    conn.execute(text("CREATE TABLE scale_batch (settle_month VARCHAR(7), batch_id BIGINT)"))
    for month, count, gross, refunds, voucher, fee, net, closed in months:
        first = date(int(month[:4]), int(month[5:]), 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        batch_id = conn.execute(text(
            "INSERT INTO settlement_batch (period_start, period_end, sequence, currency, "
            "order_count, gross, refunds, voucher, fee, net, created_by_id, created_at) "
            "VALUES (:first, :last, 1, :currency, :count, :gross, :refunds, :voucher, :fee, :net, "
            ":staff, :created) RETURNING id"),
            {"first": first, "last": last, "currency": CURRENCY, "count": count,
             "gross": gross, "refunds": refunds, "voucher": voucher, "fee": fee, "net": net,
             "staff": staff_id, "created": datetime.fromtimestamp(closed, UTC)}).scalar_one()
        conn.execute(text("INSERT INTO scale_batch VALUES (:month, :batch)"),
                     {"month": month, "batch": batch_id})
    conn.execute(text(f"""
        INSERT INTO settlement_statement (batch_id, provider_org_id, order_count, gross, refunds,
            voucher, fee, net, payout_reference, paid_at, paid_by_id)
        SELECT b.batch_id, p.provider_org_id, count(*), sum(p.subtotal),
            sum(COALESCE(p.ruling_refund, 0)), sum(p.voucher_amount - p.a_vreturn), sum(p.a_fee),
            sum(p.a_payout), 'PAY-' || p.settle_month || '-' || p.provider_org_id,
            {d.ts('max(p.closed_s)')}, {staff_id or 'NULL'}
        FROM scale_plan p JOIN scale_batch b ON b.settle_month = p.settle_month
        WHERE p.status = 'settled'
        GROUP BY b.batch_id, p.settle_month, p.provider_org_id
        ORDER BY b.batch_id, p.provider_org_id"""))
    conn.execute(text("""
        INSERT INTO settlement_item (batch_id, statement_id, order_id, gross, refunds, voucher,
            fee, net)
        SELECT s.batch_id, s.id, p.id, p.subtotal, COALESCE(p.ruling_refund, 0),
            p.voucher_amount - p.a_vreturn, p.a_fee, p.a_payout
        FROM scale_plan p JOIN scale_batch b ON b.settle_month = p.settle_month
        JOIN settlement_statement s ON s.batch_id = b.batch_id
            AND s.provider_org_id = p.provider_org_id
        WHERE p.status = 'settled' ORDER BY p.id"""))
    # As run_period does: the orders a batch holds carry the batch's time (migration 0012).
    conn.execute(text("""
        UPDATE purchase_order SET batched_at = (
            SELECT settlement_batch.created_at FROM settlement_item
            JOIN settlement_batch ON settlement_batch.id = settlement_item.batch_id
            WHERE settlement_item.order_id = purchase_order.id)
        WHERE id IN (SELECT order_id FROM settlement_item)"""))
    conn.execute(text("DROP TABLE scale_batch"))


def _insert_reviews(conn: Connection, d: Dialect, now_s: int) -> int:
    """Two-way reviews of completed, settled and ruled orders: the buyer rates about two
    orders in three, the institution about one in two; late work gets a lower timeliness
    score. Published when both are in, or once the 14-day blind window has passed."""
    blind = 14 * DAY
    done = "COALESCE(completed_s, closed_s)"
    base = f"""
        SELECT id, buyer_org_id, buyer_user_id, provider_org_id, provider_user_id, product_id,
            delivered_s, due_s, {done} AS done_s,
            CASE WHEN (id * 31) % 100 < 65 AND {done} + (id % 10) * {DAY} + 3 * {HOUR} < {now_s}
                 THEN {done} + (id % 10) * {DAY} + 3 * {HOUR} END AS buyer_s,
            CASE WHEN (id * 17) % 100 < 50 AND {done} + (id % 6) * {DAY} + 5 * {HOUR} < {now_s}
                 THEN {done} + (id % 6) * {DAY} + 5 * {HOUR} END AS provider_s
        FROM scale_plan WHERE status IN ('completed', 'settled', 'resolved')"""
    published = f"""CASE WHEN b.buyer_s IS NOT NULL AND b.provider_s IS NOT NULL
            THEN CASE WHEN b.buyer_s > b.provider_s THEN b.buyer_s ELSE b.provider_s END
            WHEN b.done_s + {blind} <= {now_s} THEN b.done_s + {blind} END"""

    def score(salt: int, low_when: str = "1 = 0") -> str:
        return (f"CASE WHEN {low_when} THEN 2 + (b.id * {salt}) % 2 "
                f"WHEN (b.id * {salt}) % 29 = 0 THEN 1 + (b.id * {salt}) % 2 "
                f"ELSE 3 + ((b.id * {salt}) % 7 + 1) / 3 END")

    quality, timeliness = score(3), score(5, "b.delivered_s > b.due_s")
    communication, value = score(7), score(11)
    clarity, cooperation, payment = score(13), score(17), score(19)
    conn.execute(text(f"""
        INSERT INTO review (order_id, side, author_org_id, author_user_id, subject_org_id,
            product_id, quality, timeliness, communication, value, score_x100, body, created_at,
            published_at)
        SELECT id, 'buyer', buyer_org_id, buyer_user_id, provider_org_id, product_id, q, t, c, v,
            (2 * 100 * (q + t + c + v) + 4) / 8, body, {d.ts('buyer_s')}, {d.ts('pub')}
        FROM (SELECT b.*, {quality} AS q, {timeliness} AS t, {communication} AS c, {value} AS v,
                {published} AS pub,
                CASE WHEN b.id % 3 = 0 THEN 'Clear report, delivered as agreed.'
                     WHEN b.id % 3 = 1 THEN '沟通顺畅，按时交付。' ELSE '' END AS body
              FROM ({base}) b WHERE b.buyer_s IS NOT NULL) r
        ORDER BY id"""))
    conn.execute(text(f"""
        INSERT INTO review (order_id, side, author_org_id, author_user_id, subject_org_id,
            product_id, clarity, cooperation, payment, score_x100, body, created_at,
            published_at)
        SELECT id, 'provider', provider_org_id, provider_user_id, buyer_org_id, product_id,
            cl, co, pa, (2 * 100 * (cl + co + pa) + 3) / 6, '', {d.ts('provider_s')},
            {d.ts('pub')}
        FROM (SELECT b.*, {clarity} AS cl, {cooperation} AS co, {payment} AS pa,
                {published} AS pub
              FROM ({base}) b WHERE b.provider_s IS NOT NULL) r
        ORDER BY id"""))
    conn.execute(text(
        "UPDATE product SET rating_count = r.n, rating_x100 = (2 * r.total + r.n) / (2 * r.n) "
        "FROM (SELECT product_id, count(*) AS n, sum(score_x100) AS total FROM review "
        "WHERE side = 'buyer' AND published_at IS NOT NULL AND hidden_at IS NULL "
        "GROUP BY product_id) r WHERE product.id = r.product_id"))
    return conn.scalar(text("SELECT count(*) FROM review"))


# =========================================================================== PostgreSQL

def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")])
    for candidate in reversed(found):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql "
                     "(apt-get install postgresql, or pass --database-url)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(say: Callable[[str], object] = say_default) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL cluster for the run, like scripts/test starts: yields the app's
    URL (an ordinary role owning the database) and a superuser URL for the bulk load, and
    removes the cluster afterwards (also on Ctrl-C or an error)."""
    bindir = _pg_bindir()
    as_root = os.geteuid() == 0
    owner = ["runuser", "-u", "postgres", "--"] if as_root else []
    # /tmp, not $TMPDIR: the postgres user must reach it and socket paths must stay short.
    workdir = Path(tempfile.mkdtemp(prefix="supermarket-scale.", dir="/tmp"))
    if as_root:
        shutil.chown(workdir, "postgres", "postgres")
    data, log = workdir / "data", workdir / "server.log"
    port, password, admin_password = _free_port(), secrets.token_hex(16), secrets.token_hex(16)
    started = False
    try:
        subprocess.run([*owner, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust",
                        "--auth-host=scram-sha-256"], check=True, capture_output=True)
        settings = f"""
# bench/scale.py: a disposable cluster, tuned for bulk loading over durability
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{workdir}'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 20
shared_buffers = 256MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
"""
        subprocess.run([*owner, "tee", "-a", str(data / "postgresql.conf")], input=settings,
                       text=True, check=True, capture_output=True)
        subprocess.run([*owner, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                        "-t", "60", "start"], check=True, capture_output=True)
        started = True
        version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                                 text=True).stdout.split()[2]
        say(f"Started a throwaway PostgreSQL {version} on 127.0.0.1:{port} ({workdir})")
        subprocess.run([*owner, str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-h", str(workdir), "-p", str(port), "-U", "postgres", "-d", "postgres"],
                       input=(f"ALTER ROLE postgres PASSWORD '{admin_password}';\n"
                              f"CREATE ROLE supermarket LOGIN PASSWORD '{password}';\n"
                              "CREATE DATABASE supermarket_scale OWNER supermarket "
                              "ENCODING 'UTF8' TEMPLATE template0;\n"),
                       text=True, check=True, capture_output=True)
        base = f"127.0.0.1:{port}/supermarket_scale"
        yield (f"postgresql+psycopg://supermarket:{password}@{base}",
               f"postgresql+psycopg://postgres:{admin_password}@{base}")
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or b"")
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        if log.exists():
            detail += log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"PostgreSQL set-up failed: {error.cmd[len(owner)]}\n{detail}") from None
    finally:
        if started:
            subprocess.run([*owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
        if started:
            say("Stopped and removed the throwaway PostgreSQL cluster.")


def reset_schema(url: str) -> None:
    from sqlalchemy import create_engine

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


# =========================================================================== measuring

@dataclass
class Figure:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


class QueryLog:
    """Statements (and their time) run by the app while it is switched on."""

    def __init__(self, engine: Engine):
        self.engine, self.on, self.rows = engine, False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["scale_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            elapsed = time.perf_counter() - conn.info.pop("scale_started", time.perf_counter())
            self.rows.append((elapsed, statement, parameters))


def _explain(engine: Engine, log: QueryLog, label: str, say, top: int) -> None:
    """EXPLAIN ANALYZE of the slowest statements of one request (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return
    slowest = sorted(log.rows, key=lambda row: row[0], reverse=True)[:top]
    for elapsed, statement, parameters in slowest:
        say(f"\n--- {label}: {elapsed * 1000:.1f} ms\n{statement}\n{parameters}")
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            say("\n".join(row[0] for row in cursor.fetchall()))
            raw.rollback()
        finally:
            raw.close()


def console_pages(session: Session, batch_id: int | None) -> list[tuple[str, str]]:
    """(label, URL) of the console pages to time, with filters on the busiest values."""
    from orders.models import Order

    open_states = ("paid", "accepted", "in_progress", "delivered", "disputed",
                   "pending_payment")
    busiest = session.execute(
        select(Order.provider_org_id, func.count()).where(Order.status.in_(open_states))
        .group_by(Order.provider_org_id).order_by(func.count().desc()).limit(1)).first()
    enterprise = session.execute(
        select(Order.buyer_org_id, func.count()).where(Order.status.in_(open_states))
        .group_by(Order.buyer_org_id).order_by(func.count().desc()).limit(1)).first()
    top = session.scalar(select(Category.id).where(Category.parent_id.is_(None))
                         .order_by(Category.position))
    open_count = session.scalar(select(func.count()).select_from(Order)
                                .where(Order.status.in_(open_states))) or 0
    deep = max(2, open_count // 24 // 2)
    # Keyset pagination: a deep page is the page after a cursor in the middle of the list
    # (an on-track order of the SLA sort, whose deadline is beyond the warning window).
    from datetime import UTC as _UTC

    from marketplace.console_service import Cursor, _as_micros
    later = datetime.now(_UTC) + timedelta(days=3, hours=1)
    beyond = session.scalar(select(func.count()).select_from(Order).where(
        Order.status == "in_progress", Order.due_at > later)) or 0
    middle = session.execute(
        select(Order.id, Order.due_at).where(Order.status == "in_progress", Order.due_at > later)
        .order_by(Order.due_at, Order.id).offset(beyond // 2).limit(1)).first()
    deep_cursor = Cursor(2, 0, _as_micros(middle[1]), middle[0]).encode() if middle else ""
    pages = [
        ("dashboard (30 days)", "/staff"),
        ("dashboard (12 months)", "/staff?period=12m"),
        ("progress: all open, SLA sort", "/staff/progress"),
        ("progress: provider filter", f"/staff/progress?provider={busiest[0] if busiest else ''}"),
        ("progress: enterprise filter",
         f"/staff/progress?enterprise={enterprise[0] if enterprise else ''}"),
        ("progress: category filter", f"/staff/progress?category={top}"),
        ("progress: state in_progress", "/staff/progress?state=in_progress"),
        ("progress: SLA overdue", "/staff/progress?sla=overdue"),
        ("progress: SLA at risk", "/staff/progress?sla=at_risk"),
        ("progress: sort amount desc", "/staff/progress?sort=amount&dir=desc"),
        ("progress: sort due date", "/staff/progress?sort=due"),
        ("progress: category+state+sort", f"/staff/progress?category={top}&state=in_progress"
                                          "&sort=created"),
        (f"progress: deep page {deep} (cursor)", f"/staff/progress?page={deep}"
                                                   f"&after={deep_cursor}"),
        (f"progress: deep page {deep} (cursor, back)", f"/staff/progress?page={deep}"
                                                         f"&before={deep_cursor}"),
        ("progress: deep page, sort amount (cursor)",
         f"/staff/progress?sort=amount&dir=desc&page={deep}&after=0~0~500000~0"),
        ("settlement: batch list", "/staff/settlement"),
    ]
    if batch_id:
        pages.append(("settlement: month's batch page", f"/staff/settlement/{batch_id}"))
        pages.append(("settlement: batch page 50", f"/staff/settlement/{batch_id}?page=50"))
    return pages


def login_as_staff(app):
    """A test client logged in through the login form, as the demo's staff member."""
    import re

    from marketplace.demo.catalogue import DEMO_PASSWORD, STAFF_EMAIL

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    token = token or re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": DEMO_PASSWORD,
                                           "csrf_token": token.group(1) if token else ""})
    if response.status_code != 302:
        raise SystemExit(f"Could not log in as {STAFF_EMAIL} (HTTP {response.status_code})")
    return client


def measure_pages(app, pages: list[tuple[str, str]], requests: int, *, explain: int = 0,
                  say=say_default) -> list[Figure]:
    from marketplace.database import db

    with app.app_context():
        log = QueryLog(db.engine) if explain else None
    client = login_as_staff(app)
    figures = []
    for label, url in pages:
        times, status = [], None
        for i in range(requests + 2):  # two warm-up requests
            if log is not None and i == 1:
                log.rows, log.on = [], True
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            if log is not None:
                log.on = False
            status = response.status_code
            if status != 200:
                break
            if i >= 2:
                times.append(elapsed)
            if log is not None and i == 1:
                with app.app_context():
                    _explain(db.engine, log, label, say, explain)
        if status != 200:
            say(f"  {label:<38} HTTP {status} at {url}")
            figures.append(Figure(f"{label}", "p95 < 300 ms", f"HTTP {status}", False))
            continue
        p50, p95 = statistics.median(times) * 1000, _percentile(times, 0.95) * 1000
        say(f"  {label:<38} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   ({url})")
        figures.append(Figure(label, "p95 < 300 ms", f"p50 {p50:.0f} / p95 {p95:.0f} ms",
                              p95 < 300))
    return figures


def _module(name: str, attribute: str):
    """A piece being written by another engineer, or None while it has not landed."""
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, attribute, None)


def measure_credibility(app, now: datetime, say=say_default) -> Figure:
    from marketplace.database import db

    recompute_all = _module("providers.credibility", "recompute_all")
    goal = "< 120 s"
    if recompute_all is None:
        say("  credibility recompute: not available yet (providers/credibility.py)")
        return Figure("nightly credibility recompute", goal, "not available yet", None)
    with app.app_context():
        started = time.perf_counter()
        report = recompute_all(db.session, now)
        db.session.commit()
        elapsed = time.perf_counter() - started
    say(f"  credibility recompute: {elapsed:.1f} s ({report})")
    return Figure("nightly credibility recompute", goal, f"{elapsed:.1f} s", elapsed < 120)


def measure_settlement(app, period_start: date, say=say_default) -> tuple[Figure, int | None]:
    from marketplace.database import db

    run_period = _module("orders.settlement", "run_period")
    month = _module("orders.settlement", "month")
    goal = "< 120 s"
    name = f"settlement batch {period_start:%Y-%m}"
    if run_period is None or month is None:
        say("  settlement batch: not available yet (orders/settlement.py)")
        return Figure(name, goal, "not available yet", None), None
    with app.app_context():
        staff = db.session.scalar(select(User).where(User.role == "staff").order_by(User.id))
        started = time.perf_counter()
        result = run_period(db.session, month(f"{period_start:%Y-%m}"), staff)
        db.session.commit()
        elapsed = time.perf_counter() - started
        batch = result.batch
        batch_id = batch.id if batch is not None else None
        detail = (f"{batch.order_count:,} orders, {len(batch.statements)} statements"
                  if batch is not None else "no batch")
    say(f"  settlement batch {period_start:%Y-%m}: {elapsed:.1f} s ({detail}, "
        f"{len(result.waiting)} waiting)")
    return Figure(name, goal, f"{elapsed:.1f} s ({detail})", elapsed < 120), batch_id


def print_summary(figures: list[Figure], say=say_default) -> None:
    width = max(len(f.name) for f in figures)
    measured = max(len(f.measured) for f in figures)
    say("")
    say(f"{'measure':<{width}}  {'goal':<14}  {'measured':<{measured}}  pass")
    say(f"{'-' * width}  {'-' * 14}  {'-' * measured}  ----")
    for f in figures:
        verdict = "-" if f.passed is None else ("yes" if f.passed else "NO")
        say(f"{f.name:<{width}}  {f.goal:<14}  {f.measured:<{measured}}  {verdict}")


# =========================================================================== main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Scale check of the monitors' console and the nightly jobs on PostgreSQL.")
    parser.add_argument("--listings", type=int, default=DEFAULT_SIZES["listings"])
    parser.add_argument("--enterprises", type=int, default=DEFAULT_SIZES["enterprises"])
    parser.add_argument("--orders", type=int, default=DEFAULT_SIZES["orders"])
    parser.add_argument("--small", action="store_true",
                        help="ten times smaller than the sizes given (a quick run)")
    parser.add_argument("--requests", type=int, default=20,
                        help="timed requests per console page (after two warm-up requests)")
    parser.add_argument("--database-url", default=None,
                        help="use this PostgreSQL database (its public schema is DROPPED and "
                             "recreated) instead of a throwaway cluster")
    parser.add_argument("--admin-database-url", default=None,
                        help="with --database-url: a superuser URL of the same database, used "
                             "for the bulk load (foreign-key triggers off: faster)")
    parser.add_argument("--skip-generate", action="store_true",
                        help="with --database-url: keep the data already there (migrate only)")
    parser.add_argument("--generate-only", action="store_true",
                        help="with --database-url: generate, measure nothing (then re-measure "
                             "with --skip-generate)")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="print EXPLAIN ANALYZE of the N slowest statements of each page")
    parser.add_argument("--only", default="credibility,settlement,pages",
                        help="what to measure, comma-separated: credibility, settlement, pages")
    parser.add_argument("--pages", default="",
                        help="only the console pages whose label contains this text")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if args.small:
        args.listings, args.enterprises, args.orders = (
            max(1, args.listings // 10), max(1, args.enterprises // 10), max(1, args.orders // 10))
    if (args.skip_generate or args.generate_only) and not args.database_url:
        parser.error("--skip-generate and --generate-only need --database-url")
    return args


def forget_batches(url: str, period_start: date) -> None:
    """Re-measuring on kept data: undo the measured period's batches, so the settlement run
    starts from the same state as the first time."""
    from marketplace.database import make_engine

    engine = make_engine(url)
    batches = "SELECT id FROM settlement_batch WHERE period_start = :start"
    with engine.begin() as conn:
        if _has_table(conn, "settlement_batch"):
            for table in ("settlement_item", "settlement_statement"):
                conn.execute(text(f"DELETE FROM {table} WHERE batch_id IN ({batches})"),
                             {"start": period_start})
            conn.execute(text(f"DELETE FROM audit_log WHERE target_type = 'settlement_batch' "
                              f"AND target_id IN ({batches})"), {"start": period_start})
            conn.execute(text("DELETE FROM settlement_batch WHERE period_start = :start"),
                         {"start": period_start})
    engine.dispose()


def run(url: str, args: argparse.Namespace, say=say_default, admin_url: str | None = None
        ) -> list[Figure]:
    from marketplace import create_app
    from marketplace.database import db, make_engine
    from marketplace.migrate import upgrade

    figures: list[Figure] = []
    if not args.skip_generate:
        reset_schema(url)
    started = time.perf_counter()
    upgrade(url)
    say(f"Migrated to head in {time.perf_counter() - started:.1f} s")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if not args.skip_generate:
        engine = make_engine(admin_url or url)
        result = generate(engine, Sizes(args.listings, args.enterprises, args.orders),
                          seed=args.seed, now=now, say=say)
        engine.dispose()
        figures.append(Figure(f"generate {args.orders:,} orders", "a few minutes",
                              f"{result['generation_seconds']:.0f} s", None))
    if args.generate_only:
        return figures
    period_start, _end = previous_month(now)
    if args.skip_generate and "settlement" in args.only:
        forget_batches(url, period_start)

    instance = Path(tempfile.mkdtemp(prefix="supermarket-scale-instance."))
    try:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secrets.token_hex(16),
                          "SEARCH_INDEX_DIR": str(instance / "search-index"),
                          "UPLOAD_DIR": str(instance / "uploads"), "MAIL_BACKEND": "outbox",
                          "SEARCH_DRAIN_IN_PROCESS": False, "RATELIMIT_ENABLED": False})
        logging.getLogger("marketplace.requests").setLevel(logging.WARNING)
        say("\nNightly jobs:")
        wanted = {part.strip() for part in args.only.split(",")}
        batch_id = None
        if "credibility" in wanted:
            figures.append(measure_credibility(app, now, say))
        if "settlement" in wanted:
            settlement, batch_id = measure_settlement(app, period_start, say)
            figures.append(settlement)
        if batch_id is None:
            with app.app_context():
                batch_id = db.session.scalar(text(
                    "SELECT id FROM settlement_batch ORDER BY order_count DESC LIMIT 1"))
        say(f"\nConsole pages ({args.requests} timed requests each, staff logged in):")
        with app.app_context():
            pages = [page for page in console_pages(db.session, batch_id)
                     if args.pages in page[0]] if "pages" in wanted else []
        figures += measure_pages(app, pages, args.requests, explain=args.explain, say=say)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.database_url:
        figures = run(args.database_url, args, admin_url=args.admin_database_url)
    else:
        with throwaway_postgres() as (url, admin_url):
            figures = run(url, args, admin_url=admin_url)
    print_summary(figures)
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
