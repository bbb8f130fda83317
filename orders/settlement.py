"""Settlement (DESIGN.md §4 "Benefit distribution"): batches per period, one statement per
provider, payouts, and the CSV exports for providers and voucher funders.

Rules:

- **Which orders.** A batch covers a period (a calendar month by default, or any from/to
  dates, both inclusive, UTC days). It takes every order *completed* (``completed_at``) or
  *ruled on* (``resolved``, ``closed_at``) in the period, in the batch currency, that is not
  in any batch yet and whose money is final in the ledger (nothing held at Stripe, nothing
  left in escrow). Orders whose money is not final yet are reported as waiting and left for a
  later run.
- **Idempotent.** Running a period again creates nothing when nothing new is ready: it
  returns the existing batch. When orders of the period became ready since (a capture that
  had to be retried, say), the new run makes a *supplementary* batch (sequence 2, 3, ...)
  holding only those orders. An order is never in two batches as a whole: a partial UNIQUE
  index on ``settlement_item.order_id`` (whole-order lines) and UNIQUE ``posting`` (release
  and clawback lines) make sure, so even two runs racing cannot both take an order or a
  posting.
- **Milestone releases and clawbacks (issue 13).** A milestone approved while its order
  still runs posts ``milestone_release``; a staff clawback posts ``clawback``. Each such
  posting not yet in a batch and made before the period ends enters the run as its own line
  (``settlement_item.kind`` "release"/"clawback", ``posting`` UNIQUE), so the institution is
  paid for approved milestones month by month. The order's whole-order line, when it
  completes, carries what those lines did not (its figures less theirs). Releases of an order
  that is itself ready in the run are simply part of its whole-order line.
- **Figures come from the ledger** (``orders.ledger``), per order:

  ========  ==================================================================
  gross     value that came into escrow: card held + bank transfer + voucher
  refunds   value that went back: holds released (uncaptured part), refunds of
            cash, voucher value given back
  voucher   voucher value kept (the funder reimburses it): voucher_receivable
  fee       platform commission: credit balance of platform_fee_revenue
  net       payable to the institution: provider_payable credits before payout
  ========  ==================================================================

  and ``gross - refunds == fee + net`` holds for every settled order.
- **Paying.** Staff mark each provider statement paid with the bank-transfer reference of
  the payout. That posts the ledger ``payout`` (Dr provider_payable, Cr platform_cash) for
  each order, so every order's entries still sum to zero with nothing left payable, and moves
  each order to ``settled`` through ``workflow.transition(..., "settle", ...)``. Orders stay
  ``completed``/``resolved`` until their statement is paid: "settled" means the institution
  has been paid. If an order's ledger changed after the batch was made (a staff refund on a
  completed order), the statement refuses payment until its figures are refreshed.
"""

import re
from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, joinedload, object_session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from catalog.services import Page, paginate
from marketplace import permissions
from marketplace.audit import record
from marketplace.csv_export import csv_text
from marketplace.database import utcnow
from marketplace.i18n import local_day_bounds, local_today
from marketplace.models import Organisation, User
from marketplace.notifications import notify
from orders import ledger, states, timeline, workflow
from orders.models import (
    LedgerEntry,
    Milestone,
    Order,
    SettlementBatch,
    SettlementItem,
    SettlementStatement,
    Voucher,
    VoucherProgramme,
    VoucherRedemption,
)
from orders.money import format_amount, format_decimal

FIGURES = ("gross", "refunds", "voucher", "fee", "net")
SETTLEABLE_STATUSES = states.SETTLEABLE
REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./_-]{3,63}$")
PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


class SettlementError(ValueError):
    """A settlement action refused; ``status`` is the HTTP status views answer with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


class UnfinishedPeriod(SettlementError):
    """The period is not over yet; staff may confirm and settle it anyway."""


# --------------------------------------------------------------------------- periods

@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def label(self) -> str:
        last = monthrange(self.start.year, self.start.month)[1]
        if self.start.day == 1 and self.end == self.start.replace(day=last):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()} – {self.end.isoformat()}"

    @property
    def slug(self) -> str:
        return self.label.replace(" – ", "_to_")

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as UTC instants of the platform's local calendar: December in
        Suzhou starts at 16:00 UTC on 30 November."""
        return local_day_bounds(self.start)[0], local_day_bounds(self.end)[1]


def month(text: str) -> Period:
    """"2026-11" -> the calendar month."""
    found = PERIOD_RE.match((text or "").strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise SettlementError(_("Give the period as a month, e.g. 2026-11."), status=400)
    year, number = int(found.group(1)), int(found.group(2))
    return Period(date(year, number, 1), date(year, number, monthrange(year, number)[1]))


def period_between(start: date | None, end: date | None) -> Period:
    if start is None or end is None:
        raise SettlementError(_("Give both the first and the last day of the period."),
                              status=400)
    if end < start:
        raise SettlementError(_("The period ends before it starts."), status=400)
    if (end - start).days > 366:
        raise SettlementError(_("A settlement period is at most a year long."), status=400)
    return Period(start, end)


def ensure_period_over(period: Period, today: date | None = None,
                       confirmed: bool = False) -> None:
    """Refuse to settle a period that is not over yet (it ends today or later on the local
    calendar) unless staff confirmed it: orders completed later in the period would need a
    supplementary batch, and the institutions would get two statements for one month."""
    today = today or local_today()
    if period.end >= today and not confirmed:
        raise UnfinishedPeriod(
            _("%(period)s is not over yet (it ends on %(end)s). Settle a period once it has "
              "ended; orders completed after today would need a supplementary batch. To "
              "settle it now anyway, tick the confirmation and run it again.",
              period=period.label, end=period.end.isoformat()), status=400)


def previous_month(today: date) -> str:
    """The month before ``today`` (a local calendar date: ``i18n.local_today()``)."""
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first:%Y-%m}"


# --------------------------------------------------------------------------- figures

@dataclass
class Figures:
    gross: int = 0
    refunds: int = 0
    voucher: int = 0
    fee: int = 0
    net: int = 0
    escrow: int = 0  # left in escrow (should be 0)
    held: int = 0  # left held at Stripe (should be 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FIGURES}

    def add(self, other: "Figures") -> None:
        for name in FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def subtract(self, other: "Figures") -> None:
        for name in FIGURES:
            setattr(self, name, getattr(self, name) - getattr(other, name))

    def problem(self, order: Order, expected_gross: int | None = None) -> str | None:
        """Why this order's money is not final yet (None when it can be settled).
        ``expected_gross``: the order value less what release lines settled already."""
        if self.held:
            return "card money is still held at Stripe (capture or release pending)"
        if self.escrow:
            return "money is still in escrow (not yet recognised or returned)"
        if self.gross != (order.subtotal if expected_gross is None else expected_gross):
            return "the ledger does not cover the order value"
        if self.gross - self.refunds != self.fee + self.net:
            return "the ledger figures do not add up"
        return None


def figures_from_entries(entries: list[LedgerEntry]) -> Figures:
    """An order's settlement figures from its ledger entries (see the module docstring)."""
    f = Figures()
    for e in entries:
        if e.account == "escrow":
            f.escrow += e.amount
            if e.kind in ("held", "transfer", "voucher"):
                f.gross -= e.amount
        if e.account == "buyer_funds_held":
            f.held += e.amount
        if ((e.kind == "release" and e.account == "buyer_funds_held")
                or (e.kind in ("refund", "clawback") and e.account == "platform_cash")
                or (e.kind == "voucher_return" and e.account == "voucher_receivable")):
            f.refunds -= e.amount
        if e.account == "voucher_receivable":
            f.voucher += e.amount
        if e.account == "platform_fee_revenue":
            f.fee -= e.amount
        if e.account == "provider_payable" and e.kind != "payout":
            f.net -= e.amount
    return f


def posting_figures(kind: str, entries) -> Figures:
    """The figures of one release or clawback posting: a release brings its share of the
    order value (gross) split into fee and net; a clawback gives money back to the buyer
    (refunds) out of the fee and the institution's net (both negative)."""
    f = figures_from_entries(entries)
    if kind == "release":
        f.gross = sum(e.amount for e in entries if e.account == "escrow")
    f.escrow = 0
    return f


POSTING_KINDS = {"milestone_release": "release", "clawback": "clawback"}


@dataclass
class PostingLine:
    order: Order
    kind: str  # release / clawback
    posting: str
    figures: Figures


def posting_candidates(session: Session, period: Period, currency: str,
                       exclude_orders: set[int]) -> list[PostingLine]:
    """Release and clawback postings made before the period ends and in no batch yet:
    releases of orders not settled as a whole yet (and not being settled in this run),
    clawbacks of any order."""
    _start, end = period.bounds()
    taken = select(SettlementItem.id).where(SettlementItem.posting == LedgerEntry.posting)
    rows = session.execute(
        select(LedgerEntry.order_id, LedgerEntry.posting, LedgerEntry.kind)
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.kind.in_(tuple(POSTING_KINDS)), LedgerEntry.created_at < end,
               LedgerEntry.currency == currency, ~taken.exists(),
               or_(LedgerEntry.kind == "clawback", Order.batched_at.is_(None)))
        .group_by(LedgerEntry.order_id, LedgerEntry.posting, LedgerEntry.kind)
        .order_by(LedgerEntry.order_id, func.min(LedgerEntry.id))).all()
    rows = [row for row in rows if not (row.kind == "milestone_release"
                                        and row.order_id in exclude_orders)]
    if not rows:
        return []
    by_posting: dict[str, list] = defaultdict(list)
    postings = [row.posting for row in rows]
    for start in range(0, len(postings), 500):
        for entry in session.execute(
                select(LedgerEntry.order_id, LedgerEntry.kind, LedgerEntry.account,
                       LedgerEntry.amount, LedgerEntry.posting)
                .where(LedgerEntry.posting.in_(postings[start:start + 500]))):
            by_posting[entry.posting].append(entry)
    return [PostingLine(session.get(Order, row.order_id), POSTING_KINDS[row.kind], row.posting,
                        posting_figures(POSTING_KINDS[row.kind], by_posting[row.posting]))
            for row in rows]


def settled_lines(session: Session, order_ids: list[int]) -> dict[int, Figures]:
    """Per order, the sum of its release and clawback lines in any batch (what its
    whole-order line must not count again)."""
    found: dict[int, Figures] = {}
    for start in range(0, len(order_ids), 500):
        for row in session.execute(
                select(SettlementItem.order_id, *[getattr(SettlementItem, n) for n in FIGURES])
                .where(SettlementItem.order_id.in_(order_ids[start:start + 500]),
                       SettlementItem.posting.is_not(None))):
            total = found.setdefault(row.order_id, Figures())
            total.add(Figures(**{name: getattr(row, name) for name in FIGURES}))
    return found


def _no_progress(items, label):
    return items


def figures_for(session: Session, order_ids: list[int], progress=_no_progress
                ) -> dict[int, Figures]:
    """Figures of many orders, one query per 500 orders. ``progress(items, label)`` wraps
    the chunks (marketplace.jobs: a progress bar)."""
    # Plain rows of the four columns the figures need, not LedgerEntry objects: a month
    # at scale is ~66k orders and ~330k entries (bench/scale.py), and building ORM
    # objects for them was a large share of the batch's time.
    grouped: dict[int, list] = defaultdict(list)
    for start in progress(range(0, len(order_ids), 500), "reading the ledger"):
        chunk = order_ids[start:start + 500]
        for entry in session.execute(
                select(LedgerEntry.order_id, LedgerEntry.kind, LedgerEntry.account,
                       LedgerEntry.amount)
                .where(LedgerEntry.order_id.in_(chunk)).order_by(LedgerEntry.id)):
            grouped[entry.order_id].append(entry)
    return {order_id: figures_from_entries(grouped.get(order_id, [])) for order_id in order_ids}


# --------------------------------------------------------------------------- running a period

@dataclass
class RunResult:
    period: Period
    batch: SettlementBatch | None  # the new batch, or the latest existing one
    created: bool
    waiting: list[tuple[Order, str]] = field(default_factory=list)  # not final yet, why

    def summary(self) -> str:
        waiting = f"; {len(self.waiting)} order(s) waiting for their money to be final" \
            if self.waiting else ""
        if self.batch is None:
            return f"Settlement {self.period.label}: no orders to settle{waiting}."
        b = self.batch
        verb = "created" if self.created else "already settled, nothing new"
        return (f"Settlement {self.period.label}: batch {batch_number(b)} {verb}: "
                f"{b.order_count} orders, {len(b.statements)} statements, "
                f"gross {format_amount(b.gross, b.currency)}, refunds "
                f"{format_amount(b.refunds, b.currency)}, fee {format_amount(b.fee, b.currency)}, "
                f"net payable {format_amount(b.net, b.currency)}{waiting}.")


def batch_number(batch: SettlementBatch) -> str:
    period = Period(batch.period_start, batch.period_end)
    suffix = f"-{batch.sequence}" if batch.sequence > 1 else ""
    return f"ST-{period.slug}{suffix}"


def candidates(session: Session, period: Period, currency: str) -> list[Order]:
    """Orders completed or ruled on in the period and not in any batch yet."""
    start, end = period.bounds()
    return list(session.scalars(
        select(Order).where(
            Order.currency == currency, Order.batched_at.is_(None),
            or_(and_(Order.status == "completed", Order.completed_at >= start,
                     Order.completed_at < end),
                and_(Order.status == "resolved", Order.closed_at >= start,
                     Order.closed_at < end)))
        .order_by(Order.provider_org_id, Order.id)))


def _mark_batched(session: Session, orders: list[Order], moment: datetime) -> None:
    """Set ``batched_at`` on the orders a new batch holds: one UPDATE per thousand orders,
    leaving ``updated_at`` alone (joining a batch is no activity on the order)."""
    for start in range(0, len(orders), 1000):
        chunk = orders[start:start + 1000]
        session.execute(
            update(Order).where(Order.id.in_([order.id for order in chunk]))
            .values(batched_at=moment, updated_at=Order.updated_at)
            .execution_options(synchronize_session=False))
        for order in chunk:  # the loaded objects agree, without being marked changed
            set_committed_value(order, "batched_at", moment)


def batches_for(session: Session, period: Period, currency: str) -> list[SettlementBatch]:
    return list(session.scalars(select(SettlementBatch).where(
        SettlementBatch.period_start == period.start, SettlementBatch.period_end == period.end,
        SettlementBatch.currency == currency).order_by(SettlementBatch.sequence)))


def run_period(session: Session, period: Period, actor: User | None, currency: str = "CNY",
               progress=_no_progress) -> RunResult:
    """Create the batch of ``period`` (or a supplementary one for orders that became ready
    since), or nothing. Caller commits; the whole batch is one transaction.
    ``progress(items, label)`` wraps the ledger reads and the statements (``job.progress``
    of marketplace.jobs: a progress bar on a terminal)."""
    existing = batches_for(session, period, currency)
    ready: list[tuple[Order, Figures]] = []
    waiting: list[tuple[Order, str]] = []
    orders = candidates(session, period, currency)
    figures = figures_for(session, [o.id for o in orders], progress)
    earlier = settled_lines(session, [o.id for o in orders])
    # Releases of orders settled as a whole in this run are part of their whole-order line;
    # clawbacks are always lines of their own (here or in an earlier batch), so a
    # whole-order line counts neither again.
    lines = posting_candidates(session, period, currency, {o.id for o in orders})
    for line in lines:
        if line.order.id in figures:
            earlier.setdefault(line.order.id, Figures()).add(line.figures)
    for order in orders:
        f = figures[order.id]
        expected = order.subtotal
        if order.id in earlier:  # its releases were settled month by month already
            f.subtract(earlier[order.id])
            expected -= earlier[order.id].gross
        problem = f.problem(order, expected)
        if problem:
            waiting.append((order, problem))
        else:
            ready.append((order, f))
    if not ready and not lines:
        return RunResult(period, existing[-1] if existing else None, False, waiting)

    batch = SettlementBatch(period_start=period.start, period_end=period.end,
                            sequence=(existing[-1].sequence + 1) if existing else 1,
                            currency=currency, created_by_id=getattr(actor, "id", None),
                            order_count=0, **{name: 0 for name in FIGURES})
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
            by_provider: dict[int, list[tuple[Order, str, str | None, Figures]]] = \
                defaultdict(list)
            for order, f in ready:
                by_provider[order.provider_org_id].append((order, "order", None, f))
            for line in lines:
                by_provider[line.order.provider_org_id].append(
                    (line.order, line.kind, line.posting, line.figures))
            batch_total = Figures()
            for provider_id, rows in progress(sorted(by_provider.items()), "statements"):
                statement = SettlementStatement(
                    batch_id=batch.id, provider_org_id=provider_id,
                    order_count=len({order.id for order, *_rest in rows}))
                session.add(statement)
                session.flush()
                total = Figures()
                for order, kind, posting, f in rows:
                    session.add(SettlementItem(batch_id=batch.id, statement_id=statement.id,
                                               order_id=order.id, kind=kind, posting=posting,
                                               **f.as_dict()))
                    total.add(f)
                for name in FIGURES:
                    setattr(statement, name, getattr(total, name))
                batch_total.add(total)
            for name in FIGURES:
                setattr(batch, name, getattr(batch_total, name))
            batch.order_count = len({order.id for order, _f in ready}
                                    | {line.order.id for line in lines})
            session.flush()
            _mark_batched(session, [order for order, _f in ready], batch.created_at)
    except IntegrityError:
        raise SettlementError(_("Another settlement run for this period finished a moment "
                                "ago. Reload the page to see its batch.")) from None
    record(session, actor, "settlement.batch_created", batch, None,
           number=batch_number(batch), period=period.label, sequence=batch.sequence, orders=batch.order_count,
           net=batch.net, currency=currency)
    session.flush()
    session.refresh(batch)
    return RunResult(period, batch, True, waiting)


# --------------------------------------------------------------------------- reading

@dataclass
class Stale:
    order: Order
    stored: dict[str, int]
    now: dict[str, int]


def stale_items(session: Session, statement: SettlementStatement) -> list[Stale]:
    """Orders of a statement whose ledger figures changed since the batch was made. (A
    release or clawback line is one posting, which never changes.)"""
    items = [item for item in statement.items if item.kind == "order"]
    live = figures_for(session, [item.order_id for item in items])
    earlier = settled_lines(session, [item.order_id for item in items])
    found = []
    for item in items:
        stored = {name: getattr(item, name) for name in FIGURES}
        figures = live[item.order_id]
        if item.order_id in earlier:
            figures.subtract(earlier[item.order_id])
        now = figures.as_dict()
        if stored != now:
            found.append(Stale(item.order, stored, now))
    return found


def refresh_statement(session: Session, statement: SettlementStatement, actor: User) -> int:
    """Re-read an unpaid statement's figures from the ledger (after a late refund); returns
    how many orders changed. Audited. Caller commits."""
    if statement.paid_at is not None:
        raise SettlementError(_("This statement is paid; its figures are final."))
    stale = stale_items(session, statement)
    if not stale:
        return 0
    by_order = {s.order.id: s.now for s in stale}
    for item in statement.items:
        if item.kind == "order" and item.order_id in by_order:
            for name, value in by_order[item.order_id].items():
                setattr(item, name, value)
    _retotal(statement)
    _retotal(statement.batch)
    record(session, actor, "settlement.statement_refreshed", statement, None,
           orders=[s.order.number for s in stale],
           changes={s.order.number: {"was": s.stored, "now": s.now} for s in stale})
    session.flush()
    return len(stale)


def _retotal(holder) -> None:
    children = holder.items if isinstance(holder, SettlementStatement) else holder.statements
    for name in FIGURES:
        setattr(holder, name, sum(getattr(child, name) for child in children))


def batch_status(batch: SettlementBatch) -> str:
    paid = sum(1 for s in batch.statements if s.paid_at is not None)
    if paid == len(batch.statements):
        return "paid"
    return "partly_paid" if paid else "unpaid"


STATUS_LABELS = {"paid": (_l("Paid"), "success"), "partly_paid": (_l("Partly paid"), "warning"),
                 "unpaid": (_l("Unpaid"), "secondary")}


def list_batches(session: Session, page: int, page_size: int):
    stmt = (select(SettlementBatch)
            .options(selectinload(SettlementBatch.statements))  # each row's paid status
            .order_by(SettlementBatch.period_start.desc(), SettlementBatch.period_end.desc(),
                      SettlementBatch.sequence.desc()))
    return paginate(session, stmt, page, page_size)


BACKLOG_CAP = 1000


class AtLeast(int):
    """A count that stopped at its cap: shown as "1,000+"."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


def unbatched_backlog(session: Session, before: date, currency: str) -> tuple[int, datetime | None]:
    """Orders completed or ruled on before ``before`` that are in no batch yet (count, oldest).

    The count stops at ``BACKLOG_CAP`` (an ``AtLeast``): before a month's run its whole
    month waits (66k orders at 1M orders a year). "In no batch" is ``batched_at IS NULL``,
    read through the partial indexes of migration 0012 that hold only such orders: an
    anti-join against the settlement items read every order a batch holds, 370-550 ms of the
    batch list after a month's run (bench/scale.py). The oldest is one ordered read per
    state."""
    limit = datetime.combine(before, time.min, UTC)
    # Each state by its own date column, with the very conditions of its partial index.
    per_state = (("completed", Order.completed_at), ("resolved", Order.closed_at))
    found = select(Order.id).where(
        Order.currency == currency, Order.batched_at.is_(None),
        or_(*[and_(Order.status == status, column < limit) for status, column in per_state])
    ).limit(BACKLOG_CAP + 1).subquery()
    firsts = [select(column).where(
        Order.status == status, Order.batched_at.is_(None), column < limit,
        Order.currency == currency)
        .order_by(column.asc()).limit(1).scalar_subquery() for status, column in per_state]
    count, *oldest = session.execute(select(
        select(func.count()).select_from(found).scalar_subquery(), *firsts)).one()
    if not count:
        return 0, None
    oldest = min((moment for moment in oldest if moment is not None), default=None)
    return (AtLeast(BACKLOG_CAP) if count > BACKLOG_CAP else int(count)), oldest


def statements_of_provider(session: Session, provider_org_id: int, page: int, page_size: int):
    stmt = (select(SettlementStatement).join(SettlementBatch)
            .options(joinedload(SettlementStatement.batch))  # each row's period and number
            .where(SettlementStatement.provider_org_id == provider_org_id)
            .order_by(SettlementBatch.period_start.desc(), SettlementBatch.sequence.desc()))
    return paginate(session, stmt, page, page_size)


# --------------------------------------------------------------------------- paying

def clean_reference(raw: str | None) -> str:
    reference = " ".join((raw or "").split())
    if not reference:
        raise SettlementError(_("Enter the bank transfer reference of the payout."),
                              status=400)
    if not REFERENCE_RE.match(reference):
        raise SettlementError(_("A payout reference is 4–64 characters: letters, digits, "
                                "spaces and . / _ - (as printed on the bank's transfer "
                                "receipt)."), status=400)
    return reference


def mark_paid(session: Session, statement: SettlementStatement, actor: User, reference: str,
              now: datetime | None = None) -> SettlementStatement:
    """Record the payout of one statement: the ledger ``payout`` of each order, each order
    to ``settled``, audit and a notification to the provider. Caller commits; on any error
    nothing is written."""
    reference = clean_reference(reference)
    if workflow.SYSTEM is not actor and not permissions.is_staff(actor):
        raise workflow.NotAllowed("Only platform staff mark statements paid.")
    stale = stale_items(session, statement)
    if stale:
        numbers = ", ".join(s.order.number for s in stale)
        raise SettlementError(_("The ledger of %(orders)s changed after this batch was made "
                                "(a refund, most likely). Refresh the statement's figures, "
                                "check the new net payable, then mark it paid.",
                                orders=numbers))
    now = now or utcnow()
    session.flush()
    claimed = session.execute(
        update(SettlementStatement)
        .where(SettlementStatement.id == statement.id, SettlementStatement.paid_at.is_(None))
        .values(paid_at=now, payout_reference=reference, paid_by_id=actor.id)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise SettlementError(_("This statement was already marked paid."))
    session.refresh(statement)
    label = Period(statement.batch.period_start, statement.batch.period_end).label
    for item in statement.items:
        order = item.order
        if item.kind == "order" and order.status in SETTLEABLE_STATUSES:
            workflow.transition(session, order, "settle", actor, now=now,
                                note=timeline.note("paid_out", statement=label,
                                                   reference=reference))
        # Each line pays its own net (a clawback line's is negative: the institution's
        # payout is that much smaller), so a release paid in an earlier statement and the
        # rest of the order paid now add up to the order's payable.
        ledger.payout_amount(session, order, item.net,
                             "Paid out to the institution" if item.kind != "clawback"
                             else "Clawback deducted from the institution's payout")
    record(session, actor, "settlement.statement_paid", statement, None,
           reference=reference, net=statement.net, orders=statement.order_count,
           provider=statement.provider.name, period=label)
    currency = statement.batch.currency
    members = session.scalars(select(User).where(
        User.organisation_id == statement.provider_org_id, User.active.is_(True))).all()
    for member in members:  # in each recipient's language
        with force_locale(member.locale or current_app.config["DEFAULT_LOCALE"]):
            notify(session, member, "settlement_paid",
                   _("Your statement for %(period)s was paid", period=label),
                   _("%(amount)s for %(count)s order(s) was transferred to your account, "
                     "reference %(reference)s.", amount=format_amount(statement.net, currency),
                     count=statement.order_count, reference=reference),
                   f"/provider/statements/{statement.id}")
    session.flush()
    return statement


# --------------------------------------------------------------------------- CSV exports
#
# Exports are generators of CSV text in chunks: the views stream them, so a month batch
# (~66k orders at scale, bench/scale.py) is never built in memory, and its rows come from
# one joined select (items, orders, buyers, institutions) read CSV_CHUNK rows at a time,
# not from the ORM objects one order (and one buyer) at a time.

BOM = "\ufeff"  # so Excel reads the UTF-8 (Chinese names) correctly
CSV_CHUNK = 1000


def _csv_text(rows) -> str:
    return csv_text(rows)  # cells neutralised against formula injection


def _csv(rows: list[list]) -> str:
    return BOM + _csv_text(rows)


def _chunks(result) -> Iterator[list]:
    """The rows of ``result`` (a streamed select), CSV_CHUNK at a time."""
    while chunk := result.fetchmany(CSV_CHUNK):
        yield chunk


def _closed_on(status: str, completed_at: datetime | None, closed_at: datetime | None) -> str:
    moment = completed_at if status != "resolved" and completed_at \
        else closed_at or completed_at
    return moment.date().isoformat() if moment else ""


def _when(order: Order) -> str:
    return _closed_on(order.status, order.completed_at, order.closed_at)


# Column headers are for people: translated into the language of the request when written.
STATEMENT_COLUMNS = [_l("Batch"), _l("Period"), _l("Institution"), _l("Credit code"),
                     _l("Order number"), _l("Status"), _l("Completed or ruled"), _l("Buyer"),
                     _l("Gross"), _l("Refunds"), _l("Voucher share"), _l("Platform fee"),
                     _l("Net payable"), _l("Currency"), _l("Payout reference")]


def _heads(columns) -> list[str]:
    return [str(column) for column in columns]


def _statement_rows(session: Session, batch: SettlementBatch, *where) -> Iterator[str]:
    """CSV text of the statement rows of ``batch`` (narrowed by ``where``), in chunks: one
    streamed query for all of them, statement by statement, order by order."""
    buyer, provider = aliased(Organisation), aliased(Organisation)
    currency = batch.currency
    number, period = batch_number(batch), Period(batch.period_start, batch.period_end).label
    result = session.execute(
        select(provider.name, provider.credit_code, Order.number, Order.status, SettlementItem.kind,
               Order.completed_at, Order.closed_at, buyer.name,
               *[getattr(SettlementItem, name) for name in FIGURES],
               SettlementStatement.payout_reference, Milestone.title)
        .select_from(SettlementItem)
        .join(SettlementStatement, SettlementStatement.id == SettlementItem.statement_id)
        .join(provider, provider.id == SettlementStatement.provider_org_id)
        .join(Order, Order.id == SettlementItem.order_id)
        .join(buyer, buyer.id == Order.buyer_org_id)
        .outerjoin(Milestone, Milestone.release_posting == SettlementItem.posting)
        .where(SettlementItem.batch_id == batch.id, *where)
        .order_by(SettlementStatement.id, SettlementItem.id)
        .execution_options(yield_per=CSV_CHUNK))
    for chunk in _chunks(result):
        yield _csv_text(
            [number, period, name, credit_code or "", order_number,
             item_label(kind, status, milestone), _closed_on(status, completed_at, closed_at),
             buyer_name, *[format_decimal(value, currency) for value in figures],
             currency, reference or ""]
            for (name, credit_code, order_number, status, kind, completed_at, closed_at,
                 buyer_name, *figures, reference, milestone) in chunk)


ITEM_KIND_LABELS = {"release": _l("Milestone release"), "clawback": _l("Clawback")}


def item_label(kind: str, status: str, milestone: str | None = None) -> str:
    """A statement line's status column: the order's status, or what kind of line it is
    (with the milestone a release paid for)."""
    if kind not in ITEM_KIND_LABELS:
        return workflow.status_label(status)
    if milestone:
        return _("%(kind)s: %(milestone)s", kind=ITEM_KIND_LABELS[kind], milestone=milestone)
    return str(ITEM_KIND_LABELS[kind])


def milestone_titles(session: Session, items: list[SettlementItem]) -> dict[str, str]:
    """Posting id -> title of the milestone whose release a statement line pays."""
    postings = [item.posting for item in items if item.kind == "release" and item.posting]
    if not postings:
        return {}
    return dict(session.execute(select(Milestone.release_posting, Milestone.title)
                                .where(Milestone.release_posting.in_(postings))).all())


def _totals_row(label: str, holder, currency: str, width: int = len(STATEMENT_COLUMNS)) -> list:
    row = [""] * width
    row[0] = label
    row[4] = _("%(count)s orders", count=holder.order_count)
    for offset, name in enumerate(FIGURES):
        row[8 + offset] = format_decimal(getattr(holder, name), currency)
    row[13] = currency
    return row


def iter_statement_csv(session: Session, statement: SettlementStatement) -> Iterator[str]:
    batch = statement.batch
    yield BOM + _csv_text([_heads(STATEMENT_COLUMNS)])
    yield from _statement_rows(session, batch, SettlementItem.statement_id == statement.id)
    yield _csv_text([_totals_row(_("TOTAL"), statement, batch.currency)])


def iter_batch_csv(session: Session, batch: SettlementBatch) -> Iterator[str]:
    yield BOM + _csv_text([_heads(STATEMENT_COLUMNS)])
    yield from _statement_rows(session, batch)
    yield _csv_text([_totals_row(_("TOTAL"), batch, batch.currency)])


def statement_csv(statement: SettlementStatement) -> str:
    return "".join(iter_statement_csv(object_session(statement), statement))


def batch_csv(batch: SettlementBatch) -> str:
    return "".join(iter_batch_csv(object_session(batch), batch))


def statement_filename(statement: SettlementStatement) -> str:
    return f"statement-{batch_number(statement.batch)}-{statement.provider_org_id}.csv"


def batch_filename(batch: SettlementBatch) -> str:
    return f"settlement-{batch_number(batch)}.csv"


VOUCHER_COLUMNS = [_l("Programme"), _l("Funder"), _l("Enterprise"), _l("Credit code"),
                   _l("Voucher code"), _l("Order number"), _l("Completed or ruled"),
                   _l("Institution"), _l("Order amount"), _l("Voucher applied"),
                   _l("Voucher returned"), _l("Voucher amount"), _l("Currency")]


VOUCHER_PAGE_SIZE = 50


@dataclass
class VoucherReport:
    programme: VoucherProgramme
    period: Period
    page: object  # catalog.services.Page of (redemption, order, enterprise) rows
    count: int
    order_total: int
    applied: int
    returned: int
    net: int

    @property
    def rows(self) -> list[tuple[VoucherRedemption, Order, Organisation]]:
        """The rows of the page asked for."""
        return self.page.items


def _redemptions_of(programme: VoucherProgramme, period: Period, *columns):
    """``select(*columns)`` over the redemptions of ``programme`` whose orders were
    completed or ruled on in ``period`` (joined: redemption, voucher, order, buyer)."""
    start, end = period.bounds()
    closed = func.coalesce(Order.completed_at, Order.closed_at)
    return (select(*columns)
            .select_from(VoucherRedemption)
            .join(Voucher, Voucher.id == VoucherRedemption.voucher_id)
            .join(Order, Order.id == VoucherRedemption.order_id)
            .join(Organisation, Organisation.id == Order.buyer_org_id)
            .where(Voucher.programme_id == programme.id,
                   Order.status.in_(("completed", "resolved", "settled")),
                   closed >= start, closed < end))


def _redemption_order(stmt):
    return stmt.order_by(func.coalesce(Order.completed_at, Order.closed_at), Order.id)


def voucher_report(session: Session, programme: VoucherProgramme, period: Period,
                   page: int = 1, page_size: int = VOUCHER_PAGE_SIZE) -> VoucherReport:
    """Voucher value the funder reimburses for ``period``: redemptions of orders completed
    or ruled on in the period (open orders may still give the voucher back). The totals
    cover the whole period (one aggregate query); the rows are one page of it (none with
    ``page_size=0``)."""
    count, order_total, applied, returned = session.execute(_redemptions_of(
        programme, period, func.count(), func.coalesce(func.sum(Order.subtotal), 0),
        func.coalesce(func.sum(VoucherRedemption.amount), 0),
        func.coalesce(func.sum(VoucherRedemption.returned), 0))).one()
    if page_size:
        rows = paginate(session, _redemption_order(_redemptions_of(
            programme, period, VoucherRedemption, Order, Organisation)), page, page_size,
            scalars=False)
        rows.items = [tuple(row) for row in rows.items]
    else:  # the totals only (the CSV reads its rows itself)
        rows = Page(items=[], total=int(count), page=1, page_size=1)
    return VoucherReport(programme, period, rows, count=int(count),
                         order_total=int(order_total), applied=int(applied),
                         returned=int(returned), net=int(applied) - int(returned))


def iter_voucher_csv(session: Session, report: VoucherReport) -> Iterator[str]:
    """The whole period's redemptions as CSV text in chunks, from one streamed query."""
    programme, currency = report.programme, report.programme.currency
    provider = aliased(Organisation)
    yield BOM + _csv_text([_heads(VOUCHER_COLUMNS)])
    result = session.execute(_redemption_order(_redemptions_of(
        programme, report.period, Organisation.name, Organisation.credit_code, Voucher.code,
        Order.number, Order.status, Order.completed_at, Order.closed_at, provider.name,
        Order.subtotal, VoucherRedemption.amount, VoucherRedemption.returned)
        .join(provider, provider.id == Order.provider_org_id))
        .execution_options(yield_per=CSV_CHUNK))
    for chunk in _chunks(result):
        yield _csv_text(
            [programme.name, programme.funder, enterprise, credit_code or "", code, number,
             _closed_on(status, completed_at, closed_at), institution,
             format_decimal(subtotal, currency), format_decimal(amount, currency),
             format_decimal(returned, currency), format_decimal(amount - returned, currency),
             currency]
            for (enterprise, credit_code, code, number, status, completed_at, closed_at,
                 institution, subtotal, amount, returned) in chunk)
    yield _csv_text([[_("TOTAL"), "", "", "", "", _("%(count)s orders", count=report.count), "", "",
                      format_decimal(report.order_total, currency),
                      format_decimal(report.applied, currency),
                      format_decimal(report.returned, currency),
                      format_decimal(report.net, currency), currency]])


def voucher_csv(report: VoucherReport) -> str:
    return "".join(iter_voucher_csv(object_session(report.programme), report))


def voucher_filename(report: VoucherReport) -> str:
    return f"vouchers-programme-{report.programme.id}-{report.period.slug}.csv"
