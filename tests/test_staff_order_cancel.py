"""The staff order page offers staff only the "Cancel with refund" intervention (reason,
refund, audit row), not the plain workflow "Cancel order" button (buyers keep theirs), and no
"Mark settled" button: orders settle when their settlement statement is paid."""

import order_support as support
import pytest
from conftest import post_form
from sqlalchemy import func, select

from marketplace.models import AuditLog
from orders.models import Order, OrderEvent


@pytest.fixture
def p(session):
    parties = support.parties(session)
    session.commit()
    return parties


def test_staff_see_only_the_cancel_with_refund_intervention(session, client, p):
    order = support.order(session, p, "in_progress")
    session.commit()
    support.login(client, p.staff)
    html = client.get(f"/staff/orders/{order.id}").get_data(as_text=True)
    assert 'data-testid="cancel-form"' in html  # the intervention, with its reason
    assert 'data-testid="action-cancel-open"' not in html
    assert f'/orders/{order.id}/actions/cancel' not in html

    # A hand-made POST to the plain workflow cancel changes nothing and points to it.
    response = post_form(client, f"/orders/{order.id}/actions/cancel", {"note": "x"},
                         follow_redirects=True)
    assert "Cancel with refund" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Order, order.id).status == "in_progress"
    assert session.scalar(select(func.count()).select_from(OrderEvent).where(
        OrderEvent.order_id == order.id, OrderEvent.name == "cancel")) == 0

    # The intervention still cancels, with its audit row.
    assert post_form(client, f"/staff/orders/{order.id}/cancel",
                     {"cancel-reason": "Institution closed down"}).status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.target_id == order.id)) >= 1


def test_the_buyer_keeps_the_workflow_cancel(session, client, p):
    order = support.order(session, p, "paid")
    session.commit()
    support.login(client, p.buyer)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f'/orders/{order.id}/actions/cancel' in html
    assert post_form(client, f"/orders/{order.id}/actions/cancel", {}).status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).status == "cancelled"


def test_staff_cannot_hand_settle_an_order_outside_settlement(session, client, p):
    """A completed order settles when its statement is paid; a hand-settled order would drop
    out of every settlement batch and the institution would never be paid."""
    order = support.order(session, p, "completed")
    session.commit()
    support.login(client, p.staff)
    html = client.get(f"/staff/orders/{order.id}").get_data(as_text=True)
    assert 'data-testid="action-settle"' not in html
    assert f'/orders/{order.id}/actions/settle' not in html
    response = post_form(client, f"/orders/{order.id}/actions/settle", {},
                         follow_redirects=True)
    assert "Orders settle when their settlement statement is marked paid" in response.get_data(
        as_text=True)
    session.expire_all()
    assert session.get(Order, order.id).status == "completed"
