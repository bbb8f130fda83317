"""The monitors' console: dashboard figures against hand-computed values, the progress list
(filters, sort, pagination, empty states), the audit-log search, the shared navigation, and
that every /staff route is refused to everybody but staff."""

import json
import re
from datetime import timedelta
from html import unescape

import factories
import order_support as support
import pytest
from conftest import csrf_token
from sqlalchemy import func, select

from marketplace import audit
from marketplace.console_service import dashboard
from marketplace.database import db, utcnow
from marketplace.models import AuditLog, EmailMessage, Notification
from orders.models import Order, OrderEvent


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def figure(body: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', body)
    assert match, f"no figure {testid} on the page"
    return match.group(1).strip()


@pytest.fixture
def staff(session):
    user = factories.user(session, role="staff")
    session.commit()
    return user


# --------------------------------------------------------------------------- dashboard

@pytest.fixture
def fixture_orders(session):
    """Seven orders in known states, categories, amounts and dates (now = real clock)."""
    now = utcnow()
    p = support.parties(session)
    ip = factories.product(session, p.provider_org, category_slug="patent-application")
    finance = factories.product(session, p.provider_org, category_slug=_finance_slug(session))
    day = timedelta(days=1)
    specs = [
        # (product, status, price, paid days ago, created days ago, extra)
        (ip, "in_progress", 100000, 2, 3, dict(due_at=now - day, accepted_at=now - 2 * day)),
        (ip, "in_progress", 250000, 5, 5, dict(due_at=now - 2 * day, accepted_at=now - 5 * day)),
        (ip, "completed", 300000, 10, 11, {}),
        (finance, "disputed", 400000, 1, 1, dict(due_at=now + 9 * day)),
        (finance, "pending_payment", 50000, None, 0, {}),
        (finance, "paid", 70000, 40, 40, dict(accept_by=now + 5 * day)),  # outside 30 days
        (ip, "cancelled", 90000, None, 2, {}),
    ]
    orders = []
    for product, status, price, paid_ago, created_ago, extra in specs:
        order = support.order(session, p, status, price=price, product=product,
                              paid_at=now - paid_ago * day if paid_ago is not None else None,
                              **extra)
        order.created_at = now - created_ago * day
        orders.append(order)
    session.commit()
    return {"parties": p, "orders": orders, "now": now, "finance": finance, "ip": ip}


def _finance_slug(session):
    from catalog.models import Category

    ip_top = factories.category(session).parent_id
    top = session.scalar(select(Category).where(Category.parent_id.is_(None),
                                                Category.id != ip_top)
                         .order_by(Category.position))
    return top.children[0].slug


def test_dashboard_figures_equal_hand_computed_values(session, fixture_orders):
    data = dashboard(session, fixture_orders["now"], period="30d", warning_days=3)
    # GMV in the last 30 days: orders paid 2, 5, 10 and 1 days ago (not the one 40 days ago).
    assert data.series.total_gmv == 100000 + 250000 + 300000 + 400000
    assert data.series.total_orders == 6  # the order placed 40 days ago is outside
    assert len(data.series.labels) == 30 and data.series.labels[-1] == \
        fixture_orders["now"].date().isoformat()
    assert data.series.gmv[-2] == 400000 + 100000 * 0  # yesterday: the disputed order
    assert data.by_state["in_progress"] == 2 and data.by_state["disputed"] == 1
    assert data.by_state["cancelled"] == 1 and data.by_state["paid"] == 1
    assert data.open_orders == 5
    assert data.overdue == 2 and data.open_disputes == 1
    assert [o.subtotal for o, _ in data.overdue_orders] == [250000, 100000]  # most overdue first
    by_slug = {f.category.slug: (f.orders, f.gmv) for f in data.by_category}
    assert by_slug[fixture_orders["ip"].category.parent.slug] == (4, 100000 + 250000 + 300000)
    finance_top = fixture_orders["finance"].category.parent.slug
    assert by_slug[finance_top] == (3, 400000 + 70000)
    year = dashboard(session, fixture_orders["now"], period="12m")
    assert len(year.series.labels) == 12
    assert year.series.total_gmv == 100000 + 250000 + 300000 + 400000 + 70000
    assert year.series.total_orders == 7


def test_dashboard_page_shows_figures_charts_and_overdue_links(app, client, session,
                                                                fixture_orders, staff):
    support.login(client, staff)
    response = client.get("/staff")
    body = text(response)
    assert response.status_code == 200
    assert figure(body, "figure-overdue") == "2"
    assert figure(body, "figure-disputes") == "1"
    assert figure(body, "gmv-total") == "¥10,500.00"
    overdue = [o for o in fixture_orders["orders"] if o.subtotal in (100000, 250000)]
    for order in overdue:
        assert f'href="/staff/orders/{order.id}" data-testid="overdue-link"' in body
    data = json.loads(re.search(r'<script type="application/json" id="console-chart-data">'
                                r'(.*?)</script>', response.get_data(as_text=True), re.S).group(1))
    assert sum(data["orders"]) == 6 and sum(data["gmv"]) == 10500.0
    assert "vendor/chartjs/chart.umd.min.js" in body and "js/console.js" in body
    assert not re.search(r"<script>(?!\s*</script>)", body)  # no inline code
    # The overview figures are still on the dashboard.
    assert 'data-testid="headline-figures"' in body
    year = text(client.get("/staff?period=12m"))
    assert figure(year, "gmv-total") == "¥11,200.00"
    assert figure(year, "orders-total") == "7"


def test_dashboard_empty_platform(client, staff):
    support.login(client, staff)
    body = text(client.get("/staff"))
    assert 'data-testid="no-overdue"' in body and 'data-testid="no-disputes"' in body
    assert figure(body, "figure-open-orders") == "0"


def test_dashboard_query_count_does_not_grow_with_data(app, client, session, fixture_orders,
                                                       staff):
    from sqlalchemy import event

    support.login(client, staff)
    engine = db.engine

    def count_queries():
        seen = []

        def listener(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/staff").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return seen

    before = count_queries()
    p = fixture_orders["parties"]
    now = utcnow()
    for n in range(15):
        order = support.order(session, p, "accepted", price=1000 + n,
                              due_at=now - timedelta(hours=n + 1),
                              accepted_at=now - timedelta(days=3), paid_at=now - timedelta(days=4))
        order.created_at = now - timedelta(days=n % 20)
    support.order(session, p, "disputed")
    session.commit()
    # One request first: the data change moved the catalogue version, and the first page
    # after it reads what changed to bring the process's cached menu up to date (one query,
    # once, not per row).
    assert client.get("/staff").status_code == 200
    after = count_queries()
    assert len(after) == len(before), "\n\n".join(
        q for q in after if after.count(q) != before.count(q))


# --------------------------------------------------------------------------- progress

@pytest.fixture
def open_orders(session):
    now = utcnow()
    p = support.parties(session)
    other = factories.provider(session, name="Kunshan Testing Lab")
    other_user = factories.user(session, other)
    day = timedelta(days=1)
    rows = {}
    rows["late"] = support.order(session, p, "in_progress", price=300000,
                                 due_at=now - day, accepted_at=now - 10 * day,
                                 paid_at=now - 11 * day)
    rows["risky"] = support.order(session, p, "accepted", price=100000, due_at=now + day,
                                  accepted_at=now - 9 * day, paid_at=now - 10 * day)
    rows["fine"] = support.order(session, p, "in_progress", price=900000,
                                 due_at=now + 30 * day, accepted_at=now - day,
                                 paid_at=now - 2 * day)
    q = support.Parties(p.buyer_org, p.buyer, other, other_user, p.staff, p.outsider)
    rows["other"] = support.order(session, q, "paid", price=50000, accept_by=now + 2 * day,
                                  paid_at=now - 2 * day,
                                  product=factories.product(session, other,
                                                            category_slug=_finance_slug(session)))
    rows["closed"] = support.order(session, p, "completed", price=700000)
    for n, key in enumerate(["late", "risky", "fine", "other"]):
        rows[key].created_at = now - timedelta(hours=10 - n)
    session.commit()
    return {"rows": rows, "parties": p, "other": other}


def numbers(body: str) -> list[str]:
    return re.findall(r'data-testid="progress-row" data-order="([^"]+)"', body)


def test_progress_lists_open_orders_worst_first(client, open_orders, staff):
    rows = open_orders["rows"]
    support.login(client, staff)
    body = text(client.get("/staff/progress"))
    assert numbers(body) == [rows["late"].number, rows["risky"].number, rows["other"].number,
                             rows["fine"].number]
    assert rows["closed"].number not in body
    assert figure(body, "sla-count-overdue") == "1"
    assert figure(body, "sla-count-at_risk") == "2"
    assert figure(body, "sla-count-all") == "4"
    assert "due 1 day ago" in body


@pytest.mark.parametrize("query, expected", [
    ("sla=overdue", ["late"]),
    ("sla=at_risk", ["risky", "other"]),
    ("sla=on_track", ["fine"]),
    ("state=paid", ["other"]),
    ("provider=Kunshan", ["other"]),
    ("enterprise=zzz-no-such", []),
    ("sort=amount", ["fine", "late", "risky", "other"]),
    ("sort=amount&dir=asc", ["other", "risky", "late", "fine"]),
    ("sort=due", ["late", "risky", "other", "fine"]),
    ("sort=created", ["other", "fine", "risky", "late"]),
    ("sort=nonsense&sla=bogus", ["late", "risky", "other", "fine"]),
])
def test_progress_filters_and_sorts(client, open_orders, staff, query, expected):
    rows = open_orders["rows"]
    support.login(client, staff)
    body = text(client.get(f"/staff/progress?{query}"))
    assert numbers(body) == [rows[key].number for key in expected]


def test_progress_filters_by_ids_and_category(client, session, open_orders, staff):
    rows, other = open_orders["rows"], open_orders["other"]
    support.login(client, staff)
    body = text(client.get(f"/staff/progress?provider={other.id}"))
    assert numbers(body) == [rows["other"].number]
    assert "Kunshan Testing Lab" in figure_block(body, "named-filter")
    top = rows["other"].category.parent
    assert numbers(text(client.get(f"/staff/progress?category={top.id}"))) == [
        rows["other"].number]
    buyer = open_orders["parties"].buyer_org
    assert len(numbers(text(client.get(f"/staff/progress?enterprise={buyer.id}")))) == 4


def figure_block(body: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">(.*?)</div>', body, re.S)
    assert match
    return match.group(1)


def test_progress_paginates(app, client, session, open_orders, staff):
    app.config["PAGE_SIZE"] = 3
    try:
        support.login(client, staff)
        first = text(client.get("/staff/progress"))
        assert 'rel="next"' in first
        # "Next" carries a cursor (keyset pagination), not an OFFSET page number.
        following = re.search(r'href="([^"]+)" rel="next"', first).group(1)
        assert "after=" in following
        second = text(client.get(following))
        assert len(numbers(first)) == 3 and len(numbers(second)) == 1
        assert "Showing 1–3 of 4 open orders" in first
        assert "Showing 4–4 of 4 open orders" in second
        assert set(numbers(first)).isdisjoint(numbers(second))
    finally:
        app.config["PAGE_SIZE"] = 24


def test_progress_empty_states(client, session, staff):
    support.login(client, staff)
    body = text(client.get("/staff/progress"))
    assert "No open orders" in body
    body = text(client.get("/staff/progress?sla=overdue"))
    assert "No open order matches these filters" in body


# --------------------------------------------------------------------------- audit log

def test_audit_log_search_and_filters(client, session, staff):
    p = support.parties(session)
    order = support.order(session, p, "in_progress")
    other_staff = factories.user(session, role="staff")
    other_staff.full_name = "Wang Fang"
    first = audit.record(session, staff, "order.note", order, "Provider is ill this week")
    first.created_at = utcnow() - timedelta(days=10)
    audit.record(session, other_staff, "order.nudge", order, "Please post progress")
    audit.record(session, other_staff, "listing.approve", p.provider_org, "Documents fine")
    session.commit()
    support.login(client, staff)

    def actions(query):
        return re.findall(r'data-testid="audit-row" data-action="([^"]+)"',
                          text(client.get(f"/staff/audit?{query}")))

    assert sorted(actions("")) == ["listing.approve", "order.note", "order.nudge"]
    assert sorted(actions("actor=Wang")) == ["listing.approve", "order.nudge"]
    assert actions(f"actor={staff.id}") == ["order.note"]
    assert actions("action=order.nudge") == ["order.nudge"]
    assert sorted(actions("target_type=purchase_order")) == ["order.note", "order.nudge"]
    assert actions("q=ill+this") == ["order.note"]
    # "What happened to this order / institution?": by order number, name or id.
    assert sorted(actions(f"target={order.number}")) == ["order.note", "order.nudge"]
    assert actions(f"target={p.provider_org.name[:8]}") == ["listing.approve"]
    assert sorted(actions(f"target={order.id}&target_type=purchase_order")) == [
        "order.note", "order.nudge"]
    assert actions("target=NO-SUCH-ORDER") == []
    today = utcnow().date()
    assert sorted(actions(f"from={today.isoformat()}")) == ["listing.approve", "order.nudge"]
    assert actions(f"to={(today - timedelta(days=5)).isoformat()}") == ["order.note"]
    body = text(client.get(f"/staff/audit?from={today}&to={today - timedelta(days=1)}"))
    assert "The end date is before the start date." in body
    assert "No entry matches this search" in text(client.get("/staff/audit?q=nothing-like-it"))
    assert f'href="/staff/orders/{order.id}"' in text(client.get("/staff/audit"))


def test_audit_log_empty_and_paginated(app, client, session, staff):
    support.login(client, staff)
    assert "Nothing recorded yet" in text(client.get("/staff/audit"))
    p = support.parties(session)
    order = support.order(session, p, "in_progress")
    for n in range(55):
        audit.record(session, staff, "order.note", order, f"note {n}")
    session.commit()
    first = text(client.get("/staff/audit"))
    assert len(re.findall('data-testid="audit-row"', first)) == 50
    assert "Showing 1–50 of 55 entries" in first
    assert len(re.findall('data-testid="audit-row"', text(client.get("/staff/audit?page=2")))) == 5


# --------------------------------------------------------------------------- navigation

def test_console_nav_links_only_to_existing_pages(app, client, staff):
    support.login(client, staff)
    body = text(client.get("/staff/progress"))
    nav = re.search(r'data-testid="console-nav">(.*?)</ul>', body, re.S).group(1)
    for key in ("dashboard", "progress", "audit", "verification", "moderation", "vouchers"):
        assert f'data-testid="console-nav-{key}"' in nav, key
    for key, endpoint in [("credibility", "credibility.console_index"),
                          ("settlement", "settlement.batches"),
                          ("reconciliation", "settlement.reconciliation")]:
        assert (f'data-testid="console-nav-{key}"' in nav) == (endpoint in app.view_functions)
    assert 'data-testid="console-nav-commissions"' not in nav  # admins only
    assert 'aria-current="page"' in nav


# --------------------------------------------------------------------------- permissions

def _staff_rules(app, order_id: int):
    """(method, path) for every GET/POST rule under /staff, arguments filled in: the
    order's id for order routes, 1 for other ids, the first choice of an any() argument."""
    from werkzeug.routing import AnyConverter

    adapter = app.url_map.bind("localhost")
    rules = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == "/staff" or rule.rule.startswith("/staff/")):
            continue
        values = {}
        for arg in rule.arguments:
            converter = rule._converters.get(arg)
            if isinstance(converter, AnyConverter):
                values[arg] = sorted(converter.items)[0]
            else:
                values[arg] = order_id if arg == "order_id" else 1
        path = adapter.build(rule.endpoint, values)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            rules.append((method, path))
    return rules


def _snapshot(app):
    with app.app_context():
        s = db.session
        return (s.scalar(select(func.count(AuditLog.id))), s.scalar(select(func.count(OrderEvent.id))),
                s.scalar(select(func.count(Notification.id))),
                s.scalar(select(func.count(EmailMessage.id))),
                tuple(s.execute(select(Order.id, Order.status, Order.due_at, Order.version)
                                .order_by(Order.id)).all()))


@pytest.fixture
def target_order(app):
    """Objects with id 1 may not exist; this makes an order so /staff/orders/<id> is real."""
    with app.app_context():
        p = support.parties(db.session)
        order = support.order(db.session, p, "in_progress", due_at=utcnow() + timedelta(days=3))
        db.session.commit()
        return order.id


@pytest.mark.parametrize("role", ["visitor", "enterprise", "provider"])
def test_every_staff_route_is_refused_to_non_staff(app, client, target_order, role):
    rules = _staff_rules(app, target_order)
    assert len(rules) > 15  # the console, review, orders admin and whatever others added
    assert ("POST", f"/staff/orders/{target_order}/extend") in rules
    if role != "visitor":
        with app.app_context():
            org = factories.enterprise(db.session) if role == "enterprise" else \
                factories.provider(db.session)
            user = factories.user(db.session, org)
            db.session.commit()
        support.login(client, user)
    before = _snapshot(app)
    token = csrf_token(client)
    for method, path in rules:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token, "note-reason": "x",
                                               "cancel-reason": "x", "extend-reason": "x"})
        if role == "visitor":
            assert response.status_code == 302, (method, path, response.status_code)
            assert response.headers["Location"].startswith("/login?next="), (method, path)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
    assert _snapshot(app) == before


def test_dashboard_lists_low_credibility_alerts(app, client, session, staff):
    from providers import credibility

    threshold = credibility.alert_threshold()
    weak = factories.provider(session, name="Shaky Advisory Co.")
    weak.credibility_score, weak.credibility_level = threshold - 20, "C"
    fine = factories.enterprise(session, name="Solid Materials Co., Ltd.")
    fine.credibility_score, fine.credibility_level = threshold + 20, "AA"
    session.commit()
    support.login(client, staff)
    body = text(client.get("/staff"))
    rows = re.findall(r'data-testid="credibility-alert">(.*?)</tr>', body, re.S)
    assert len(rows) == 1
    assert "Shaky Advisory Co." in rows[0] and f">{threshold - 20}<" in rows[0]
    assert f'href="/staff/credibility/{weak.id}"' in rows[0]
    assert "Solid Materials" not in body.split('data-testid="low-credibility"')[1].split(
        "</table>")[0]
