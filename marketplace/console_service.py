"""Rules of the monitors' console: dashboard figures, the progress list with SLA status,
staff interventions on orders, and the audit-log search.

Plain functions over a SQLAlchemy session (no request objects): a page, a CLI command and a
test call the same code. Every figure is an aggregate query (GROUP BY), so the number of
queries per page stays fixed whatever the data. Interventions validate first and change
nothing when refused; on success they write an order event (timeline), an audit row and
notifications in one transaction that the caller commits (cancel-with-refund commits itself,
because the money step talks to Stripe after the state change is safely recorded).
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import String, and_, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.expression import FunctionElement

from catalog.models import Category, Product, ProductRevision
from catalog.services import Page, paginate
from marketplace import audit
from marketplace.models import AuditLog, Organisation, User
from marketplace.notifications import notify_organisation
from orders import services as order_services
from orders import sla, workflow
from orders.models import ORDER_STATUSES, Order
from orders.money import format_amount

OPEN_STATUSES = workflow.OPEN_STATUSES
TOP_LIST = 10


class InterventionError(ValueError):
    """A refused intervention: ``errors`` maps a form field (or "" for the form) to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --------------------------------------------------------------------------- SQL helpers

class day_key(FunctionElement):
    """'YYYY-MM-DD' of a UTC datetime column (a GROUP BY key for daily figures)."""

    type = String()
    inherit_cache = True
    pattern = ("YYYY-MM-DD", "%Y-%m-%d")


class month_key(day_key):
    """'YYYY-MM' of a UTC datetime column."""

    inherit_cache = True
    pattern = ("YYYY-MM", "%Y-%m")


@compiles(day_key)
@compiles(month_key)
def _period_key_pg(element, compiler, **kw):
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', '{element.pattern[0]}')"


@compiles(day_key, "sqlite")
@compiles(month_key, "sqlite")
def _period_key_sqlite(element, compiler, **kw):
    return f"strftime('{element.pattern[1]}', {compiler.process(element.clauses, **kw)})"


# --------------------------------------------------------------------------- dashboard

PERIODS = {"30d": "Last 30 days", "12m": "Last 12 months"}


@dataclass
class Series:
    labels: list[str]
    gmv: list[int]  # minor units, orders paid in the bucket
    orders: list[int]  # orders placed in the bucket

    @property
    def total_gmv(self) -> int:
        return sum(self.gmv)

    @property
    def total_orders(self) -> int:
        return sum(self.orders)


@dataclass
class CategoryFigure:
    category: Category | None  # top level; None for orders without a category
    orders: int
    gmv: int


@dataclass
class Dashboard:
    period: str
    currency: str
    series: Series
    by_state: dict[str, int]
    by_category: list[CategoryFigure]
    open_disputes: int
    disputes: list[Order]
    overdue: int
    at_risk: int
    overdue_orders: list[tuple[Order, sla.SlaStatus]]
    pending_verifications: int
    pending_moderations: int
    low_credibility: list | None = None  # None: credibility scoring is not installed

    @property
    def open_orders(self) -> int:
        return sum(self.by_state.get(s, 0) for s in OPEN_STATUSES)


def _buckets(period: str, now: datetime) -> tuple[list[str], datetime, str]:
    today = now.astimezone(UTC).date()
    if period == "12m":
        months = []
        year, month = today.year, today.month
        for _ in range(12):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.reverse()
        first = datetime(int(months[0][:4]), int(months[0][5:]), 1, tzinfo=UTC)
        return months, first, "month"
    days = [(today - timedelta(days=n)).isoformat() for n in range(29, -1, -1)]
    first = datetime.combine(date.fromisoformat(days[0]), datetime.min.time(), tzinfo=UTC)
    return days, first, "day"


def time_series(session: Session, period: str, now: datetime, currency: str) -> Series:
    labels, first, unit = _buckets(period, now)
    key = month_key if unit == "month" else day_key
    paid_key = key(Order.paid_at)
    gmv = dict(session.execute(
        select(paid_key, func.sum(Order.subtotal))
        .where(Order.paid_at >= first, Order.paid_at <= now, Order.currency == currency)
        .group_by(paid_key)).all())
    created_key = key(Order.created_at)
    placed = dict(session.execute(
        select(created_key, func.count(Order.id))
        .where(Order.created_at >= first, Order.created_at <= now)
        .group_by(created_key)).all())
    return Series(labels=labels, gmv=[int(gmv.get(k) or 0) for k in labels],
                  orders=[int(placed.get(k) or 0) for k in labels])


def orders_by_state(session: Session) -> dict[str, int]:
    rows = dict(session.execute(select(Order.status, func.count(Order.id))
                                .group_by(Order.status)).all())
    return {status: rows.get(status, 0) for status in ORDER_STATUSES}


def orders_by_category(session: Session, currency: str) -> list[CategoryFigure]:
    """Orders and GMV (paid orders) per top-level category, largest first."""
    paid = and_(Order.paid_at.is_not(None), Order.currency == currency)
    rows = session.execute(
        select(Order.category_id, func.count(Order.id),
               func.sum(case((paid, Order.subtotal), else_=0)))
        .group_by(Order.category_id)).all()
    categories = {c.id: c for c in session.scalars(select(Category))}
    totals: dict[int | None, list[int]] = {}
    for category_id, count, gmv in rows:
        category = categories.get(category_id)
        while category is not None and category.parent_id is not None:
            category = categories.get(category.parent_id)
        key = category.id if category else None
        bucket = totals.setdefault(key, [0, 0])
        bucket[0] += count
        bucket[1] += int(gmv or 0)
    figures = [CategoryFigure(categories.get(k) if k else None, v[0], v[1])
               for k, v in totals.items()]
    return sorted(figures, key=lambda f: (-f.orders, f.category.position if f.category else 999))


def dashboard(session: Session, now: datetime, *, period: str = "30d", currency: str = "CNY",
              warning_days: int | None = None) -> Dashboard:
    period = period if period in PERIODS else "30d"
    overdue_rows = session.scalars(
        select(Order).where(sla.sla_condition("overdue", now, warning_days))
        .options(joinedload(Order.buyer), joinedload(Order.provider))
        .order_by(sla.deadline_expr().asc(), Order.id).limit(TOP_LIST)).all()
    done = _done_for(session, [o.id for o in overdue_rows])
    pending_moderations = (
        session.scalar(select(func.count(Product.id))
                       .where(Product.status == "pending_review")) or 0) + (
        session.scalar(select(func.count(ProductRevision.id))
                       .where(ProductRevision.status == "pending")) or 0)
    return Dashboard(
        period=period, currency=currency,
        series=time_series(session, period, now, currency),
        by_state=orders_by_state(session),
        by_category=orders_by_category(session, currency),
        open_disputes=_count(session, Order.status == "disputed"),
        disputes=list(session.scalars(
            select(Order).where(Order.status == "disputed")
            .options(joinedload(Order.buyer), joinedload(Order.provider))
            .order_by(Order.updated_at.asc(), Order.id).limit(TOP_LIST))),
        overdue=_count(session, sla.sla_condition("overdue", now, warning_days)),
        at_risk=_count(session, sla.sla_condition("at_risk", now, warning_days)),
        overdue_orders=[(o, sla.classify(o, now, warning_days, done=done.get(o.id)))
                        for o in overdue_rows],
        pending_verifications=session.scalar(
            select(func.count(Organisation.id)).where(
                Organisation.kind == "provider",
                Organisation.verification_status == "pending")) or 0,
        pending_moderations=pending_moderations,
        low_credibility=low_credibility_alerts(session),
    )


def low_credibility_alerts(session: Session, limit: int = TOP_LIST) -> list | None:
    """Alerts from the credibility scoring, or None while that module is not installed."""
    try:
        from providers import credibility
    except ImportError:
        return None
    alerts = getattr(credibility, "low_credibility_alerts", None)
    if alerts is None:
        return None
    return list(alerts(session, limit))


def _count(session: Session, *where) -> int:
    return session.scalar(select(func.count(Order.id)).where(*where)) or 0


def _done_for(session: Session, order_ids: list[int]) -> dict[int, int]:
    """Percent done per order, in one query."""
    if not order_ids:
        return {}
    return {i: int(d or 0) for i, d in session.execute(
        select(Order.id, sla.done_expr()).where(Order.id.in_(order_ids))).all()}


# --------------------------------------------------------------------------- progress

SORTS = {
    "sla": "SLA (worst first)",
    "due": "Due date",
    "amount": "Amount",
    "created": "Placed",
}
DEFAULT_DIRECTION = {"sla": "asc", "due": "asc", "amount": "desc", "created": "desc"}


@dataclass
class ProgressFilters:
    provider: str = ""  # an institution id or part of its name
    enterprise: str = ""  # an enterprise id or part of its name
    category: int | None = None
    state: str | None = None
    sla: str | None = None
    sort: str = "sla"
    direction: str = "asc"

    @classmethod
    def from_args(cls, args) -> "ProgressFilters":
        sort = args.get("sort") if args.get("sort") in SORTS else "sla"
        direction = args.get("dir") if args.get("dir") in ("asc", "desc") else \
            DEFAULT_DIRECTION[sort]
        try:
            category = int(args.get("category") or "") or None
        except ValueError:
            category = None
        state = args.get("state") or None
        code = args.get("sla") or None
        return cls(provider=(args.get("provider") or "").strip()[:100],
                   enterprise=(args.get("enterprise") or "").strip()[:100],
                   category=category,
                   state=state if state in OPEN_STATUSES else None,
                   sla=code if code in sla.SLA_CODES else None,
                   sort=sort, direction=direction)

    @property
    def active(self) -> bool:
        return bool(self.provider or self.enterprise or self.category or self.state or self.sla)


@dataclass
class ProgressRow:
    order: Order
    sla: sla.SlaStatus


@dataclass
class ProgressPage:
    page: Page
    rows: list[ProgressRow]
    sla_counts: dict[str, int] = field(default_factory=dict)  # with the other filters applied
    provider: Organisation | None = None  # named when filtered by id
    enterprise: Organisation | None = None


def _party_condition(column, kind: str, needle: str):
    if needle.isdigit():
        return column == int(needle)
    return column.in_(select(Organisation.id).where(Organisation.kind == kind,
                                                    Organisation.name.ilike(f"%{needle}%")))


def _category_ids(session: Session, category_id: int) -> list[int]:
    children = session.scalars(select(Category.id).where(Category.parent_id == category_id)).all()
    return [category_id, *children]


def progress(session: Session, filters: ProgressFilters, now: datetime, *, page: int = 1,
             page_size: int = 25, warning_days: int | None = None) -> ProgressPage:
    """Every open order with its SLA status, filtered, sorted and paginated in the database."""
    base = [Order.status.in_(OPEN_STATUSES)]
    if filters.state:
        base.append(Order.status == filters.state)
    if filters.provider:
        base.append(_party_condition(Order.provider_org_id, "provider", filters.provider))
    if filters.enterprise:
        base.append(_party_condition(Order.buyer_org_id, "enterprise", filters.enterprise))
    if filters.category:
        base.append(Order.category_id.in_(_category_ids(session, filters.category)))
    conditions = list(base)
    if filters.sla:
        conditions.append(sla.sla_condition(filters.sla, now, warning_days))

    rank = sla.sla_case(now, warning_days)
    desc = filters.direction == "desc"
    deadline = sla.deadline_expr()
    if filters.sort == "sla":
        order_by = [rank.desc() if desc else rank.asc(), deadline.asc().nulls_last()]
    elif filters.sort == "due":
        order_by = [deadline.desc().nulls_last() if desc else deadline.asc().nulls_last()]
    elif filters.sort == "amount":
        order_by = [Order.subtotal.desc() if desc else Order.subtotal.asc()]
    else:
        order_by = [Order.created_at.desc() if desc else Order.created_at.asc()]
    # The tab counts double as the page total, so no separate COUNT over the list query.
    counts = {code: _count(session, *base, sla.sla_condition(code, now, warning_days))
              for code in ("overdue", "at_risk")}
    counts["all"] = _count(session, *base)
    counts["on_track"] = counts["all"] - counts["overdue"] - counts["at_risk"]
    total = counts[filters.sla or "all"]
    page_size = max(1, int(page_size))
    page = max(1, min(page, max(1, -(-total // page_size))))
    # Sort and cut the bare order rows, then load the page's parties (selectinload) and its
    # percent done (one query). With joinedload and "done" in the select list, PostgreSQL
    # hash-joined the parties and ran the progress sub-plans for every open order (and every
    # skipped row of a deep page) before keeping 24: 2.6 s for page 1 and 16 s for page 4583
    # of 220k open orders (bench/scale.py, EXPLAIN ANALYZE in the commit message).
    stmt = (select(Order).where(*conditions)
            .options(selectinload(Order.buyer), selectinload(Order.provider),
                     selectinload(Order.category))
            .order_by(*order_by, Order.id.desc() if desc else Order.id.asc())
            .limit(page_size).offset((page - 1) * page_size))
    orders = list(session.scalars(stmt))
    done = _done_for(session, [order.id for order in orders])
    rows = [ProgressRow(order, sla.classify(order, now, warning_days, done=done.get(order.id, 0)))
            for order in orders]
    result = Page(items=rows, total=total, page=page, page_size=page_size)
    named = {}
    for key, needle in (("provider", filters.provider), ("enterprise", filters.enterprise)):
        if needle.isdigit():
            named[key] = session.get(Organisation, int(needle))
    return ProgressPage(page=result, rows=rows, sla_counts=counts, **named)


# --------------------------------------------------------------------------- interventions

PARTIES = {"buyer": "the buyer", "provider": "the institution"}
REASON_MAX = 2000


def _reason(reason: str | None, errors: dict[str, str]) -> str:
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = "Give the reason for this intervention (it is recorded and shown " \
                           "to the parties)."
    elif len(reason) > REASON_MAX:
        errors["reason"] = f"Keep the reason under {REASON_MAX:,} characters."
    return reason


def _tell(session: Session, order: Order, parties, kind: str, title: str, body: str) -> None:
    for party in parties:
        organisation = order.buyer if party == "buyer" else order.provider
        notify_organisation(session, organisation, kind, title, body,
                            workflow.order_link(order, party))


def add_note(session: Session, order: Order, staff: User, reason: str):
    """A staff note on the timeline, seen by both parties."""
    errors: dict[str, str] = {}
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    event = workflow.record_event(session, order, "staff_note", staff, note=reason)
    audit.record(session, staff, "order.note", order, reason, number=order.number)
    _tell(session, order, ("buyer", "provider"), "order_staff_note",
          f"Order {order.number}: a note from platform staff", reason)
    session.flush()
    return event


def extend_deadline(session: Session, order: Order, staff: User, new_deadline: datetime | None,
                    reason: str, now: datetime):
    """Move the order's SLA deadline (acceptance deadline while paid, due date while the work
    is under way) to a later time. The new time is in the future and later than the current."""
    errors: dict[str, str] = {}
    field_name = sla.deadline_field(order)
    if field_name is None:
        errors[""] = (f"This order is {workflow.status_label(order.status).lower()}; only "
                      "orders awaiting acceptance or being worked on have a deadline to extend.")
    current = getattr(order, field_name) if field_name else None
    if new_deadline is None:
        errors["new_deadline"] = "Enter the new date and time."
    elif new_deadline.tzinfo is None:
        raise ValueError("naive datetime")
    elif new_deadline <= now:
        errors["new_deadline"] = "The new deadline must be in the future."
    elif current is not None and new_deadline <= current:
        errors["new_deadline"] = (f"The new deadline must be later than the current one "
                                  f"({current.strftime('%Y-%m-%d %H:%M')} UTC).")
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    what = "acceptance deadline" if field_name == "accept_by" else "due date"
    setattr(order, field_name, new_deadline)
    before = current.strftime("%Y-%m-%d %H:%M") if current else "none"
    after = new_deadline.strftime("%Y-%m-%d %H:%M")
    note = f"The {what} moved from {before} to {after} UTC. {reason}"
    event = workflow.record_event(session, order, "deadline_extended", staff, note=note)
    audit.record(session, staff, "order.extend_deadline", order, reason, number=order.number,
                 field=field_name,
                 before=current.isoformat(timespec="seconds") if current else None,
                 after=new_deadline.isoformat(timespec="seconds"))
    _tell(session, order, ("buyer", "provider"), "order_deadline_extended",
          f"Order {order.number}: {what} extended to {after} UTC", reason)
    session.flush()
    return event


def nudge(session: Session, order: Order, staff: User, party: str, reason: str):
    """Remind one party to act: an in-app notification and an email (outbox)."""
    errors: dict[str, str] = {}
    if party not in PARTIES:
        errors["party"] = "Choose whom to nudge: the buyer or the institution."
    if order.status not in OPEN_STATUSES:
        errors[""] = "This order is closed; there is nobody to nudge."
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    event = workflow.record_event(session, order, "staff_nudge", staff,
                                  note=f"Reminder sent to {PARTIES[party]}: {reason}")
    audit.record(session, staff, "order.nudge", order, reason, number=order.number, party=party)
    _tell(session, order, (party,), "order_nudge",
          f"Order {order.number}: platform staff ask you to act", reason)
    session.flush()
    return event


def cancel_with_refund(session: Session, order: Order, staff: User, reason: str,
                       gw=None) -> order_services.Outcome:
    """Cancel through the workflow; the payments module then releases held card funds,
    refunds received money and gives voucher value back (the ledger reverses to zero).
    ``orders.services.cancel`` writes the audit row with the transition. Commits: the
    cancellation first, then each money step."""
    errors: dict[str, str] = {}
    reason = _reason(reason, errors)
    if not workflow.can(order, "cancel", staff):
        errors[""] = (f"This order is {workflow.status_label(order.status).lower()}; staff "
                      "cancel orders only before delivery.")
    if errors:
        raise InterventionError(errors)
    return order_services.cancel(session, order, staff, reason, gw=gw)


def rule(session: Session, order: Order, staff: User, ruling: str | None, refund: int | None,
         reason: str, gw=None) -> order_services.Outcome:
    """Rule on a dispute: full, partial (an amount above zero and below what was paid) or no
    refund. ``orders.services.resolve`` writes the audit row, committed with the ruling."""
    errors: dict[str, str] = {}
    if order.status != "disputed":
        errors[""] = "This order is not in dispute."
    if ruling not in order_services.RULINGS:
        errors["ruling"] = "Choose a ruling."
    paid = order.subtotal
    if ruling == "partial":
        if refund is None:
            errors["refund"] = "Enter the amount to refund for a partial refund."
        elif not 0 < refund < paid:
            errors["refund"] = (f"A partial refund is more than zero and less than what was paid "
                                f"({format_amount(paid, order.currency)}"
                                + (f", of which {format_amount(order.voucher_amount,order.currency)}"
                                   " by voucher" if order.voucher_amount else "") + ").")
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    return order_services.resolve(session, order, staff, ruling, refund, reason, gw=gw)


# --------------------------------------------------------------------------- audit log

@dataclass
class AuditFilters:
    actor: str = ""  # id, name or email
    action: str = ""
    target_type: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""  # free text in the reason
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args) -> "AuditFilters":
        errors = {}
        dates = {}
        for key in ("from", "to"):
            raw = (args.get(key) or "").strip()
            dates[key] = None
            if raw:
                try:
                    dates[key] = date.fromisoformat(raw)
                except ValueError:
                    errors[key] = "Use a date like 2026-11-23."
        if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
            errors["to"] = "The end date is before the start date."
        return cls(actor=(args.get("actor") or "").strip()[:100],
                   action=(args.get("action") or "").strip()[:64],
                   target_type=(args.get("target_type") or "").strip()[:32],
                   date_from=dates["from"], date_to=dates["to"],
                   q=(args.get("q") or "").strip()[:200], errors=errors)

    @property
    def active(self) -> bool:
        return bool(self.actor or self.action or self.target_type or self.date_from
                    or self.date_to or self.q)


def audit_page(session: Session, filters: AuditFilters, *, page: int = 1,
               page_size: int = 50) -> Page:
    conditions = []
    if filters.actor:
        if filters.actor.isdigit():
            conditions.append(AuditLog.actor_id == int(filters.actor))
        else:
            like = f"%{filters.actor}%"
            conditions.append(AuditLog.actor_id.in_(select(User.id).where(
                or_(User.full_name.ilike(like), User.email.ilike(like)))))
    if filters.action:
        conditions.append(AuditLog.action == filters.action)
    if filters.target_type:
        conditions.append(AuditLog.target_type == filters.target_type)
    if filters.date_from and "from" not in filters.errors:
        conditions.append(AuditLog.created_at >= datetime.combine(
            filters.date_from, datetime.min.time(), tzinfo=UTC))
    if filters.date_to and "to" not in filters.errors:
        conditions.append(AuditLog.created_at < datetime.combine(
            filters.date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    if filters.q:
        conditions.append(AuditLog.reason.ilike(f"%{filters.q}%"))
    stmt = (select(AuditLog).where(and_(True, *conditions))
            .options(joinedload(AuditLog.actor))
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()))
    return paginate(session, stmt, page, page_size)


def audit_choices(session: Session) -> tuple[list[str], list[str]]:
    """Distinct actions and target types, for the filter menus."""
    actions = session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)).all()
    types = session.scalars(select(AuditLog.target_type).distinct()
                            .order_by(AuditLog.target_type)).all()
    return list(actions), list(types)
