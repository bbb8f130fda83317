"""Deviation alerts (issue 13): the order timers tell buyer, institution and staff once per
milestone deviation over simulated days; staff extend a milestone (reason, audit, timeline,
forbidden to others), which recomputes the SLA and lets a new deviation alert again; the
console's progress list filters "milestone overdue"; the order page marks the milestone."""

from datetime import UTC, date, datetime, timedelta
from html import unescape

import order_support as support
import pytest
import time_machine
from conftest import post_form
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from marketplace.models import AuditLog, EmailMessage, Notification
from orders import alerts, sla, timers
from orders.models import Milestone, MilestoneAlert, Order, OrderEvent, ProgressUpdate

D = timedelta(days=1)
START = date(2026, 6, 1)


def at(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock in Beijing on ``day``, as UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def kinds(session, user) -> list[str]:
    return session.scalars(select(Notification.kind).where(Notification.user_id == user.id)
                           .order_by(Notification.id)).all()


@pytest.fixture
def plan(app, session):
    """An order in progress due in 40 days with two milestones: "Design" (30%, due on day 5)
    and "Build" (70%, due on day 30); nothing done yet."""
    p = support.parties(session)
    order = support.order(session, p, "in_progress", due_at=at(START + 40 * D, 18),
                          accepted_at=at(START), paid_at=at(START) - D)
    session.add_all([
        Milestone(order_id=order.id, position=0, title="Design", share_bp=3000,
                  due_date=START + 5 * D),
        Milestone(order_id=order.id, position=1, title="Build", share_bp=7000,
                  due_date=START + 30 * D)])
    session.commit()
    return p, order


def _run(session, day: date, hour: int = 9):
    now = at(day, hour)
    with time_machine.travel(now, tick=False):
        report = timers.run(session, now, warning_days=3)
    assert report.errors == []
    return report.milestone_alerts


def test_each_deviation_is_announced_once_over_the_days(session, plan):
    p, order = plan
    sent = {day: _run(session, START + day * D) for day in range(0, 2)}
    assert sent == {0: 0, 1: 0}  # "Design" is 5 days away: outside the 3-day window
    # Day 2 to day 4: "Design" is due within the window and nothing is done: at risk, once.
    sent = {day: _run(session, START + day * D) for day in range(2, 5)}
    assert sent == {2: 1, 3: 0, 4: 0}
    # Day 5 is its due day (not yet overdue, even late in the evening); day 6 it is overdue.
    assert _run(session, START + 5 * D, hour=23) == 0
    sent = {day: _run(session, START + day * D) for day in range(6, 10)}
    assert sent == {6: 1, 7: 0, 8: 0, 9: 0}
    # Running again the same day, or many times, changes nothing.
    assert _run(session, START + 9 * D, hour=20) == 0
    expected = ["milestone_at_risk", "milestone_overdue"]
    assert kinds(session, p.buyer) == expected
    assert kinds(session, p.provider) == expected
    assert kinds(session, p.staff) == expected
    assert kinds(session, p.outsider) == []
    titles = session.scalars(select(Notification.title).where(
        Notification.user_id == p.buyer.id).order_by(Notification.id)).all()
    assert titles == [f"Order {order.number}: milestone “Design” is at risk",
                      f"Order {order.number}: milestone “Design” is overdue"]
    body = session.scalar(select(Notification.body).where(
        Notification.user_id == p.provider.id, Notification.kind == "milestone_overdue"))
    assert "was due on" in body and "platform staff can extend it" in body
    # Emails too (the outbox), one per notice.
    assert session.scalar(select(func.count(EmailMessage.id)).where(
        EmailMessage.to_address == p.buyer.email)) == 2
    rows = session.execute(select(MilestoneAlert.kind, MilestoneAlert.due_date)
                           .order_by(MilestoneAlert.id)).all()
    assert rows == [("at_risk", START + 5 * D), ("overdue", START + 5 * D)]


def test_progress_on_plan_means_no_at_risk_alert(session, plan):
    p, order = plan
    session.add(ProgressUpdate(order_id=order.id, author_id=p.provider.id, percent=30,
                               note="design drafted"))
    session.commit()
    assert [_run(session, START + day * D) for day in range(0, 6)] == [0] * 6
    assert kinds(session, p.buyer) == []
    # Still not submitted after its day: overdue all the same.
    assert _run(session, START + 6 * D) == 1
    assert kinds(session, p.buyer) == ["milestone_overdue"]


def test_a_reached_milestone_never_alerts(session, plan):
    p, order = plan
    session.execute(Milestone.__table__.update().where(Milestone.title == "Design")
                    .values(status="approved"))
    session.commit()
    assert [_run(session, START + day * D) for day in range(2, 12)] == [0] * 10
    assert kinds(session, p.staff) == []


def test_orders_not_under_way_are_not_alerted(session, plan):
    p, order = plan
    support.set_status(session, order, "delivered")
    session.commit()
    assert _run(session, START + 8 * D) == 0


def test_the_once_key_is_enforced_by_the_database(session, plan):
    _p, order = plan
    milestone = order.milestones[0]
    now = at(START + 8 * D)
    assert len(alerts.alert_order(session, order, now, 3)) == 1
    session.commit()
    session.add(MilestoneAlert(order_id=order.id, milestone_id=milestone.id, kind="overdue",
                               due_date=milestone.due_date))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_command_reports_the_alerts(app, session, plan):
    now = at(START + 8 * D)
    result = app.test_cli_runner().invoke(args=["run-order-timers", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 milestone deviation alerts" in result.output
    assert session.scalar(select(func.count(MilestoneAlert.id))) == 1


# --------------------------------------------------------------------------- extension

def state(session, order):
    session.expire_all()
    fresh = session.get(Order, order.id)
    return ([(m.title, m.due_date) for m in fresh.milestones],
            session.scalar(select(func.count(OrderEvent.id))
                           .where(OrderEvent.order_id == order.id)),
            session.scalar(select(func.count(AuditLog.id))),
            session.scalar(select(func.count(Notification.id))))


@pytest.fixture
def overdue(app, session, client, plan):
    """Day 8: "Design" (due day 5) is overdue and was announced; staff are signed in."""
    p, order = plan
    clock = time_machine.travel(at(START + 8 * D), tick=False)
    clock.start()
    timers.run(session, at(START + 8 * D), warning_days=3)
    session.commit()
    yield p, order
    clock.stop()


def _extend(client, order, milestone_id, new_due, reason):
    return post_form(client, f"/staff/orders/{order.id}/milestone-extend",
                     {"milestone-milestone": str(milestone_id),
                      "milestone-new_due_date": new_due.isoformat() if new_due else "",
                      "milestone-reason": reason})


def test_staff_extend_a_milestone_and_the_sla_follows(client, session, overdue):
    p, order = overdue
    design = order.milestones[0]
    support.login(client, p.staff)
    page = text(client.get(f"/staff/orders/{order.id}"))
    assert 'data-sla="overdue"' in page and "milestone “Design” was due" in page
    assert 'data-testid="milestone-extend-form"' in page and 'data-testid="milestone-overdue"' in page
    new_due = START + 20 * D
    response = _extend(client, order, design.id, new_due, "Client changed the specification")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Milestone, design.id).due_date == new_due
    event = session.scalar(select(OrderEvent).where(OrderEvent.name == "milestone_extended"))
    assert event.actor_id == p.staff.id and event.actor_role == "staff"
    assert "Design" in event.note and "Client changed the specification" in event.note
    (row,) = session.scalars(select(AuditLog).where(
        AuditLog.action == "order.extend_milestone")).all()
    assert (row.actor_id, row.target_type, row.target_id) == (p.staff.id, "purchase_order",
                                                              order.id)
    assert row.details == {"number": order.number, "milestone": "Design",
                           "before": (START + 5 * D).isoformat(), "after": new_due.isoformat()}
    assert row.reason == "Client changed the specification"
    assert kinds(session, p.buyer)[-1] == "order_milestone_extended"
    assert kinds(session, p.provider)[-1] == "order_milestone_extended"
    page = text(client.get(f"/staff/orders/{order.id}"))
    assert 'data-sla="on_track"' in page and "Milestone extended" in page
    assert 'data-testid="milestone-overdue"' not in page
    # The audit log page names the action.
    assert "Milestone extended" in text(client.get("/staff/audit"))


def test_after_an_extension_a_new_deviation_alerts_again(client, session, overdue):
    p, order = overdue
    support.login(client, p.staff)
    assert _extend(client, order, order.milestones[0].id, START + 12 * D,
                   "Lab booked late").status_code == 302
    assert [_run(session, START + day * D) for day in range(9, 14)] == [1, 0, 0, 0, 1]
    assert kinds(session, p.buyer) == ["milestone_overdue", "order_milestone_extended",
                                       "milestone_at_risk", "milestone_overdue"]


@pytest.mark.parametrize("pick, new_due, reason, field, message", [
    ("design", START + 8 * D, "x", "new_due_date", "The new due date must be in the future."),
    ("design", START + 7 * D, "x", "new_due_date", "The new due date must be in the future."),
    ("build", START + 29 * D, "x", "new_due_date",
     "The new due date must be later than the current one"),
    ("design", None, "x", "new_due_date", "Enter the new due date."),
    ("design", START + 20 * D, "  ", "reason", "Give the reason for this intervention"),
    ("other", START + 20 * D, "x", "milestone", "Choose a milestone of this order."),
    ("reached", START + 20 * D, "x", "milestone", "This milestone was already submitted"),
])
def test_extension_validation_changes_nothing(client, session, overdue, pick, new_due, reason,
                                              field, message):
    p, order = overdue
    other = support.order(session, p, "in_progress", due_at=at(START + 40 * D))
    session.add(Milestone(order_id=other.id, title="Elsewhere", share_bp=5000,
                          due_date=START + 3 * D))
    session.add(Milestone(order_id=order.id, position=2, title="Kick-off", share_bp=0,
                          due_date=START + 2 * D, status="approved"))
    session.commit()
    ids = {"design": order.milestones[0].id, "build": order.milestones[1].id,
           "other": other.milestones[0].id,
           "reached": session.scalar(select(Milestone.id).where(Milestone.title == "Kick-off"))}
    support.login(client, p.staff)
    before = state(session, order)
    response = _extend(client, order, ids[pick], new_due, reason)
    assert response.status_code == 400
    body = text(response)
    assert message in body
    assert "show active" in body.split('id="pane-milestone"')[1][:80] or \
        "show active" in body.split('id="pane-milestone"')[0][-80:]
    assert state(session, order) == before


def test_extension_garbage_is_refused(client, session, overdue):
    p, order = overdue
    support.login(client, p.staff)
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/milestone-extend",
                         {"milestone-milestone": "abc", "milestone-new_due_date": "soon",
                          "milestone-reason": "x"})
    assert response.status_code == 400
    assert state(session, order) == before


def test_extension_is_forbidden_to_everyone_but_staff(client, session, overdue):
    p, order = overdue
    before = state(session, order)
    # Without the staff role: 403; signed out: sent to log in. Nothing changes.
    for user in (p.buyer, p.provider, p.outsider):
        support.login(client, user)
        response = _extend(client, order, order.milestones[0].id, START + 20 * D, "mine")
        assert response.status_code == 403
        assert 'data-testid="milestone-extend-form"' not in text(
            client.get(f"/orders/{order.id}" if user is not p.provider
                       else f"/provider/orders/{order.id}"))
        support.logout(client)
    response = _extend(client, order, order.milestones[0].id, START + 20 * D, "anon")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert state(session, order) == before


def test_extension_refused_once_the_order_is_closed(client, session, overdue):
    p, order = overdue
    support.set_status(session, order, "completed")
    session.commit()
    support.login(client, p.staff)
    assert 'data-testid="milestone-extend-form"' not in text(
        client.get(f"/staff/orders/{order.id}"))
    before = state(session, order)
    response = _extend(client, order, order.milestones[0].id, START + 20 * D, "late")
    assert response.status_code == 400
    assert "its milestones can no longer be extended" in text(response)
    assert state(session, order) == before


def test_extension_refused_before_the_work_begins(client, session, overdue):
    p, order = overdue
    support.set_status(session, order, "paid")
    session.commit()
    support.login(client, p.staff)
    assert 'data-testid="milestone-extend-form"' not in text(
        client.get(f"/staff/orders/{order.id}"))
    before = state(session, order)
    response = _extend(client, order, order.milestones[0].id, START + 20 * D, "early")
    assert response.status_code == 400
    assert "can be extended once the work has begun" in text(response)
    assert state(session, order) == before


# --------------------------------------------------------------------------- pages

def test_parties_see_the_overdue_milestone_on_the_order_page(client, session, overdue):
    p, order = overdue
    support.login(client, p.buyer)
    page = text(client.get(f"/orders/{order.id}"))
    assert page.count('data-testid="milestone-overdue"') == 1
    support.logout(client)
    support.login(client, p.provider)
    assert 'data-testid="milestone-overdue"' in text(client.get(f"/provider/orders/{order.id}"))


def test_console_filters_milestone_overdue(client, session, overdue):
    p, order = overdue
    late_order = support.order(session, p, "in_progress", due_at=at(START + 2 * D))
    calm = support.order(session, p, "in_progress", due_at=at(START + 60 * D))
    session.add(Milestone(order_id=calm.id, title="Later", share_bp=5000,
                          due_date=START + 50 * D))
    session.commit()
    support.login(client, p.staff)
    everything = text(client.get("/staff/progress"))
    for number in (order.number, late_order.number, calm.number):
        assert f'data-order="{number}"' in everything
    only = text(client.get("/staff/progress?milestone=overdue"))
    assert f'data-order="{order.number}"' in only
    assert f'data-order="{late_order.number}"' not in only  # overdue, but not by a milestone
    assert f'data-order="{calm.number}"' not in only
    assert 'data-testid="row-milestone"' in only and "Milestone “Design” due" in only
    assert 'id="f-milestone" name="milestone" value="overdue" checked' in only
    overdue_tab = text(client.get("/staff/progress?sla=overdue"))
    assert f'data-order="{order.number}"' in overdue_tab
    assert f'data-order="{late_order.number}"' in overdue_tab
    support.logout(client)
    support.login(client, p.provider)
    assert client.get("/staff/progress?milestone=overdue").status_code == 403
    assert sla.classify(session.get(Order, order.id), at(START + 8 * D), 3).milestone_overdue
