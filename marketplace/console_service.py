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

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, cast, func, literal_column, null, or_, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.expression import FunctionElement

from catalog.models import PRODUCT_STATUSES, Category, Product, ProductRevision
from marketplace import audit
from marketplace.i18n import format_date, format_datetime, local_today
from marketplace.models import ROLES, VERIFICATION_STATUSES, AuditLog, Organisation, User
from marketplace.notifications import notify
from marketplace.paging import Page, paginate
from orders import figures, sla, states, workflow
from orders import services as order_services
from orders import timeline as order_timeline
from orders.models import ORDER_STATUSES, Order
from orders.money import format_amount
from providers import credibility

OPEN_STATUSES = states.OPEN
TOP_LIST = 10


class InterventionError(ValueError):
    """A refused intervention: ``errors`` maps a form field (or "" for the form) to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(str(message) for message in errors.values()))
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

PERIODS = {"30d": _l("Last 30 days"), "12m": _l("Last 12 months")}


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


def _buckets(period: str, now: datetime) -> tuple[list[str], date, str]:
    """The labels of the last 30 local days or 12 local months, and the first day."""
    today = local_today(now)
    if period == "12m":
        months = []
        year, month = today.year, today.month
        for _ in range(12):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.reverse()
        return months, date(int(months[0][:4]), int(months[0][5:]), 1), "month"
    days = [(today - timedelta(days=n)).isoformat() for n in range(29, -1, -1)]
    return days, date.fromisoformat(days[0]), "day"


def time_series(session: Session, period: str, now: datetime, currency: str) -> Series:
    """Orders placed and GMV paid per day / month, from the daily roll-up (orders/figures.py:
    a few hundred rows, whatever the number of orders)."""
    labels, first, unit = _buckets(period, now)
    placed, gmv = figures.daily(session, first, local_today(now), currency)
    width = 7 if unit == "month" else 10
    placed_by: dict[str, int] = {}
    gmv_by: dict[str, int] = {}
    for day, count in placed.items():
        key = day.isoformat()[:width]
        placed_by[key] = placed_by.get(key, 0) + count
    for day, amount in gmv.items():
        key = day.isoformat()[:width]
        gmv_by[key] = gmv_by.get(key, 0) + amount
    return Series(labels=labels, gmv=[gmv_by.get(k, 0) for k in labels],
                  orders=[placed_by.get(k, 0) for k in labels])


def orders_by_state(session: Session) -> dict[str, int]:
    """Orders per status, from the counters orders/figures.py keeps."""
    rows = figures.state_counts(session)
    return {status: rows.get(status, 0) for status in ORDER_STATUSES}


def orders_by_category(session: Session, currency: str) -> list[CategoryFigure]:
    """Orders and GMV (paid orders) per top-level category, largest first (daily roll-up)."""
    categories = {c.id: c for c in session.scalars(select(Category))}
    totals: dict[int | None, list[int]] = {}
    for category_id, (count, gmv) in figures.by_category(session, currency).items():
        category = categories.get(category_id)
        while category is not None and category.parent_id is not None:
            category = categories.get(category.parent_id)
        key = category.id if category else None
        bucket = totals.setdefault(key, [0, 0])
        bucket[0] += count
        bucket[1] += gmv
    found = [CategoryFigure(categories.get(k) if k else None, v[0], v[1])
             for k, v in totals.items() if v[0] or v[1]]
    return sorted(found, key=lambda f: (-f.orders, f.category.position if f.category else 999))


def dashboard(session: Session, now: datetime, *, period: str = "30d", currency: str = "CNY",
              warning_days: int | None = None) -> Dashboard:
    period = period if period in PERIODS else "30d"
    # The ten longest overdue: per-state (status, deadline) index reads with LIMIT, merged.
    overdue_ids = [order_id for _key, order_id in _read_streams(
        session, _streams(ProgressFilters(sla="overdue", sort="due"), now, warning_days), [],
        None, False, False, TOP_LIST)]
    loaded = {o.id: o for o in session.scalars(
        select(Order).where(Order.id.in_(overdue_ids))
        .options(joinedload(Order.buyer), joinedload(Order.provider),
                 joinedload(Order.milestones))).unique()} if overdue_ids else {}
    overdue_rows = [loaded[i] for i in overdue_ids if i in loaded]
    done = _done_for(session, [o.id for o in overdue_rows])
    pending_moderations = (
        session.scalar(select(func.count(Product.id))
                       .where(Product.status == "pending_review")) or 0) + (
        session.scalar(select(func.count(ProductRevision.id))
                       .where(ProductRevision.status == "pending")) or 0)
    by_state = orders_by_state(session)
    return Dashboard(
        period=period, currency=currency,
        series=time_series(session, period, now, currency),
        by_state=by_state,
        by_category=orders_by_category(session, currency),
        open_disputes=by_state.get("disputed", 0),
        disputes=list(session.scalars(
            select(Order).where(Order.status == "disputed")
            .options(joinedload(Order.buyer), joinedload(Order.provider))
            .order_by(Order.updated_at.asc(), Order.id).limit(TOP_LIST))),
        overdue=overdue_count(session, now),
        at_risk=at_risk_count(session, now, warning_days),
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
    """Alerts from the credibility scoring, or None when it offers none."""
    alerts = getattr(credibility, "low_credibility_alerts", None)
    if alerts is None:
        return None
    return list(alerts(session, limit))


AT_RISK_CAP = 500


class Count(int):
    """A count shown as is, or as "1,000+" (``capped``: at least this many) or "≤ 5,000"
    (``at_most``) when counting exactly would cost more than the page may."""

    capped: bool = False
    at_most: bool = False

    def __new__(cls, value: int, *, capped: bool = False, at_most: bool = False):
        made = super().__new__(cls, value)
        made.capped, made.at_most = capped, at_most
        return made

    @property
    def exact(self) -> bool:
        return not (self.capped or self.at_most)

    def __str__(self) -> str:
        if self.capped:
            return f"{int(self):,}+"
        if self.at_most:
            return f"≤ {int(self):,}"
        return str(int(self))


def overdue_count(session: Session, now: datetime, *where) -> Count:
    """Overdue orders: one (status, deadline) index range count per clocked state, and the
    orders overdue only by a milestone (read from the milestone (status, due_date) index)."""
    parts = [select(func.count()).select_from(Order).where(  # count(*): index-only
        *where, Order.status == status,
        getattr(Order, column).is_not(None), getattr(Order, column) < now).scalar_subquery()
        for status, column in sla.DEADLINE_COLUMN.items()]
    parts.append(select(func.count()).select_from(Order).where(
        *where, sla.milestone_overdue(now),
        or_(Order.due_at.is_(None), Order.due_at >= now)).scalar_subquery())
    return Count(int(session.scalar(select(sum(parts[1:], parts[0]))) or 0))


def at_risk_count(session: Session, now: datetime, warning_days: int | None, *where,
                  cap: int | None = None) -> Count:
    """Orders at risk, counted up to ``cap``: each one inside the warning window costs its
    percent-done sub-plans, and a busy day has tens of thousands of orders due within it."""
    cap = AT_RISK_CAP if cap is None else cap
    found = select(Order.id).where(*where, sla.sla_condition("at_risk", now, warning_days)) \
        .limit(cap + 1).subquery()
    value = session.scalar(select(func.count()).select_from(found)) or 0
    return Count(min(value, cap), capped=value > cap)


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
    "sla": _l("SLA (worst first)"),
    "due": _l("Due date"),
    "amount": _l("Amount"),
    "created": _l("Placed"),
}
DEFAULT_DIRECTION = {"sla": "asc", "due": "asc", "amount": "desc", "created": "desc"}


@dataclass
class ProgressFilters:
    provider: str = ""  # an institution id or part of its name
    enterprise: str = ""  # an enterprise id or part of its name
    category: int | None = None
    state: str | None = None
    sla: str | None = None
    milestone_overdue: bool = False  # only orders with a milestone past due, not submitted
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
                   milestone_overdue=args.get("milestone") == "overdue",
                   sort=sort, direction=direction)

    @property
    def active(self) -> bool:
        return bool(self.provider or self.enterprise or self.category or self.state or self.sla
                    or self.milestone_overdue)


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
    next_cursor: str | None = None  # ?after= of the next page, None on the last
    prev_cursor: str | None = None  # ?before= of the previous page, None on the first


def _party_condition(column, kind: str, needle: str):
    if needle.isdigit():
        return column == int(needle)
    return column.in_(select(Organisation.id).where(Organisation.kind == kind,
                                                    Organisation.name.ilike(f"%{needle}%")))


def _category_ids(session: Session, category_id: int) -> list[int]:
    children = session.scalars(select(Category.id).where(Category.parent_id == category_id)).all()
    return [category_id, *children]


# Keyset pagination. Every row of the list has a sort key (group, no value, value, id): the
# group is the SLA rank (0 overdue, 1 at risk, 2 the rest) for the SLA sort and 0 otherwise,
# "no value" puts orders without a deadline last, the value is the deadline, subtotal or
# placed time. The list is read as a merge of per-state "streams", each one index range
# ((status, due_at), (status, accept_by), (status, subtotal), (status, created_at)) read in
# order with LIMIT, starting after the cursor: page 1 and page 5,000 cost the same.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    group: int
    no_value: int
    value: int  # deadline / placed time in microseconds since 1970, or the subtotal
    id: int

    def encode(self) -> str:
        return f"{self.group}~{self.no_value}~{self.value}~{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> "Cursor | None":
        parts = (raw or "").split("~")
        try:
            group, no_value, value, order_id = (int(part) for part in parts)
        except ValueError:
            return None
        if group not in (0, 1, 2) or no_value not in (0, 1):
            return None
        return cls(group, no_value, value, order_id)


def _as_micros(value) -> int:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)
    return int(value or 0)


def _from_micros(column, micros: int):
    if column.key == "subtotal":
        return micros
    return EPOCH + timedelta(microseconds=micros)


@dataclass
class _Stream:
    group: int
    no_value: int
    status: str
    column: object  # the value column, None in the "no value" part
    where: list
    null_column: object = None  # the deadline column of the "no value" part
    # On track inside the warning window: every row of the window is tested for progress,
    # so it is read only when the rows before it do not fill the page (see _read_streams).
    window: tuple | None = None  # (first, last) deadline of the window


def _streams(filters: ProgressFilters, now: datetime, warning_days: int | None) -> list[_Stream]:
    statuses = [filters.state] if filters.state else list(OPEN_STATUSES)
    edge = now + sla.warning_window(warning_days)
    streams = []
    m_over = sla.milestone_overdue(now)
    m_risk = sla.milestone_at_risk(now, warning_days)
    for status in statuses:
        clocked = status in sla.CLOCKED_STATUSES
        # Milestones count while the work is under way (orders/sla.py).
        work = status in sla.WORK_STATUSES
        deadline = getattr(Order, sla.DEADLINE_COLUMN.get(status, "due_at"))
        if filters.sla in ("overdue", "at_risk") and not clocked:
            continue
        if filters.sort in ("sla", "due"):
            column = deadline
        else:
            column = Order.subtotal if filters.sort == "amount" else Order.created_at
        where = [Order.status == status]
        if filters.sort == "sla" and clocked:
            behind = sla.behind_plan(now)
            wanted = {"overdue": (0,), "at_risk": (1,), "on_track": (2,)}.get(
                filters.sla, (0, 1, 2))
            # Not overdue by a milestone / not at risk by one either (work states only).
            calm = [~m_over] if work else []
            quiet = [~m_over, ~m_risk] if work else []
            if 0 in wanted:
                streams.append(_Stream(0, 0, status, column, [*where, deadline < now]))
                if work:  # overdue by a milestone only: by deadline, then those without one
                    streams.append(_Stream(0, 0, status, column,
                                           [*where, deadline >= now, m_over]))
                    streams.append(_Stream(0, 1, status, None,
                                           [*where, deadline.is_(None), m_over], deadline))
            if 1 in wanted:
                streams.append(_Stream(1, 0, status, column,
                                       [*where, deadline >= now, deadline <= edge, *calm,
                                        or_(behind, m_risk) if work else behind]))
                if work:  # at risk by a milestone only
                    streams.append(_Stream(1, 0, status, column,
                                           [*where, deadline > edge, *calm, m_risk]))
                    streams.append(_Stream(1, 1, status, None,
                                           [*where, deadline.is_(None), *calm, m_risk],
                                           deadline))
            if 2 in wanted:
                streams.append(_Stream(2, 0, status, column,
                                       [*where, deadline >= now, deadline <= edge, ~behind,
                                        *quiet], window=(now, edge)))
                streams.append(_Stream(2, 0, status, column, [*where, deadline > edge, *quiet]))
                streams.append(_Stream(2, 1, status, None, [*where, deadline.is_(None), *quiet],
                                       deadline))
            continue
        if filters.sla == "overdue" and work and column is deadline:
            # Two index ranges, not one OR: past the deadline, or overdue by a milestone.
            streams.append(_Stream(0, 0, status, column, [*where, deadline < now]))
            streams.append(_Stream(0, 0, status, column, [*where, deadline >= now, m_over]))
            streams.append(_Stream(0, 1, status, None, [*where, deadline.is_(None), m_over],
                                   column))
            continue
        if filters.sla:
            where.append(sla.sla_condition(filters.sla, now, warning_days))
        group = 2 if filters.sort == "sla" else 0
        if column is deadline:
            streams.append(_Stream(group, 0, status, column, [*where, column.is_not(None)]))
            streams.append(_Stream(group, 1, status, None, [*where, column.is_(None)], column))
        else:
            streams.append(_Stream(group, 0, status, column, where))
    return streams


def _stream_query(stream: _Stream, conditions: list, cursor: Cursor | None, sign: int,
                  null_sign: int, limit: int):
    """One stream's index-ordered read after the cursor, or None when it is all before it."""
    where = [*stream.where, *conditions]
    column = stream.column
    if cursor is not None:
        mine = (stream.group * sign, stream.no_value * null_sign)
        theirs = (cursor.group * sign, cursor.no_value * null_sign)
        if mine < theirs:
            return None
        if mine == theirs:
            after = Order.id > cursor.id if sign > 0 else Order.id < cursor.id
            if column is None:
                where.append(after)
            else:
                value = _from_micros(column, cursor.value)
                where += ([column >= value, or_(column > value, after)] if sign > 0 else
                          [column <= value, or_(column < value, after)])
    value_column = column if column is not None else cast(null(), Order.due_at.type)
    # The "no value" part is ordered by its (NULL) column too, so the plan is the
    # (status, column) index range of the NULLs, not a primary-key walk over all orders.
    ordered = column if column is not None else stream.null_column
    order_by = [ordered.asc() if sign > 0 else ordered.desc(),
                Order.id.asc() if sign > 0 else Order.id.desc()]
    return (select(literal_column(str(int(stream.group))).label("g"),
                   literal_column(str(int(stream.no_value))).label("n"),
                   value_column.label("v"), Order.id.label("id"))
            .where(*where).order_by(*order_by).limit(limit).subquery())


def _read_streams(session: Session, streams: list[_Stream], conditions: list,
                  cursor: Cursor | None, descending: bool, backwards: bool,
                  limit: int) -> list[tuple[Cursor, int]]:
    """Up to ``limit`` (key, order id) after ``cursor`` in list order (before it, nearest
    first, when ``backwards``): one UNION ALL of index-ordered reads with LIMIT, and a second
    one for the on-track-in-window streams only if the first rows do not fill the page."""
    sign = (-1 if descending else 1) * (-1 if backwards else 1)
    null_sign = -1 if backwards else 1

    def rank(key: Cursor):
        return (key.group * sign, key.no_value * null_sign, key.value * sign, key.id * sign)

    def run(chosen: list[_Stream]) -> list[Cursor]:
        parts = [part for part in (_stream_query(stream, conditions, cursor, sign, null_sign,
                                                 limit) for stream in chosen)
                 if part is not None]
        if not parts:
            return []
        union = union_all(*[select(part) for part in parts])
        return [Cursor(int(g), int(n), _as_micros(v) if v is not None else 0, order_id)
                for g, n, v, order_id in session.execute(union)]

    keyed = run([stream for stream in streams if stream.window is None])
    keyed.sort(key=rank)
    deferred = [stream for stream in streams if stream.window is not None]
    if deferred:
        # Deferred rows start at the window's first deadline (its last one when reading
        # backwards or descending); rows ranked before that come before all of them.
        first, last = deferred[0].window
        bound = rank(Cursor(deferred[0].group, 0, _as_micros(first if sign > 0 else last),
                            -1 if sign > 0 else 10**18))
        if sum(1 for key in keyed if rank(key) < bound) < limit:
            keyed = sorted(keyed + run(deferred), key=rank)
    return [(key, key.id) for key in keyed[:limit]]


def progress(session: Session, filters: ProgressFilters, now: datetime, *, page: int = 1,
             page_size: int = 25, warning_days: int | None = None, after: str | None = None,
             before: str | None = None) -> ProgressPage:
    """Every open order with its SLA status, filtered, sorted and paginated in the database.

    ``after`` / ``before`` are the cursors of the next / previous page (``Cursor.encode``);
    ``page`` is only the page number shown (carried by the links)."""
    base = [Order.status.in_(OPEN_STATUSES)]
    filtered = []
    if filters.provider:
        filtered.append(_party_condition(Order.provider_org_id, "provider", filters.provider))
    if filters.enterprise:
        filtered.append(_party_condition(Order.buyer_org_id, "enterprise", filters.enterprise))
    if filters.category:
        filtered.append(Order.category_id.in_(_category_ids(session, filters.category)))
    if filters.milestone_overdue:
        filtered.append(sla.milestone_overdue(now))
    if filters.state:
        base.append(Order.status == filters.state)
    base += filtered
    # Tab counts (they double as the total): the SLA ones read a (status, deadline) range;
    # "all" is the maintained per-state counters unless an institution, enterprise or
    # category filter applies ((provider|buyer|category, status) indexes then).
    counts = {"overdue": overdue_count(session, now, *base),
              "at_risk": at_risk_count(session, now, warning_days, *base)}
    if filtered:
        counts["all"] = _count(session, *base)
    else:
        states = figures.state_counts(session)
        counts["all"] = sum(states.get(s, 0) for s in
                            ([filters.state] if filters.state else OPEN_STATUSES))
    counts["all"] = Count(counts["all"])
    counts["on_track"] = Count(max(0, counts["all"] - counts["overdue"] - counts["at_risk"]),
                               at_most=counts["at_risk"].capped)
    total = counts[filters.sla or "all"]
    page_size = max(1, int(page_size))

    cursor_after, cursor_before = Cursor.decode(after), Cursor.decode(before)
    backwards = cursor_before is not None and cursor_after is None
    cursor = cursor_before if backwards else cursor_after
    if cursor is None:
        page = 1
    page = max(1, min(page, max(1, -(-total // page_size))))
    streams = _streams(filters, now, warning_days)
    found = _read_streams(session, streams, filtered, cursor, filters.direction == "desc",
                          backwards, page_size + 1)
    more = len(found) > page_size  # another page beyond this one, in the reading direction
    found = found[:page_size]
    if backwards:
        found.reverse()
    ids = [order_id for _key, order_id in found]
    # The page's orders with their percent done (index-only sub-plans for 24 rows), parties
    # and category: one query by primary key.
    # Milestones come in the same query (a joined collection): the SLA status reads them.
    loaded = {o.id: (o, int(d or 0)) for o, d in session.execute(
        select(Order, sla.done_expr()).where(Order.id.in_(ids))
        .options(joinedload(Order.buyer), joinedload(Order.provider),
                 joinedload(Order.category), joinedload(Order.milestones))).unique()} \
        if ids else {}
    rows = [ProgressRow(loaded[i][0], sla.classify(loaded[i][0], now, warning_days,
                                                   done=loaded[i][1]))
            for i in ids if i in loaded]
    if backwards and not more:
        page = 1
    result = Page(items=rows, total=total, page=page, page_size=page_size)
    has_next = more if not backwards else bool(found)
    has_prev = (cursor is not None) and (more if backwards else True) and page > 1
    named = {}
    for key, needle in (("provider", filters.provider), ("enterprise", filters.enterprise)):
        if needle.isdigit():
            named[key] = session.get(Organisation, int(needle))
    return ProgressPage(page=result, rows=rows, sla_counts=counts,
                        next_cursor=found[-1][0].encode() if found and has_next else None,
                        prev_cursor=found[0][0].encode() if found and has_prev else None,
                        **named)


# --------------------------------------------------------------------------- interventions

PARTIES = {"buyer": _l("the buyer"), "provider": _l("the institution")}
REASON_MAX = 2000


def _reason(reason: str | None, errors: dict[str, str]) -> str:
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = _("Give the reason for this intervention (it is recorded and "
                             "shown to the parties).")
    elif len(reason) > REASON_MAX:
        limit = f"{REASON_MAX:,}"
        errors["reason"] = _("Keep the reason under %(count)s characters.", count=limit)
    return reason


def _tell(session: Session, order: Order, parties, kind: str, title, body: str) -> None:
    """Notify every active member of the parties; ``title`` is a function of no argument,
    called in each recipient's language."""
    for party in parties:
        organisation = order.buyer if party == "buyer" else order.provider
        members = session.scalars(select(User).where(
            User.organisation_id == organisation.id, User.active.is_(True))).all()
        for member in members:
            with force_locale(member.locale or current_app.config["DEFAULT_LOCALE"]):
                notify(session, member, kind, str(title()), body,
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
          lambda: _("Order %(number)s: a note from platform staff", number=order.number),
          reason)
    session.flush()
    return event


def extend_deadline(session: Session, order: Order, staff: User, new_deadline: datetime | None,
                    reason: str, now: datetime):
    """Move the order's SLA deadline (acceptance deadline while paid, due date while the work
    is under way) to a later time. The new time is in the future and later than the current."""
    errors: dict[str, str] = {}
    field_name = sla.deadline_field(order)
    if field_name is None:
        errors[""] = _("This order is %(status)s; only orders awaiting acceptance or being "
                       "worked on have a deadline to extend.",
                       status=str(workflow.status_label(order.status)).lower())
    current = getattr(order, field_name) if field_name else None
    if new_deadline is None:
        errors["new_deadline"] = _("Enter the new date and time.")
    elif new_deadline.tzinfo is None:
        raise ValueError("naive datetime")
    elif new_deadline <= now:
        errors["new_deadline"] = _("The new deadline must be in the future.")
    elif current is not None and new_deadline <= current:
        errors["new_deadline"] = _("The new deadline must be later than the current one "
                                   "(%(when)s).", when=format_datetime(current))
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    setattr(order, field_name, new_deadline)
    note = order_timeline.note(
        "acceptance_deadline_moved" if field_name == "accept_by" else "due_date_moved",
        before_at=current, after_at=new_deadline, reason=reason)
    event = workflow.record_event(session, order, "deadline_extended", staff, note=note)
    audit.record(session, staff, "order.extend_deadline", order, reason, number=order.number,
                 field=field_name,
                 before=current.isoformat(timespec="seconds") if current else None,
                 after=new_deadline.isoformat(timespec="seconds"))
    _tell(session, order, ("buyer", "provider"), "order_deadline_extended",
          lambda: (_("Order %(number)s: acceptance deadline extended to %(when)s",
                     number=order.number, when=format_datetime(new_deadline))
                   if field_name == "accept_by" else
                   _("Order %(number)s: due date extended to %(when)s",
                     number=order.number, when=format_datetime(new_deadline))), reason)
    session.flush()
    return event


def milestones_extendable(order: Order) -> bool:
    """Staff extend milestones of open orders whose work has begun (accepted by the
    institution, not yet closed)."""
    return order.status in OPEN_STATUSES and order.status in states.WORK_BEGUN


def extend_milestone(session: Session, order: Order, staff: User, milestone_id: int | None,
                     new_due: date | None, reason: str, now: datetime):
    """Move a milestone still awaiting the institution's submission to a later local due day
    (in the future and later than its current one). The SLA status follows at once (it is
    computed, never stored); a new deviation from the new date alerts again
    (orders/alerts.py keys its alerts by the due date)."""
    errors: dict[str, str] = {}
    milestone = next((m for m in order.milestones if m.id == milestone_id), None)
    if order.status not in OPEN_STATUSES:
        errors[""] = _("This order is closed; its milestones can no longer be extended.")
    elif not milestones_extendable(order):
        errors[""] = _("The institution has not accepted this order yet; its milestones "
                       "can be extended once the work has begun.")
    elif milestone is None:
        errors["milestone"] = _("Choose a milestone of this order.")
    elif milestone.status not in sla.AWAITING_SUBMISSION:
        errors["milestone"] = _("This milestone was already submitted; only milestones "
                                "awaiting submission can be extended.")
    today = local_today(now)
    current = milestone.due_date if milestone is not None else None
    if new_due is None:
        errors["new_due_date"] = _("Enter the new due date.")
    elif new_due <= today:
        errors["new_due_date"] = _("The new due date must be in the future.")
    elif current is not None and new_due <= current:
        errors["new_due_date"] = _("The new due date must be later than the current one "
                                   "(%(date)s).", date=format_date(current))
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    milestone.due_date = new_due
    note = order_timeline.note("milestone_moved", title=milestone.title, before_date=current,
                               after_date=new_due, reason=reason)
    event = workflow.record_event(session, order, "milestone_extended", staff, note=note)
    audit.record(session, staff, "order.extend_milestone", order, reason, number=order.number,
                 milestone=milestone.title, before=current.isoformat() if current else None,
                 after=new_due.isoformat())
    _tell(session, order, ("buyer", "provider"), "order_milestone_extended",
          lambda: _("Order %(number)s: milestone “%(title)s” extended to %(date)s",
                    number=order.number, title=milestone.title, date=format_date(new_due)),
          reason)
    session.flush()
    return event


def nudge(session: Session, order: Order, staff: User, party: str, reason: str):
    """Remind one party to act: an in-app notification and an email (outbox)."""
    errors: dict[str, str] = {}
    if party not in PARTIES:
        errors["party"] = _("Choose whom to nudge: the buyer or the institution.")
    if order.status not in OPEN_STATUSES:
        errors[""] = _("This order is closed; there is nobody to nudge.")
    reason = _reason(reason, errors)
    if errors:
        raise InterventionError(errors)
    event = workflow.record_event(session, order, "staff_nudge", staff, note=order_timeline.note(
        "nudged_buyer" if party == "buyer" else "nudged_provider", reason=reason))
    audit.record(session, staff, "order.nudge", order, reason, number=order.number, party=party)
    _tell(session, order, (party,), "order_nudge",
          lambda: _("Order %(number)s: platform staff ask you to act", number=order.number),
          reason)
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
        errors[""] = _("This order is %(status)s; staff cancel orders only before delivery.",
                       status=str(workflow.status_label(order.status)).lower())
    if errors:
        raise InterventionError(errors)
    return order_services.cancel(session, order, staff, reason, gw=gw)


def rule(session: Session, order: Order, staff: User, ruling: str | None, refund: int | None,
         reason: str, gw=None) -> order_services.Outcome:
    """Rule on a dispute: full, partial (an amount above zero and below what was paid) or no
    refund. ``orders.services.resolve`` writes the audit row, committed with the ruling."""
    errors: dict[str, str] = {}
    if order.status != "disputed":
        errors[""] = _("This order is not in dispute.")
    if ruling not in order_services.RULINGS:
        errors["ruling"] = _("Choose a ruling.")
    paid = order.subtotal
    if ruling == "partial":
        if refund is None:
            errors["refund"] = _("Enter the amount to refund for a partial refund.")
        elif not 0 < refund < paid:
            errors["refund"] = (
                _("A partial refund is more than zero and less than what was paid (%(paid)s, "
                  "of which %(voucher)s by voucher).", paid=format_amount(paid, order.currency),
                  voucher=format_amount(order.voucher_amount, order.currency))
                if order.voucher_amount else
                _("A partial refund is more than zero and less than what was paid (%(paid)s).",
                  paid=format_amount(paid, order.currency)))
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
    target: str = ""  # a target id, an order number, or part of an institution/listing name
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
                    errors[key] = _("Use a date like 2026-11-23.")
        if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
            errors["to"] = _("The end date is before the start date.")
        return cls(actor=(args.get("actor") or "").strip()[:100],
                   action=(args.get("action") or "").strip()[:64],
                   target_type=(args.get("target_type") or "").strip()[:32],
                   target=(args.get("target") or "").strip()[:100],
                   date_from=dates["from"], date_to=dates["to"],
                   q=(args.get("q") or "").strip()[:200], errors=errors)

    @property
    def active(self) -> bool:
        return bool(self.actor or self.action or self.target_type or self.target
                    or self.date_from or self.date_to or self.q)


def _audit_target_condition(target: str):
    """Entries about one thing: its id, an order's number, or part of an organisation's
    name or a listing's title (what a monitor has in hand when asked "what happened to…")."""
    if target.isdigit():
        return AuditLog.target_id == int(target)
    like = f"%{target}%"
    return or_(*(
        and_(AuditLog.target_type == model.__tablename__,
             AuditLog.target_id.in_(select(model.id).where(column.ilike(like))))
        for model, column in ((Order, Order.number), (Organisation, Organisation.name),
                              (Product, Product.title))))


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
    if filters.target:
        conditions.append(_audit_target_condition(filters.target))
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


# --------------------------------------------------------------------------- staff overview

RECENT_SIGNUPS = 20


@dataclass(frozen=True)
class Overview:
    enterprises_by_status: dict[str, int]
    providers_by_status: dict[str, int]
    products_by_status: dict[str, int]
    users_by_role: dict[str, int]
    recent_signups: list[Organisation]

    @property
    def enterprises(self) -> int:
        return sum(self.enterprises_by_status.values())

    @property
    def providers(self) -> int:
        return sum(self.providers_by_status.values())

    @property
    def products(self) -> int:
        return sum(self.products_by_status.values())

    @property
    def users(self) -> int:
        return sum(self.users_by_role.values())


def _counts(session: Session, column, keys, *where) -> dict[str, int]:
    """Row counts grouped by ``column``, with a zero for every known key."""
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    found = dict(rows)
    return {key: found.get(key, 0) for key in keys} | {
        key: value for key, value in found.items() if key not in keys}


def overview(session: Session, recent: int = RECENT_SIGNUPS) -> Overview:
    return Overview(
        enterprises_by_status=_counts(session, Organisation.verification_status,
                                      VERIFICATION_STATUSES, Organisation.kind == "enterprise"),
        providers_by_status=_counts(session, Organisation.verification_status,
                                    VERIFICATION_STATUSES, Organisation.kind == "provider"),
        products_by_status=_counts(session, Product.status, PRODUCT_STATUSES),
        users_by_role=_counts(session, User.role, ROLES),
        recent_signups=list(session.scalars(
            select(Organisation)
            .options(selectinload(Organisation.members))
            .order_by(Organisation.created_at.desc(), Organisation.id.desc())
            .limit(recent))),
    )
