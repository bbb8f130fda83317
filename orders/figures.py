"""The monitors' dashboard figures, kept as they change (the one module that owns them).

Two small tables (orders/models.py):

- ``order_day_figure``: per local calendar day (``PLATFORM_TIMEZONE``, Beijing by default), order category (0: none) and currency, the orders
  placed that day, the orders paid that day and the sum of their subtotals (GMV);
- ``order_state_count``: orders per status.

They change in the SAME transaction as the order change they reflect:

- orders inserted, updated or deleted through the ORM (checkout, quotes, applications,
  factories, demo loaders): a session ``before_flush`` / ``after_flush`` listener;
- UPDATE / DELETE statements on orders run through a session, such as the conditional
  UPDATE of ``orders.workflow.transition()`` (every status change): a ``do_orm_execute``
  listener reads the matched rows before and after the statement.

Refunds and cancellations change neither the day an order was placed or paid nor its
subtotal, so GMV is the value of the orders paid in a period (as the dashboard always showed
it); a cancellation moves the order from its state to ``cancelled``.

Bulk loads that bypass both (bench/scale.py's generator, raw SQL) call ``rebuild()``, also
the ``flask rebuild-console-figures`` command: it recomputes both tables from the orders in
one transaction, so it is idempotent and safe to re-run or interrupt. Upserts touch the rows
of one flush in key order, so two transactions never wait for each other in a cycle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, cast, delete, event, func, insert, literal_column, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from marketplace.i18n import platform_zone, to_local
from orders.models import Order, OrderDayFigure, OrderStateCount

_TRACKED = ("status", "created_at", "paid_at", "category_id", "currency", "subtotal")


@dataclass(frozen=True)
class Snapshot:
    """What of an order the figures depend on."""

    status: str
    created: date | None
    paid: date | None
    category: int
    currency: str
    subtotal: int


def _day(moment: datetime | None) -> date | None:
    """The platform's local calendar day of an instant (Beijing days by default)."""
    if moment is None:
        return None
    return to_local(moment).date()


def snapshot(order: Order) -> Snapshot:
    return Snapshot(order.status or "pending_payment", _day(order.created_at),
                    _day(order.paid_at), order.category_id or 0, order.currency or "CNY",
                    int(order.subtotal or 0))


def _row_snapshot(row) -> Snapshot:
    return Snapshot(row.status, _day(row.created_at), _day(row.paid_at), row.category_id or 0,
                    row.currency, int(row.subtotal or 0))


class _Deltas:
    def __init__(self):
        self.days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.states: dict[str, int] = defaultdict(int)

    def add(self, snap: Snapshot | None, sign: int) -> None:
        if snap is None:
            return
        self.states[snap.status] += sign
        if snap.created is not None:
            self.days[(snap.created, snap.category, snap.currency)][0] += sign
        if snap.paid is not None:
            bucket = self.days[(snap.paid, snap.category, snap.currency)]
            bucket[1] += sign
            bucket[2] += sign * snap.subtotal

    def change(self, before: Snapshot | None, after: Snapshot | None) -> None:
        if before != after:
            self.add(before, -1)
            self.add(after, 1)

    def apply(self, connection) -> None:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        day_table, state_table = OrderDayFigure.__table__, OrderStateCount.__table__
        for (day, category, currency), (created, paid, gmv) in sorted(self.days.items()):
            if not (created or paid or gmv):
                continue
            stmt = dialect.insert(day_table).values(
                day=day, category_id=category, currency=currency, orders_created=created,
                orders_paid=paid, gmv=gmv)
            connection.execute(stmt.on_conflict_do_update(
                index_elements=["day", "category_id", "currency"],
                set_={"orders_created": day_table.c.orders_created + created,
                      "orders_paid": day_table.c.orders_paid + paid,
                      "gmv": day_table.c.gmv + gmv}))
        for status, count in sorted(self.states.items()):
            if not count:
                continue
            stmt = dialect.insert(state_table).values(status=status, orders=count)
            connection.execute(stmt.on_conflict_do_update(
                index_elements=["status"], set_={"orders": state_table.c.orders + count}))


# --------------------------------------------------------------------------- listeners

def _tracked_rows(connection, where) -> dict[int, Snapshot]:
    o = Order.__table__.c
    return {row.id: _row_snapshot(row) for row in connection.execute(
        select(o.id, *[o[name] for name in _TRACKED]).where(where))}


@event.listens_for(Session, "do_orm_execute")
def _orm_execute(state) -> object:
    """UPDATE / DELETE statements on orders run through a session (``workflow.transition``'s
    conditional UPDATE, bulk status changes): the rows they match before and after."""
    if not (state.is_update or state.is_delete):
        return None
    statement = state.statement
    table = getattr(statement, "table", None)
    if getattr(table, "name", None) != Order.__tablename__:
        return None
    connection = state.session.connection()
    where = statement.whereclause if statement.whereclause is not None else true()
    before = _tracked_rows(connection, where)
    result = state.invoke_statement()
    if not before:
        return result
    after = {} if state.is_delete else _tracked_rows(
        connection, Order.__table__.c.id.in_(list(before)))
    deltas = _Deltas()
    for order_id, old in before.items():
        deltas.change(old, after.get(order_id))
    deltas.apply(connection)
    return result

def _changed_orders(session: Session) -> list[Order]:
    from sqlalchemy import inspect

    changed = []
    for obj in session.dirty:
        if isinstance(obj, Order) and obj.id is not None:
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _TRACKED):
                changed.append(obj)
    return changed


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context, instances) -> None:
    """Updates and deletes: the old values come from the database (an attribute set after
    expiry has no history), the new ones from the object."""
    changed = _changed_orders(session)
    deleted = [obj for obj in session.deleted if isinstance(obj, Order) and obj.id is not None]
    if not changed and not deleted:
        return
    columns = [Order.__table__.c[name] for name in _TRACKED]
    ids = [obj.id for obj in changed + deleted]
    connection = session.connection()
    old = {row.id: _row_snapshot(row) for row in connection.execute(
        select(Order.__table__.c.id, *columns).where(Order.__table__.c.id.in_(ids)))}
    deltas = _Deltas()
    for obj in changed:
        deltas.change(old.get(obj.id), snapshot(obj))
    for obj in deleted:
        deltas.add(old.get(obj.id), -1)
    deltas.apply(connection)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    """Inserts, once the defaults (placed time, status) are filled in."""
    new = [obj for obj in session.new if isinstance(obj, Order)]
    if not new:
        return
    deltas = _Deltas()
    for obj in new:
        deltas.add(snapshot(obj), 1)
    deltas.apply(session.connection())


# --------------------------------------------------------------------------- rebuild

def _day_expr(connection, column):
    """The local calendar day of a stored instant, in SQL (as ``_day`` does in Python)."""
    zone = platform_zone()
    if connection.dialect.name == "postgresql":
        return cast(column.op("AT TIME ZONE")(literal_column(f"'{zone.key}'")), Date)
    # SQLite knows no zones: shift by the zone's offset now. Exact for Asia/Shanghai (no
    # daylight saving since 1991); a zone with DST would need the rebuild in Python.
    offset = datetime.now(zone).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds()) // 60:+d} minutes")


def rebuild(session: Session) -> dict[str, int]:
    """Recompute both tables from the orders (idempotent; the caller commits)."""
    connection = session.connection()
    o = Order.__table__.c
    category = func.coalesce(o.category_id, 0)
    connection.execute(delete(OrderDayFigure.__table__))
    connection.execute(delete(OrderStateCount.__table__))
    created_day, paid_day = _day_expr(connection, o.created_at), _day_expr(connection, o.paid_at)
    placed = select(created_day.label("day"), category.label("category_id"),
                    o.currency.label("currency"), func.count().label("created"),
                    literal_column("0").label("paid"), literal_column("0").label("gmv")
                    ).group_by(created_day, category, o.currency)
    paid = select(paid_day.label("day"), category.label("category_id"),
                  o.currency.label("currency"), literal_column("0").label("created"),
                  func.count().label("paid"), func.sum(o.subtotal).label("gmv")
                  ).where(o.paid_at.is_not(None)).group_by(paid_day, category, o.currency)
    both = placed.union_all(paid).subquery()
    connection.execute(insert(OrderDayFigure.__table__).from_select(
        ["day", "category_id", "currency", "orders_created", "orders_paid", "gmv"],
        select(both.c.day, both.c.category_id, both.c.currency, func.sum(both.c.created),
               func.sum(both.c.paid), func.sum(both.c.gmv))
        .group_by(both.c.day, both.c.category_id, both.c.currency)))
    connection.execute(insert(OrderStateCount.__table__).from_select(
        ["status", "orders"], select(o.status, func.count()).group_by(o.status)))
    return {"days": session.scalar(select(func.count()).select_from(OrderDayFigure)) or 0,
            "orders": session.scalar(select(func.coalesce(func.sum(OrderStateCount.orders), 0)))
            or 0}


# --------------------------------------------------------------------------- reading

def state_counts(session: Session) -> dict[str, int]:
    return {status: int(count) for status, count in session.execute(
        select(OrderStateCount.status, OrderStateCount.orders))}


def daily(session: Session, first: date, last: date, currency: str
          ) -> tuple[dict[date, int], dict[date, int]]:
    """({day: orders placed}, {day: GMV paid in ``currency``}) for first..last."""
    f = OrderDayFigure
    placed: dict[date, int] = {}
    gmv: dict[date, int] = {}
    for day, created, money, row_currency in session.execute(
            select(f.day, func.sum(f.orders_created), func.sum(f.gmv), f.currency)
            .where(f.day >= first, f.day <= last).group_by(f.day, f.currency)):
        placed[day] = placed.get(day, 0) + int(created or 0)
        if row_currency == currency:
            gmv[day] = gmv.get(day, 0) + int(money or 0)
    return placed, gmv


def by_category(session: Session, currency: str) -> dict[int, tuple[int, int]]:
    """{category id (0: none): (orders placed, GMV paid in ``currency``)} over all time."""
    f = OrderDayFigure
    totals: dict[int, list[int]] = {}
    for category_id, row_currency, created, money in session.execute(
            select(f.category_id, f.currency, func.sum(f.orders_created), func.sum(f.gmv))
            .group_by(f.category_id, f.currency)):
        bucket = totals.setdefault(category_id, [0, 0])
        bucket[0] += int(created or 0)
        if row_currency == currency:
            bucket[1] += int(money or 0)
    return {k: (v[0], v[1]) for k, v in totals.items()}
