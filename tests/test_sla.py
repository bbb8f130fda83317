"""SLA classification of open orders at the boundaries, with a frozen clock: the Python rule
(orders.sla.classify) and the SQL expression the console filters and sorts with must agree."""

from datetime import UTC, datetime, timedelta

import order_support as support
import pytest
from sqlalchemy import select

from orders import sla
from orders.models import Milestone, Order, ProgressUpdate

NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
D = timedelta(days=1)


def _order(session, p, status, *, due=None, accept_by=None, started=None, paid=None,
           percent=None, milestone_bp=None):
    order = support.order(session, p, status, due_at=due, accept_by=accept_by,
                          accepted_at=started, paid_at=paid or (started - D if started else None))
    if percent is not None:
        session.add(ProgressUpdate(order_id=order.id, author_id=p.provider.id, percent=percent,
                                   note="work"))
    if milestone_bp is not None:
        session.add(Milestone(order_id=order.id, title="Step", share_bp=milestone_bp,
                              status="approved"))  # issue 13: "done" became submit/approve
    session.flush()
    session.refresh(order)
    return order


# (name, status, fields, expected code) — NOW is frozen; the warning window is 3 days.
CASES = [
    ("one second past due", "in_progress", dict(due=NOW - S, started=NOW - 10 * D, percent=90),
     "overdue"),
    ("exactly at due, not done", "in_progress", dict(due=NOW, started=NOW - 10 * D, percent=90),
     "at_risk"),
    ("one second before due, behind", "accepted", dict(due=NOW + S, started=NOW - 10 * D),
     "at_risk"),
    ("window edge, behind plan", "in_progress",
     dict(due=NOW + 3 * D, started=NOW - 7 * D, percent=50), "at_risk"),
    ("one second outside window, behind plan", "in_progress",
     dict(due=NOW + 3 * D + S, started=NOW - 7 * D, percent=10), "on_track"),
    ("exactly on plan", "in_progress", dict(due=NOW + 2 * D, started=NOW - 2 * D, percent=50),
     "on_track"),
    ("one point behind plan", "in_progress",
     dict(due=NOW + 2 * D, started=NOW - 2 * D, percent=49), "at_risk"),
    ("milestones ahead of plan", "in_progress",
     dict(due=NOW + 2 * D, started=NOW - 2 * D, percent=10, milestone_bp=6000), "on_track"),
    ("far from due", "accepted", dict(due=NOW + 20 * D, started=NOW - D), "on_track"),
    ("no due date", "accepted", dict(due=None, started=NOW - D), "on_track"),
    ("paid, acceptance one second late", "paid", dict(accept_by=NOW - S, paid=NOW - 3 * D),
     "overdue"),
    ("paid, acceptance due within the window", "paid",
     dict(accept_by=NOW + 2 * D, paid=NOW - D), "at_risk"),
    ("paid, acceptance exactly at the deadline", "paid",
     dict(accept_by=NOW, paid=NOW - 3 * D), "at_risk"),
    ("delivered late is no longer overdue", "delivered",
     dict(due=NOW - 5 * D, started=NOW - 10 * D), "on_track"),
    ("disputed has no SLA clock", "disputed", dict(due=NOW - 5 * D, started=NOW - 10 * D),
     "on_track"),
]


@pytest.fixture
def cases(session):
    p = support.parties(session)
    built = {name: (_order(session, p, status, **fields), expected)
             for name, status, fields, expected in CASES}
    session.commit()
    return built


def test_python_classification_at_the_boundaries(cases):
    wrong = {name: sla.classify(order, NOW, 3).code for name, (order, expected) in cases.items()
             if sla.classify(order, NOW, 3).code != expected}
    assert wrong == {}


def test_sql_classification_agrees_with_python(session, cases):
    ids = {order.id: name for name, (order, _expected) in cases.items()}
    for code in sla.SLA_CODES:
        found = {ids[i] for i in session.scalars(
            select(Order.id).where(Order.id.in_(ids), sla.sla_condition(code, NOW, 3)))}
        expected = {name for name, (_order, exp) in cases.items() if exp == code}
        assert found == expected, code
    ranks = dict(session.execute(select(Order.id, sla.sla_case(NOW, 3))
                                 .where(Order.id.in_(ids))).all())
    assert {ids[i]: sla.SLA_RANK[r] for i, r in ranks.items()} == {
        name: exp for name, (_order, exp) in cases.items()}


def test_reasons_are_in_words(cases):
    order, _ = cases["window edge, behind plan"]
    assert sla.classify(order, NOW, 3).reason == "due in 3 days, 50% done, 70% expected"
    order, _ = cases["one second past due"]
    assert sla.classify(order, NOW, 3).reason.startswith("due 1 second ago, 90% done")
    order, _ = cases["paid, acceptance one second late"]
    assert sla.classify(order, NOW, 3).reason == "acceptance due 1 second ago, not yet accepted"
    order, _ = cases["disputed has no SLA clock"]
    assert sla.classify(order, NOW, 3).reason == "in dispute, awaiting a staff ruling"


def test_warning_window_is_configurable(cases):
    order, _ = cases["one second outside window, behind plan"]
    assert sla.classify(order, NOW, 4).code == "at_risk"
    assert sla.classify(order, NOW, 0).code == "on_track"
    order, _ = cases["exactly at due, not done"]
    assert sla.classify(order, NOW, 0).code == "at_risk"  # the deadline itself is in any window
