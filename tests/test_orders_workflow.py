"""The order state machine: the whole matrix of transition x role x state.

EXPECTED is written out by hand from DESIGN.md §5 (not derived from orders.workflow), so a
change to the machine has to be made in both places on purpose.
"""

import order_support as osup
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.models import Notification
from orders import workflow
from orders.models import ORDER_STATUSES, Order, OrderEvent

EXPECTED = {
    "pay": {"system": {"pending_payment"}, "staff": {"pending_payment"}},
    "accept": {"provider": {"paid"}},
    "decline": {"provider": {"paid"}, "system": {"paid"}},
    "start": {"provider": {"accepted"}},
    "deliver": {"provider": {"accepted", "in_progress"}},
    "request_revision": {"buyer": {"delivered"}},
    "complete": {"buyer": {"delivered"}, "system": {"delivered"}},
    "dispute": {"buyer": {"accepted", "in_progress", "delivered"}},
    "resolve": {"staff": {"disputed"}},
    "cancel": {"buyer": {"pending_payment", "paid"},
               "staff": {"pending_payment", "paid", "accepted", "in_progress"},
               "system": {"pending_payment"}},
    "settle": {"staff": {"completed", "resolved"}, "system": {"completed", "resolved"}},
    # Issue 13: the card is captured when the institution accepts, so a hold can lapse
    # only before acceptance.
    "lapse": {"system": {"paid"}},
}
TARGET = {"pay": "paid", "accept": "accepted", "decline": "declined", "start": "in_progress",
          "deliver": "delivered", "request_revision": "in_progress", "complete": "completed",
          "dispute": "disputed", "resolve": "resolved", "cancel": "cancelled",
          "settle": "settled", "lapse": "pending_payment"}
ROLES = ("buyer", "provider", "staff", "system", "outsider")


def test_the_table_covers_every_transition():
    assert set(workflow.TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_transition_matrix(session, name, role):
    p = osup.parties(session)
    order = osup.order(session, p)
    session.commit()
    actor = p.actor(role)
    for status in ORDER_STATUSES:
        osup.set_status(session, order, status)
        version = order.version
        events = session.scalar(select(func.count(OrderEvent.id))
                                .where(OrderEvent.order_id == order.id))
        allowed_from = EXPECTED[name].get(role)
        if allowed_from is not None and status in allowed_from:
            event = workflow.transition(session, order, name, actor, note="Because.")
            session.refresh(order)
            assert order.status == TARGET[name], (name, role, status)
            assert order.version == version + 1
            assert event.from_status == status and event.to_status == TARGET[name]
            assert event.actor_role == role
            assert workflow.can(order, name, actor) is (TARGET[name] in allowed_from)
        else:
            expected_error = workflow.NotAllowed if allowed_from is None else workflow.WrongState
            with pytest.raises(expected_error) as raised:
                workflow.transition(session, order, name, actor, note="Because.")
            assert raised.value.status == (403 if allowed_from is None else 409)
            assert raised.value.message
            session.refresh(order)
            assert order.status == status and order.version == version, (name, role, status)
            assert session.scalar(select(func.count(OrderEvent.id))
                                  .where(OrderEvent.order_id == order.id)) == events
        session.commit()


def test_reasons_are_required_where_the_other_side_needs_one(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="paid")
    with pytest.raises(workflow.NoteRequired):
        workflow.transition(session, order, "decline", p.provider, note="  ")
    assert order.status == "paid"
    workflow.transition(session, order, "decline", p.provider, note="Fully booked this month")
    assert order.status == "declined" and order.closed_at is not None


def test_a_stale_copy_cannot_win_a_race(session):
    """Two people act on the same order at once: the second one's copy is out of date."""
    p = osup.parties(session)
    order = osup.order(session, p, status="paid")
    session.commit()
    stale_version = order.version
    workflow.transition(session, order, "accept", p.provider)
    session.commit()
    # The buyer's request read the order before the provider accepted it.
    stale = session.get(Order, order.id)
    set_committed_value(stale, "status", "paid")
    set_committed_value(stale, "version", stale_version)
    with pytest.raises(workflow.WrongState):
        workflow.transition(session, stale, "cancel", p.buyer)
    session.rollback()
    session.expire_all()
    assert session.get(Order, order.id).status == "accepted"


def test_transitions_notify_the_other_side_and_write_the_timeline(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="paid")
    workflow.transition(session, order, "accept", p.provider, note="We start Monday")
    notices = session.scalars(select(Notification).where(Notification.user_id == p.buyer.id)).all()
    assert [n.kind for n in notices] == ["order_accept"]
    assert "We start Monday" in notices[0].body and notices[0].link == f"/orders/{order.id}"
    assert session.scalar(select(func.count(Notification.id))
                          .where(Notification.user_id == p.provider.id)) == 0
    workflow.transition(session, order, "deliver", p.provider)
    workflow.transition(session, order, "dispute", p.buyer, note="Report is missing chapter 3")
    staff_notices = session.scalars(select(Notification)
                                    .where(Notification.user_id == p.staff.id)).all()
    assert [n.kind for n in staff_notices] == ["order_dispute"]
    assert staff_notices[0].link == f"/staff/orders/{order.id}"
    timeline = [(e.name, e.actor_role) for e in session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))]
    assert timeline == [("accept", "provider"), ("deliver", "provider"), ("dispute", "buyer")]


def test_allowed_transitions_are_what_buttons_show(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="paid")
    assert {t.name for t in workflow.allowed_transitions(order, p.provider)} == {"accept",
                                                                                 "decline"}
    assert {t.name for t in workflow.allowed_transitions(order, p.buyer)} == {"cancel"}
    assert workflow.allowed_transitions(order, p.outsider) == []
