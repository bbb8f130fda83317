"""The demo activity (`flask load-demo-activity`): nine months of orders among the demo
organisations, made through the real services, that the demo logins and the monitors'
console can see; idempotent with --if-empty and deterministic for a seed and a clock."""

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from conftest import _wipe, post_form
from sqlalchemy import func, select

from catalog.categories import seed_categories
from catalog.models import Product, Review
from marketplace.database import db, utcnow
from marketplace.demo import activity as demo_activity
from marketplace.demo.catalogue import (
    BUYER_EMAIL,
    DEMO_PASSWORD,
    PROVIDER_EMAIL,
    STAFF_EMAIL,
    load_demo_data,
)
from marketplace.models import Notification, User
from orders import sla
from orders.models import (
    LedgerEntry,
    MilestoneAlert,
    Order,
    QuoteRequest,
    SettlementBatch,
    SettlementStatement,
)

SMALL_ORDERS = 75  # a small demo: every state, the demo logins' orders, quick to play
EVERY_STATE = {"pending_payment", "paid", "accepted", "in_progress", "delivered", "completed",
               "settled", "declined", "cancelled", "disputed", "resolved"}


def _small_demo(app, session) -> None:
    load_demo_data(session, seed=20261123, enterprises=60)
    session.commit()
    result = app.test_cli_runner().invoke(args=["seed-demo-vouchers"])
    assert result.exit_code == 0, result.output


def _play(app, now: datetime, *extra: str):
    return app.test_cli_runner().invoke(args=[
        "load-demo-activity", "--if-empty", "--orders", str(SMALL_ORDERS),
        "--now", now.isoformat(), *extra])


def _login(app, email: str):
    client = app.test_client()
    response = post_form(client, "/login", {"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302, email
    return client


def _numbers(session, **where) -> set[str]:
    query = select(Order.number)
    for column, value in where.items():
        query = query.where(getattr(Order, column) == value)
    return set(session.scalars(query))


def _org_of(session, email: str) -> int:
    return session.scalar(select(User.organisation_id).where(User.email == email))


def test_demo_activity_fills_every_page_and_runs_once(app):
    with app.app_context():
        _small_demo(app, db.session)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    result = _play(app, now)
    assert result.exit_code == 0, result.output
    assert re.search(r"Demo activity: \d+ orders \(.*settled \d+.*\); \d+ quote requests; "
                     r"\d+ reviews \(\d+ replies\); \d+ settlement batches \(\d+ paid\); "
                     r"[\d.]+ s\.", result.output), result.output
    with app.app_context():
        expected = _check_history(db.session, now)

    # The pages, as a browser sees them (outside any application context).
    client = _login(app, BUYER_EMAIL)
    page = client.get("/orders")
    assert page.status_code == 200
    assert all(number in page.get_data(as_text=True) for number in expected["buyer"])
    client = _login(app, PROVIDER_EMAIL)
    page = client.get("/provider/orders?group=todo")
    assert page.status_code == 200
    assert all(number in page.get_data(as_text=True) for number in expected["provider"])
    assert client.get("/provider/quotes").status_code == 200
    client = _login(app, STAFF_EMAIL)
    page = client.get("/staff")
    assert page.status_code == 200
    body = unescape(page.get_data(as_text=True))
    for testid in ("figure-open-orders", "figure-overdue", "figure-disputes", "orders-total"):
        value = re.search(rf'data-testid="{testid}">([^<]*)<', body).group(1).strip()
        assert value not in ("", "0"), (testid, value)
    progress = client.get("/staff/progress?sla=overdue")
    assert progress.status_code == 200
    assert all(number in progress.get_data(as_text=True) for number in expected["overdue"])
    # Work whose own due date is ahead but whose milestone is past due (issue 13).
    progress = client.get("/staff/progress?milestone=overdue")
    assert progress.status_code == 200
    assert all(number in progress.get_data(as_text=True) for number in expected["milestone"])
    # Paperwork (issue 14): every order at work has its contract signed; 发票 were issued.
    with app.app_context():
        from orders.paperwork_models import Contract, Invoice

        working = db.session.scalars(select(Contract).join(Order).where(
            Order.status.in_(("in_progress", "delivered", "completed", "settled")))).all()
        assert working and all(c.status == "signed" for c in working)
        assert db.session.scalar(select(func.count(Invoice.id)).where(
            Invoice.status == "issued")) > 0
    assert client.get("/staff/paperwork").status_code == 200

    # A second run with --if-empty makes nothing; without it the command refuses.
    again = _play(app, now)
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    refused = app.test_cli_runner().invoke(args=["load-demo-activity", "--orders", "40"])
    assert refused.exit_code != 0 and "already has orders" in refused.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == expected["count"]


def _check_history(session, now: datetime) -> dict:
    states = Counter(session.scalars(select(Order.status)))
    assert set(states) == EVERY_STATE, states
    assert sum(states.values()) >= SMALL_ORDERS * 0.8
    # All three pricing modes, bank transfers and vouchers, all three rulings.
    assert set(session.scalars(select(Order.kind).distinct())) == {"package", "quote",
                                                                   "application"}
    assert session.scalar(select(func.count()).where(Order.voucher_amount > 0)) > 0
    assert session.scalar(select(func.count()).where(Order.payment_method == "bank_transfer"))
    assert set(session.scalars(select(Order.ruling).where(Order.ruling.is_not(None)))) == {
        "full", "partial", "none"}
    # Every order's ledger balances to zero, as in production.
    unbalanced = session.execute(
        select(LedgerEntry.order_id, func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.order_id).having(func.sum(LedgerEntry.amount) != 0)).all()
    assert unbalanced == []
    assert session.scalar(select(func.count(func.distinct(LedgerEntry.order_id)))) > 40
    # Timestamps are history, in order: paid after placed, due after accepted, all before now.
    for order in session.scalars(select(Order)):
        assert order.created_at <= now
        if order.paid_at:
            assert order.created_at <= order.paid_at <= now
        if order.accepted_at:
            assert order.paid_at <= order.accepted_at < order.due_at
        if order.completed_at:
            assert order.accepted_at < order.completed_at <= now
    oldest = session.scalar(select(func.min(Order.created_at)))
    assert now - oldest > timedelta(days=150)
    # Settlement: earlier months paid, the last month's batch waiting for staff.
    batches = session.scalars(select(SettlementBatch).order_by(SettlementBatch.period_start)
                              ).all()
    assert len(batches) >= 3
    unpaid = session.scalars(select(SettlementStatement.batch_id)
                             .where(SettlementStatement.paid_at.is_(None)).distinct()).all()
    assert unpaid == [batches[-1].id]
    # Reviews published (some replied to), listings rated.
    assert session.scalar(select(func.count()).where(Review.published_at.is_not(None))) > 20
    assert session.scalar(select(func.count()).where(Review.reply.is_not(None))) > 0
    assert session.scalar(select(func.count()).where(Product.rating_count > 0)) > 5
    # Old notifications were read; the last days' are waiting.
    unread = session.scalars(select(Notification.created_at)
                             .where(Notification.read_at.is_(None))).all()
    assert unread and min(unread) >= now - timedelta(days=3)

    # The demo buyer's enterprise: about ten orders in many states, one completed order
    # waiting for its review.
    buyer_org = _org_of(session, BUYER_EMAIL)
    mine = Counter(session.scalars(select(Order.status).where(Order.buyer_org_id == buyer_org)))
    assert sum(mine.values()) >= 9 and {"delivered", "completed", "in_progress",
                                        "pending_payment", "paid"} <= set(mine), mine
    completed = session.scalars(select(Order.id).where(Order.buyer_org_id == buyer_org,
                                                       Order.status == "completed")).all()
    rated = set(session.scalars(select(Review.order_id).where(Review.side == "buyer")))
    assert set(completed) - rated, "one completed order awaits the demo buyer's review"
    # The demo institution: a paid order to accept and an open quote request.
    provider_org = _org_of(session, PROVIDER_EMAIL)
    assert session.scalar(select(func.count()).where(
        QuoteRequest.provider_org_id == provider_org, QuoteRequest.status == "open")) >= 1
    waiting = _numbers(session, provider_org_id=provider_org, status="paid")
    assert waiting
    overdue = session.scalars(select(Order.number).where(
        Order.status.in_(("accepted", "in_progress")), Order.due_at < now)).all()
    assert overdue
    # An order overdue only by a milestone (its own due date ahead), announced by the timers.
    milestone_late = session.scalars(select(Order.number).where(
        sla.milestone_overdue(now), Order.due_at > now + timedelta(days=1))).all()
    assert milestone_late
    assert session.scalar(select(func.count(MilestoneAlert.id)).where(
        MilestoneAlert.kind == "overdue")) > 0
    return {
        "milestone": milestone_late,
        "buyer": session.scalars(select(Order.number).where(Order.buyer_org_id == buyer_org)
                                 .order_by(Order.created_at.desc()).limit(3)).all(),
        "provider": waiting, "overdue": overdue,
        "count": session.scalar(select(func.count()).select_from(Order)),
    }


# Clocks at which the history once came out wrong: an order the nightly timer had
# declined before its institution accepted it (02:00), no "resolved" order left because
# every ruling had been settled (05:00 on the 5th), and the first hour of a month.
@pytest.mark.parametrize("now", [datetime(2026, 11, 24, 2, tzinfo=UTC),
                                 datetime(2026, 12, 5, 5, tzinfo=UTC),
                                 datetime(2027, 1, 1, 0, tzinfo=UTC)], ids=str)
def test_every_clock_gives_a_whole_history(app, now):
    with app.app_context():
        _small_demo(app, db.session)
    result = _play(app, now)
    assert result.exit_code == 0, result.output
    with app.app_context():
        _check_history(db.session, now)


def _fingerprint(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(
        select(Order.number, Order.status, Order.kind, Order.subtotal, Order.voucher_amount,
               Order.created_at, Order.completed_at).order_by(Order.id))]


def test_same_seed_and_clock_give_the_same_history(app, session):
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    _small_demo(app, session)
    assert _play(app, now).exit_code == 0
    first = _fingerprint(session)
    reviews = session.scalar(select(func.count()).select_from(Review))
    assert len(first) >= SMALL_ORDERS * 0.8

    db.session.remove()
    _wipe(db.engine)
    with app.app_context():
        seed_categories(db.session)
        db.session.commit()
        _small_demo(app, db.session)
        assert _play(app, now).exit_code == 0
        assert _fingerprint(db.session) == first
        assert db.session.scalar(select(func.count()).select_from(Review)) == reviews


def test_refuses_without_a_demo(session):
    with pytest.raises(demo_activity.ActivityError, match="load the demo first"):
        demo_activity.load_demo_activity(session, orders=40)
