"""Milestones in the SLA status (issue 13): a milestone past its local due day without a
submission makes the order overdue, one due within the warning window with progress behind
the milestone plan makes it at risk. The Python rule (orders.sla.classify) and the SQL the
console filters, counts and sorts with must agree, also in the paginated progress list."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import order_support as support
import pytest
from sqlalchemy import select

from marketplace.console_service import ProgressFilters, at_risk_count, overdue_count, progress
from marketplace.i18n import format_date
from orders import sla, states
from orders.models import Milestone, Order, ProgressUpdate

# 20:00 in Beijing: the local day is 15 June.
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)
TODAY = date(2026, 6, 15)
D = timedelta(days=1)


def _order(session, p, status="in_progress", *, due=NOW + 20 * D, percent=None,
           milestones=(), accept_by=None):
    order = support.order(session, p, status, due_at=due, accept_by=accept_by,
                          accepted_at=NOW - 10 * D, paid_at=NOW - 11 * D)
    if percent is not None:
        session.add(ProgressUpdate(order_id=order.id, author_id=p.provider.id, percent=percent,
                                   note="work"))
    for n, (share, day, status_) in enumerate(milestones):
        session.add(Milestone(order_id=order.id, position=n, title=f"Step {n + 1}",
                              share_bp=share, due_date=day, status=status_))
    session.flush()
    session.refresh(order)
    return order


# (name, fields, expected) at NOW, warning window 3 days.
CASES = [
    ("milestone due yesterday, not submitted", dict(percent=90, milestones=[
        (3000, TODAY - D, "pending")]), "overdue"),
    ("milestone due today, behind its plan", dict(percent=10, milestones=[
        (3000, TODAY, "pending")]), "at_risk"),
    ("milestone due today, on its plan", dict(percent=30, milestones=[
        (3000, TODAY, "pending")]), "on_track"),
    ("milestone due yesterday, reached", dict(milestones=[
        (3000, TODAY - D, "approved"), (7000, TODAY + 15 * D, "pending")]), "on_track"),
    ("milestone at the window's last day, behind", dict(percent=0, milestones=[
        (5000, TODAY + 3 * D, "pending")]), "at_risk"),
    ("milestone one day past the window", dict(percent=0, milestones=[
        (5000, TODAY + 4 * D, "pending")]), "on_track"),
    ("cumulative plan: second milestone due soon, behind", dict(percent=50, milestones=[
        (4000, TODAY - 5 * D, "approved"), (4000, TODAY + 2 * D, "pending"),
        (2000, TODAY + 10 * D, "pending")]), "at_risk"),
    ("cumulative plan: second milestone due soon, on plan", dict(percent=80, milestones=[
        (4000, TODAY - 5 * D, "approved"), (4000, TODAY + 2 * D, "pending"),
        (2000, TODAY + 10 * D, "pending")]), "on_track"),
    ("no order due date, milestone overdue", dict(due=None, milestones=[
        (5000, TODAY - 3 * D, "pending")]), "overdue"),
    ("no order due date, milestone at risk", dict(due=None, milestones=[
        (5000, TODAY + D, "pending")]), "at_risk"),
    ("no order due date, milestones far away", dict(due=None, milestones=[
        (5000, TODAY + 9 * D, "pending")]), "on_track"),
    ("milestone without a due date", dict(percent=0, milestones=[(5000, None, "pending")]),
     "on_track"),
    ("order overdue and a milestone overdue", dict(due=NOW - D, milestones=[
        (5000, TODAY - 3 * D, "pending")]), "overdue"),
    ("order due in the window, milestone overdue", dict(due=NOW + D, percent=95, milestones=[
        (5000, TODAY - D, "pending")]), "overdue"),
    ("accepted order, milestone overdue", dict(milestones=[(5000, TODAY - D, "pending")],
                                               status="accepted"), "overdue"),
    ("paid, not accepted: milestones do not count yet", dict(
        status="paid", due=None, accept_by=NOW + 20 * D,
        milestones=[(5000, TODAY - D, "pending")]), "on_track"),
    ("delivered: no SLA clock", dict(status="delivered", milestones=[
        (5000, TODAY - D, "pending")]), "on_track"),
    ("in dispute: no SLA clock", dict(status="disputed", milestones=[
        (5000, TODAY - D, "pending")]), "on_track"),
]


@pytest.fixture
def cases(session):
    p = support.parties(session)
    built = {}
    for name, fields, expected in CASES:
        fields = dict(fields)
        status = fields.pop("status", "in_progress")
        built[name] = (_order(session, p, status, **fields), expected)
    session.commit()
    return built


def test_python_classification_with_milestones(cases):
    wrong = {name: sla.classify(order, NOW, 3).code for name, (order, expected) in cases.items()
             if sla.classify(order, NOW, 3).code != expected}
    assert wrong == {}


def test_sql_agrees_with_python_with_milestones(session, cases):
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
    # The console's counts (one index range per state, plus the milestone-only overdue).
    mine = Order.id.in_(ids)
    assert overdue_count(session, NOW, mine) == sum(
        1 for _o, exp in cases.values() if exp == "overdue")
    assert at_risk_count(session, NOW, 3, mine) == sum(
        1 for _o, exp in cases.values() if exp == "at_risk")


def test_reasons_name_the_milestone(cases):
    order, _ = cases["milestone due yesterday, not submitted"]
    status = sla.classify(order, NOW, 3)
    assert status.milestone_overdue and status.milestone.title == "Step 1"
    assert status.reason == (f"milestone “Step 1” was due {format_date(TODAY - D)} (1 day ago) "
                             "and is not submitted, 90% done")
    order, _ = cases["cumulative plan: second milestone due soon, behind"]
    status = sla.classify(order, NOW, 3)
    assert status.code == "at_risk" and status.milestone.title == "Step 2"
    assert status.reason == "milestone “Step 2” due in 2 days, 50% done, 80% planned by then"
    order, _ = cases["no order due date, milestone overdue"]
    status = sla.classify(order, NOW, 3)
    assert status.clocked and status.deadline is None
    assert str(status.label) == "Overdue"
    order, _ = cases["order overdue and a milestone overdue"]
    status = sla.classify(order, NOW, 3)
    assert status.reason.startswith("due 1 day ago")  # the order's own deadline first
    assert status.milestone_overdue and status.milestone.title == "Step 1"


def test_the_local_day_decides_not_utc(session):
    """16:30 UTC on 15 June is 00:30 on 16 June in Beijing: a milestone due on the 15th is
    then past due, although the UTC date is still the 15th."""
    p = support.parties(session)
    order = _order(session, p, milestones=[(5000, TODAY, "pending")], percent=100)
    session.commit()
    before = datetime(2026, 6, 15, 15, 59, 59, tzinfo=UTC)
    after = datetime(2026, 6, 15, 16, 0, 0, tzinfo=UTC)
    assert sla.classify(order, before, 3).code == "on_track"
    assert sla.classify(order, after, 3).code == "overdue"
    for moment, code in ((before, "on_track"), (after, "overdue")):
        assert session.scalar(select(Order.id).where(
            Order.id == order.id, sla.sla_condition(code, moment, 3))) == order.id
    assert [m.id for m in sla.overdue_milestones(order, after)] == \
        [order.milestones[0].id]
    assert sla.overdue_milestones(order, before) == []


def test_milestone_plan_by_now_counts_once_submissions_exist():
    """A milestone whose day has ended but which was submitted (a status after
    MILESTONE_AWAITING_SUBMISSION, added by the escrow work) is not overdue, yet its share is
    in the plan by now: progress below it is "behind plan"."""
    assert "submitted" not in states.MILESTONE_AWAITING_SUBMISSION
    milestones = [SimpleNamespace(id=1, position=0, title="Design", share_bp=4000,
                                  due_date=TODAY - 2 * D, status="submitted"),
                  SimpleNamespace(id=2, position=1, title="Build", share_bp=6000,
                                  due_date=TODAY + 20 * D, status="pending")]
    plan = sla.milestone_plan(milestones, 30, NOW, 3)
    assert plan.overdue is None and plan.at_risk is None
    assert plan.planned_bp == 4000  # 30% done < 40% planned by now: behind plan
    assert sla.milestone_plan(milestones, 40, NOW, 3).planned_bp == 4000


# --------------------------------------------------------------------------- the console list

def _reference(orders, now, code=None, milestone_only=False):
    """The SLA-sorted list from sla.classify in Python: worst first, then by deadline
    (orders without one last in their group), then id."""
    rows = []
    for order in orders:
        status = sla.classify(order, now, 3)
        if code and status.code != code:
            continue
        if milestone_only and not sla.overdue_milestones(order, now):
            continue
        if order.status not in states.OPEN:
            continue
        value = order.accept_by if order.status == "paid" else order.due_at
        rank = {"overdue": 0, "at_risk": 1, "on_track": 2}[status.code]
        rows.append(((rank, value is None, value.timestamp() if value else 0, order.id),
                     order.id))
    return [order_id for _key, order_id in sorted(rows)]


def _walk(session, filters, now, size=3):
    pages, after = [], None
    while True:
        result = progress(session, filters, now, page=len(pages) + 1, page_size=size,
                          after=after, warning_days=3)
        pages.append([row.order.id for row in result.rows])
        if not result.next_cursor:
            return [i for page in pages for i in page], result
        after = result.next_cursor
        assert len(pages) < 50


@pytest.mark.parametrize("code", [None, "overdue", "at_risk", "on_track"])
def test_progress_list_orders_milestone_cases_like_python(app, session, cases, code):
    orders = [order for order, _expected in cases.values()]
    flat, last = _walk(session, ProgressFilters(sla=code), NOW)
    assert flat == _reference(orders, NOW, code)
    assert len(flat) == len(set(flat))
    assert last.page.total == len(flat)


def test_progress_list_filters_milestone_overdue(app, session, cases):
    orders = [order for order, _expected in cases.values()]
    flat, last = _walk(session, ProgressFilters(milestone_overdue=True), NOW)
    expected = _reference(orders, NOW, milestone_only=True)
    assert flat == expected
    names = {order.id: name for name, (order, _e) in cases.items()}
    assert {names[i] for i in flat} == {
        "milestone due yesterday, not submitted", "no order due date, milestone overdue",
        "order overdue and a milestone overdue", "order due in the window, milestone overdue",
        "accepted order, milestone overdue"}
    assert last.sla_counts["overdue"] == len(flat) == last.sla_counts["all"]
    # by due date too (the dashboard's overdue list reads it that way)
    flat_due, _ = _walk(session, ProgressFilters(sla="overdue", sort="due"), NOW)
    assert sorted(flat_due) == sorted(_reference(orders, NOW, "overdue"))


def test_a_sent_back_submission_no_longer_counts_as_done(session):
    """The institution submits the last milestone (its progress update counts its share as
    done: 30 + 40 %); the buyer sends it back. The order is then as far as the milestones approved and the progress
    reported otherwise, in the order page's figure and in the console's SQL alike."""
    from orders import milestones

    p = support.parties(session)
    order = support.funded_order(session, p, shares=(3000, 3000, 4000))
    first, _second, last = (m.id for m in order.milestones)
    milestones.submit(session, order, p.provider, first, "Search report.")
    milestones.approve(session, order, p.buyer, first)
    milestones.submit(session, order, p.provider, last, "Everything filed.")
    session.commit()
    session.refresh(order)
    assert order.progress_percent == 70

    milestones.request_changes(session, order, p.buyer, last, "Two claims are missing.")
    session.commit()
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.progress_percent == 30  # milestone 1 approved; the rest sent back
    sql_done = session.scalar(select(sla.done_expr()).where(Order.id == order.id))
    assert sql_done == order.progress_percent
