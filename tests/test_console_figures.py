"""The dashboard's maintained figures (orders/figures.py): after a mix of orders placed, paid,
worked on, cancelled, disputed and refunded by ruling, changed by hand and deleted, the daily
roll-up and the per-state counters equal an aggregate of the orders from scratch, to the cent;
the rebuild command recomputes the same rows and is idempotent; the dashboard reads them."""

import re
from collections import defaultdict
from datetime import timedelta
from html import unescape

import factories
import order_support as support
import pytest
import time_machine
from sqlalchemy import delete, select

from marketplace.console_service import ProgressFilters, dashboard, progress
from marketplace.database import utcnow
from marketplace.i18n import to_local
from orders import figures, sla, workflow
from orders.models import Order, OrderDayFigure, OrderStateCount


def from_scratch(session) -> tuple[dict, dict]:
    days: dict = defaultdict(lambda: [0, 0, 0])
    states: dict = defaultdict(int)
    for order in session.scalars(select(Order)):
        states[order.status] += 1
        key = (order.category_id or 0, order.currency)
        days[(to_local(order.created_at).date(), *key)][0] += 1
        if order.paid_at is not None:
            bucket = days[(to_local(order.paid_at).date(), *key)]
            bucket[1] += 1
            bucket[2] += order.subtotal
    return ({k: tuple(v) for k, v in days.items()}, dict(states))


def maintained(session) -> tuple[dict, dict]:
    days = {(f.day, f.category_id, f.currency): (f.orders_created, f.orders_paid, f.gmv)
            for f in session.scalars(select(OrderDayFigure))
            if f.orders_created or f.orders_paid or f.gmv}
    states = {s.status: s.orders for s in session.scalars(select(OrderStateCount)) if s.orders}
    return days, states


def busy_history(session):
    """Orders through the real workflow and the ORM, over several days and categories."""
    p = support.parties(session)
    staff = p.staff
    now = utcnow()
    other_category = factories.product(session, p.provider_org)
    made = []
    for n in range(12):
        product = other_category if n % 3 == 0 else None
        order = support.order(session, p, price=100_001 + n * 9_999,
                              **({"product": product} if product else {}))
        order.created_at = now - timedelta(days=n, hours=n)
        made.append(order)
    session.flush()
    for n, order in enumerate(made):
        if n % 6 == 5:
            continue  # stays awaiting payment
        workflow.transition(session, order, "pay", staff, now=now - timedelta(days=n // 2))
    workflow.transition(session, made[0], "cancel", staff, note="Buyer changed their mind")
    for order in made[1:5]:
        workflow.transition(session, order, "accept", p.provider)
    workflow.transition(session, made[1], "start", p.provider)
    workflow.transition(session, made[1], "deliver", p.provider)
    workflow.transition(session, made[1], "complete", p.buyer)
    workflow.transition(session, made[2], "dispute", p.buyer, note="Late and incomplete")
    workflow.transition(session, made[2], "resolve", staff, note="Half back",
                        changes={"ruling": "partial", "ruling_refund": 50_000})
    workflow.transition(session, made[3], "decline", p.provider, note="No capacity") \
        if made[3].status == "paid" else None
    session.commit()
    # Changed by hand through the ORM (expired attributes first: no history of old values).
    made[6].subtotal = 123_456
    made[7].category_id = other_category.category_id
    made[8].paid_at = now - timedelta(days=40)
    session.commit()
    support.set_status(session, made[9], "in_progress")  # a bulk UPDATE through the session
    session.execute(delete(Order).where(Order.id == made[10].id))
    made[11].currency = "USD"
    session.commit()
    return made


def test_rollup_equals_a_from_scratch_aggregate(app, session):
    busy_history(session)
    expected_days, expected_states = from_scratch(session)
    assert expected_states.get("cancelled") == 1 and expected_states.get("resolved") == 1
    assert maintained(session) == (expected_days, expected_states)
    # A rollback leaves the figures as they were (same transaction).
    p = support.parties(session)
    session.commit()
    before = maintained(session)
    support.order(session, p, price=777)
    session.rollback()
    assert maintained(session) == before


def test_rebuild_recomputes_the_same_rows_and_is_idempotent(app, session):
    busy_history(session)
    kept = maintained(session)
    session.execute(delete(OrderDayFigure))
    session.execute(delete(OrderStateCount))
    session.commit()
    assert maintained(session) == ({}, {})
    report = figures.rebuild(session)
    session.commit()
    assert maintained(session) == kept
    assert report["orders"] == sum(kept[1].values())
    figures.rebuild(session)
    session.commit()
    assert maintained(session) == kept


def test_rebuild_command(app, session):
    busy_history(session)
    kept = maintained(session)
    session.execute(delete(OrderDayFigure))
    session.commit()
    result = app.test_cli_runner().invoke(args=["rebuild-console-figures"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt the console figures" in result.output
    session.expire_all()
    assert maintained(session) == kept


def test_dashboard_reads_the_rollup(app, session):
    busy_history(session)
    now = utcnow()
    data = dashboard(session, now, period="30d")
    first_day = (now - timedelta(days=29)).date()
    live = list(session.scalars(select(Order)))
    paid_cny = [o for o in live if o.paid_at and o.currency == "CNY"
                and o.paid_at.date() >= first_day]
    assert len(paid_cny) < len([o for o in live if o.paid_at])  # one paid 40 days ago
    assert data.series.total_gmv == sum(o.subtotal for o in paid_cny)
    assert data.series.total_orders == len(live)
    assert data.by_state["cancelled"] == 1
    assert sum(f.orders for f in data.by_category) == len(live)
    assert sum(f.gmv for f in data.by_category) == sum(
        o.subtotal for o in live if o.paid_at and o.currency == "CNY")
    year = dashboard(session, now, period="12m")
    assert year.series.total_gmv == sum(f.gmv for f in year.by_category)


# --------------------------------------------------------------------------- cursor paging

RANK = {"overdue": 0, "at_risk": 1, "on_track": 2}


@pytest.fixture
def tied_orders(session):
    """Open orders in every state, many sharing one deadline (ties), some without one."""
    p = support.parties(session)
    now = utcnow().replace(microsecond=0)
    day = timedelta(days=1)
    same = now + 10 * day
    specs = [
        ("in_progress", {"due_at": now - 2 * day}), ("in_progress", {"due_at": now - 2 * day}),
        ("accepted", {"due_at": now - 2 * day}), ("paid", {"accept_by": now - day}),
        ("in_progress", {"due_at": now + day}), ("accepted", {"due_at": now + day}),
        ("paid", {"accept_by": now + day}), ("in_progress", {"due_at": now + 2 * day}),
        # On track inside the warning window (just started): read only when needed.
        ("accepted", {"due_at": now + day, "accepted_at": now, "paid_at": now}),
        ("in_progress", {"due_at": now + 2 * day, "accepted_at": now, "paid_at": now}),
        *[("in_progress", {"due_at": same}) for _ in range(5)],
        *[("accepted", {"due_at": same}) for _ in range(3)],
        ("paid", {"accept_by": same}), ("in_progress", {"due_at": None}),
        ("delivered", {"due_at": same}), ("delivered", {"due_at": now - day}),
        ("disputed", {"due_at": None}), ("pending_payment", {"due_at": None}),
        ("pending_payment", {"due_at": same}),
    ]
    orders = []
    for n, (status, fields) in enumerate(specs):
        fields = {"paid_at": now - 5 * day, "accepted_at": now - 4 * day, **fields}
        orders.append(support.order(session, p, status, price=100_000 + (n % 4) * 1000,
                                    **fields))
    for n, order in enumerate(orders):
        order.created_at = now - timedelta(hours=n % 5)
    support.order(session, p, "completed")
    session.commit()
    return orders, now


def reference(orders, now, sort, descending, code=None):
    """The whole list in order, from sla.classify in Python (no SQL)."""
    sign = -1 if descending else 1
    rows = []
    for order in orders:
        status = sla.classify(order, now)
        if code and status.code != code:
            continue
        if sort in ("sla", "due"):  # as the list has always sorted: accept_by if paid,
            value = order.accept_by if order.status == "paid" else order.due_at  # else due_at
        else:
            value = order.subtotal if sort == "amount" else order.created_at
        number = value.timestamp() if hasattr(value, "timestamp") else (value or 0)
        group = RANK[status.code] if sort == "sla" else 0
        rows.append(((group * sign, value is None, number * sign, order.id * sign), order.id))
    return [order_id for _key, order_id in sorted(rows)]


def walk(session, filters, now, size):
    pages, after = [], None
    while True:
        result = progress(session, filters, now, page=len(pages) + 1, page_size=size,
                          after=after)
        pages.append([row.order.id for row in result.rows])
        if not result.next_cursor:
            return pages, result
        after = result.next_cursor
        assert len(pages) < 50


@pytest.mark.parametrize("sort", ["sla", "due", "amount", "created"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_cursor_pages_have_no_duplicates_or_gaps(app, session, tied_orders, sort, direction):
    orders, now = tied_orders
    filters = ProgressFilters(sort=sort, direction=direction)
    pages, last = walk(session, filters, now, 4)
    flat = [order_id for page in pages for order_id in page]
    assert flat == reference(orders, now, sort, direction == "desc")
    assert len(flat) == len(set(flat)) == len(orders) == last.page.total
    assert all(len(page) == 4 for page in pages[:-1])
    # Walking back with "Previous" from the last page gives the same pages.
    back, before, number = [pages[-1]], last.prev_cursor, len(pages)
    while before:
        number -= 1
        result = progress(session, filters, now, page=number, page_size=4, before=before)
        back.append([row.order.id for row in result.rows])
        before = result.prev_cursor
    assert list(reversed(back)) == pages
    assert number == 1


@pytest.mark.parametrize("code", ["overdue", "at_risk", "on_track"])
def test_cursor_pages_with_an_sla_filter(app, session, tied_orders, code):
    orders, now = tied_orders
    for sort in ("sla", "due", "amount"):
        filters = ProgressFilters(sort=sort, direction="asc", sla=code)
        pages, last = walk(session, filters, now, 3)
        flat = [order_id for page in pages for order_id in page]
        assert flat == reference(orders, now, sort, False, code)
        assert flat  # every SLA status has orders in the fixture
        assert last.page.total == len(flat)


def test_progress_pager_links(app, client, session, tied_orders):
    orders, now = tied_orders
    staff = factories.user(session, role="staff")
    session.commit()
    app.config["PAGE_SIZE"] = 10
    # The clock stands still: two orders "just started" turn at risk a moment later (0% done,
    # more than 0% expected), which would legitimately reorder the list between requests.
    clock = time_machine.travel(now, tick=False)
    clock.start()
    try:
        support.login(client, staff)
        first = unescape(client.get("/staff/progress").get_data(as_text=True))
        assert f"Showing 1–10 of {len(orders)} open orders · page 1 of 3" in first
        assert 'rel="prev"' not in first
        following = re.search(r'href="([^"]+)" rel="next"', first).group(1)
        second = unescape(client.get(unescape(following)).get_data(as_text=True))
        assert f"Showing 11–20 of {len(orders)} open orders · page 2 of 3" in second
        previous = re.search(r'href="([^"]+)" rel="prev"', second).group(1)
        again = unescape(client.get(unescape(previous)).get_data(as_text=True))
        assert numbers(again) == numbers(first)
        assert set(numbers(first)).isdisjoint(numbers(second))
        # A cursor that does not parse is page 1, not an error.
        assert numbers(unescape(client.get("/staff/progress?after=nonsense&page=7")
                                .get_data(as_text=True))) == numbers(first)
    finally:
        clock.stop()
        app.config["PAGE_SIZE"] = 24


def numbers(body: str) -> list[str]:
    return re.findall(r'data-testid="progress-row" data-order="([^"]+)"', body)


def test_settlement_backlog_counts_up_to_its_cap(app, session, monkeypatch):
    from orders import settlement

    p = support.parties(session)
    now = utcnow()
    month_start = now.date().replace(day=1)
    before = now - timedelta(days=now.day + 3)
    made = [support.order(session, p, "completed", completed_at=before - timedelta(days=n))
            for n in range(3)]
    support.order(session, p, "completed", completed_at=now)  # this month: not yet due
    session.commit()
    count, oldest = settlement.unbatched_backlog(session, month_start, "CNY")
    assert count == 3 and str(count) == "3"
    assert oldest == made[2].completed_at
    monkeypatch.setattr(settlement, "BACKLOG_CAP", 2)
    count, oldest = settlement.unbatched_backlog(session, month_start, "CNY")
    assert count == 2 and str(count) == "2+"
    assert oldest == made[2].completed_at


def test_scale_generator_leaves_the_figures_equal_to_its_orders(app, session):
    """bench/scale.py writes orders with raw SQL and then rebuilds the figures."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import scale

    from marketplace.database import db

    scale.generate(db.engine, scale.Sizes(listings=200, enterprises=20, orders=300),
                   say=lambda _message: None)
    session.expire_all()
    days, states = maintained(session)
    assert sum(states.values()) == 300
    assert (days, states) == from_scratch(session)


def test_at_risk_count_stops_at_its_cap(app, client, session, tied_orders, monkeypatch):
    from marketplace import console_service

    orders, now = tied_orders
    exact = console_service.at_risk_count(session, now, None)
    assert exact.exact and int(exact) == sum(
        1 for order in orders if sla.classify(order, now).code == "at_risk") > 2
    monkeypatch.setattr(console_service, "AT_RISK_CAP", 2)
    capped = console_service.at_risk_count(session, now, None)
    assert int(capped) == 2 and str(capped) == "2+"
    staff = factories.user(session, role="staff")
    session.commit()
    support.login(client, staff)
    body = unescape(client.get("/staff/progress").get_data(as_text=True))
    assert re.search(r'data-testid="sla-count-at_risk">2\+<', body)
    on_track = len(orders) - int(console_service.overdue_count(session, now)) - 2
    assert f'data-testid="sla-count-on_track">≤ {on_track}<' in body
    body = unescape(client.get("/staff").get_data(as_text=True))
    assert re.search(r'data-testid="figure-at-risk">2\+<', body)
