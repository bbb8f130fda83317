"""Staff interventions from the console: note, extend a deadline, nudge a party, cancel with
refund, rule on a dispute. A refused intervention re-renders the staff order page with its
message and changes nothing; a successful one writes an order event, an audit row and
notifications. Money moves against localstripe and the ledger balances."""

from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import factories
import order_support as support
import pytest
from conftest import post_form
from sqlalchemy import func, select
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import utcnow
from marketplace.models import AuditLog, EmailMessage, Notification
from orders import cart, checkout, ledger, payments, services
from orders.models import Order, OrderEvent, Payment

OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def state(session, order):
    """Everything an intervention may change."""
    session.expire_all()
    fresh = session.get(Order, order.id)
    return (fresh.status, fresh.due_at, fresh.accept_by, fresh.version,
            session.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == order.id)),
            session.scalar(select(func.count(AuditLog.id))),
            session.scalar(select(func.count(Notification.id))),
            session.scalar(select(func.count(EmailMessage.id))))


def audit_rows(session, action):
    return session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def notified(session, user) -> list[str]:
    return session.scalars(select(Notification.title).where(Notification.user_id == user.id)
                           .order_by(Notification.id)).all()


@pytest.fixture
def setup(session, client):
    p = support.parties(session)
    now = utcnow()
    order = support.order(session, p, "in_progress", due_at=now + timedelta(days=2),
                          accepted_at=now - timedelta(days=8), paid_at=now - timedelta(days=9))
    session.commit()
    support.login(client, p.staff)
    return {"p": p, "order": order}


def test_staff_page_shows_sla_and_interventions(client, setup):
    order = setup["order"]
    body = text(client.get(f"/staff/orders/{order.id}"))
    assert 'data-testid="order-sla" data-sla="at_risk"' in body
    assert "due in 1 day 23 hours, 0% done, 80% expected" in body
    for form in ("note-form", "extend-form", "nudge-form", "cancel-form"):
        assert f'data-testid="{form}"' in body
    support.logout(client)
    support.login(client, setup["p"].buyer)
    assert 'data-testid="interventions"' not in text(client.get(f"/orders/{order.id}"))


# --------------------------------------------------------------------------- note

def test_note_needs_a_reason_and_changes_nothing(client, session, setup):
    order = setup["order"]
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/note", {"note-reason": "   "})
    assert response.status_code == 400
    assert "Give the reason for this intervention" in text(response)
    assert state(session, order) == before


def test_note_is_recorded_and_both_parties_told(client, session, setup):
    order, p = setup["order"], setup["p"]
    response = post_form(client, f"/staff/orders/{order.id}/note",
                         {"note-reason": "We called the institution; the lab is booked."})
    assert response.status_code == 302
    event = session.scalar(select(OrderEvent).where(OrderEvent.name == "staff_note"))
    assert event.note == "We called the institution; the lab is booked."
    assert event.actor_id == p.staff.id and event.actor_role == "staff"
    (row,) = audit_rows(session, "order.note")
    assert (row.actor_id, row.target_type, row.target_id) == (p.staff.id, "purchase_order",
                                                              order.id)
    assert row.reason == "We called the institution; the lab is booked."
    assert notified(session, p.buyer) == [f"Order {order.number}: a note from platform staff"]
    assert notified(session, p.provider) == [f"Order {order.number}: a note from platform staff"]
    page = text(client.get(f"/staff/orders/{order.id}"))
    assert "Note from platform staff" in page and "the lab is booked" in page


# --------------------------------------------------------------------------- extend

def _local(dt) -> str:
    """What staff type: the time in the platform's zone (Beijing)."""
    return dt.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("when, reason, message", [
    (timedelta(days=-1), "Lab delay", "The new deadline must be in the future."),
    (timedelta(days=1), "Lab delay", "The new deadline must be later than the current one"),
    (None, "Lab delay", "Enter the new date and time."),
    (timedelta(days=10), "", "Give the reason for this intervention"),
])
def test_extend_validation(client, session, setup, when, reason, message):
    order = setup["order"]
    before = state(session, order)
    value = _local(utcnow() + when) if when is not None else ""
    response = post_form(client, f"/staff/orders/{order.id}/extend",
                         {"extend-new_deadline": value, "extend-reason": reason})
    assert response.status_code == 400
    body = text(response)
    assert message in body
    assert 'id="pane-extend" role="tabpanel"' in body and "show active" in body.split(
        'id="pane-extend"')[0][-80:]
    assert state(session, order) == before


def test_extend_garbage_date_is_refused(client, session, setup):
    order = setup["order"]
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/extend",
                         {"extend-new_deadline": "next tuesday", "extend-reason": "x"})
    assert response.status_code == 400
    assert "Not a valid datetime value" in text(response)
    assert state(session, order) == before


def test_extend_due_date(client, session, setup):
    order, p = setup["order"], setup["p"]
    new = (utcnow() + timedelta(days=12)).replace(second=0, microsecond=0)
    response = post_form(client, f"/staff/orders/{order.id}/extend",
                         {"extend-new_deadline": _local(new),
                          "extend-reason": "Sample shipment held at customs"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).due_at == new
    event = session.scalar(select(OrderEvent).where(OrderEvent.name == "deadline_extended"))
    assert "Sample shipment held at customs" in event.note
    (row,) = audit_rows(session, "order.extend_deadline")
    assert row.details["field"] == "due_at" and row.details["after"] == new.isoformat(timespec="seconds")
    assert len(notified(session, p.buyer)) == 1 and len(notified(session, p.provider)) == 1
    body = text(client.get(f"/staff/orders/{order.id}"))
    assert 'data-sla="on_track"' in body


def test_extend_acceptance_deadline_of_a_paid_order(client, session, setup):
    p = setup["p"]
    now = utcnow()
    order = support.order(session, p, "paid", paid_at=now - timedelta(days=3),
                          accept_by=now - timedelta(hours=1))
    session.commit()
    assert 'data-sla="overdue"' in text(client.get(f"/staff/orders/{order.id}"))
    new = (now + timedelta(days=2)).replace(second=0, microsecond=0)
    response = post_form(client, f"/staff/orders/{order.id}/extend",
                         {"extend-new_deadline": _local(new), "extend-reason": "Institution on holiday"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).accept_by == new


def test_extend_refused_for_a_delivered_order(client, session, setup):
    order = setup["order"]
    support.set_status(session, order, "delivered")
    session.commit()
    assert 'data-testid="extend-form"' not in text(client.get(f"/staff/orders/{order.id}"))
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/extend",
                         {"extend-new_deadline": _local(utcnow() + timedelta(days=9)),
                          "extend-reason": "x"})
    assert response.status_code == 400
    assert "only orders awaiting acceptance or being worked on" in text(response)
    assert state(session, order) == before


# --------------------------------------------------------------------------- nudge

def test_nudge_validation(client, session, setup):
    order = setup["order"]
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/nudge",
                         {"nudge-party": "someone", "nudge-reason": "Please"})
    assert response.status_code == 400
    assert state(session, order) == before
    response = post_form(client, f"/staff/orders/{order.id}/nudge",
                         {"nudge-party": "provider", "nudge-reason": ""})
    assert response.status_code == 400
    assert "Give the reason" in text(response)
    assert state(session, order) == before


def test_nudge_reaches_only_the_chosen_party_by_notification_and_email(client, session, setup):
    order, p = setup["order"], setup["p"]
    response = post_form(client, f"/staff/orders/{order.id}/nudge",
                         {"nudge-party": "provider",
                          "nudge-reason": "Post a progress update today, please."})
    assert response.status_code == 302
    assert notified(session, p.provider) == [
        f"Order {order.number}: platform staff ask you to act"]
    assert notified(session, p.buyer) == []
    mail = session.scalars(select(EmailMessage).where(EmailMessage.to_address == p.provider.email)).all()
    assert len(mail) == 1 and "Post a progress update today" in mail[0].body
    assert f"https://supermarket.example.cn/provider/orders/{order.id}" in mail[0].body
    (row,) = audit_rows(session, "order.nudge")
    assert row.details["party"] == "provider"


# --------------------------------------------------------------------------- cancel with refund

@pytest.fixture
def paid_by_card(session, client, localstripe):  # noqa: F811 - pytest fixture
    """A 5,000.00 order paid by card (funds held), bought through the real checkout."""
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org)
    provider_org = factories.provider(session)
    provider = factories.user(session, provider_org)
    product = factories.product(session, provider_org, prices=(500000,))
    staff = factories.user(session, role="staff")
    cart.add(session, buyer, product.packages[0].id)
    result = checkout.place_orders(session, buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card"))
    session.commit()
    order = result.checkout.orders[0]
    payment = payments.begin_card_payment(session, order)
    session.commit()
    payments.pay_with_test_card(session, payment, OK_CARD)
    session.commit()
    support.login(client, staff)
    return {"order": order, "payment": payment, "buyer": buyer, "provider": provider,
            "staff": staff, "stripe": localstripe}


def test_cancel_needs_a_reason(client, session, paid_by_card):
    order = paid_by_card["order"]
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/cancel", {"cancel-reason": ""})
    assert response.status_code == 400
    assert "Give the reason for this intervention" in text(response)
    assert state(session, order) == before


def test_cancel_with_refund_refunds_the_captured_card_and_balances_the_ledger(
        client, session, paid_by_card):
    """Issue 13: the card was captured when the institution accepted (the money held by
    the platform), so a staff cancellation refunds it through Stripe's Refunds API."""
    order, payment, stripe = paid_by_card["order"], paid_by_card["payment"], paid_by_card["stripe"]
    services.accept(session, order, paid_by_card["provider"])
    assert ledger.balances(session, order.id)["escrow"] == -500000
    response = post_form(client, f"/staff/orders/{order.id}/cancel",
                         {"cancel-reason": "Institution lost its licence"})
    assert response.status_code == 302
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "cancelled"
    payment = session.get(Payment, payment.id)
    assert payment.status == "captured" and payment.amount_refunded == 500000
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "succeeded"
    balances = ledger.balances(session, order.id)
    assert balances["escrow"] == 0 and balances["platform_cash"] == 0
    assert set(balances.values()) == {0}
    (row,) = audit_rows(session, "order.cancel")
    assert row.reason == "Institution lost its licence" and row.details["from_status"] == "accepted"
    cancel = session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                     OrderEvent.name == "cancel"))
    assert cancel.note == "Institution lost its licence"
    assert any("cancelled" in t for t in notified(session, paid_by_card["buyer"]))


def test_cancel_refused_once_delivered(client, session, setup):
    order = setup["order"]
    support.set_status(session, order, "delivered")
    session.commit()
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/cancel", {"cancel-reason": "x"})
    assert response.status_code == 400
    assert "staff cancel orders only before delivery" in text(response)
    assert state(session, order) == before


# --------------------------------------------------------------------------- ruling

@pytest.fixture
def disputed(session, paid_by_card):
    order = paid_by_card["order"]
    services.accept(session, order, paid_by_card["provider"])
    services.dispute(session, order, paid_by_card["buyer"], "The report is a template.")
    return paid_by_card


@pytest.mark.parametrize("data, message", [
    ({"ruling-ruling": "partial", "ruling-refund": "5000.00", "ruling-note": "Half done"},
     "A partial refund is more than zero and less than what was paid (¥5,000.00)"),
    ({"ruling-ruling": "partial", "ruling-refund": "0", "ruling-note": "Half done"},
     "A partial refund is more than zero"),
    ({"ruling-ruling": "partial", "ruling-refund": "", "ruling-note": "Half done"},
     "Enter the amount to refund for a partial refund."),
    ({"ruling-ruling": "full", "ruling-note": ""}, "Explain the ruling."),
    ({"ruling-note": "Something"}, "Choose a ruling."),
])
def test_ruling_validation(client, session, disputed, data, message):
    order = disputed["order"]
    before = state(session, order)
    response = post_form(client, f"/staff/orders/{order.id}/rule", data)
    assert response.status_code == 400
    assert message in text(response)
    assert state(session, order) == before


def test_partial_refund_ruling_moves_the_money_and_is_audited(client, session, disputed):
    order, payment, stripe = disputed["order"], disputed["payment"], disputed["stripe"]
    response = post_form(client, f"/staff/orders/{order.id}/rule",
                         {"ruling-ruling": "partial", "ruling-refund": "1,200.00",
                          "ruling-note": "The search was done; the analysis was not."})
    assert response.status_code == 302
    session.expire_all()
    order = session.get(Order, order.id)
    assert (order.status, order.ruling, order.ruling_refund) == ("resolved", "partial", 120000)
    # Captured at acceptance (issue 13): the ruling refunds part of it.
    assert session.get(Payment, payment.id).amount_captured == 500000
    assert session.get(Payment, payment.id).amount_refunded == 120000
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "succeeded"
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["escrow"] == 0
    (row,) = audit_rows(session, "order.resolve")
    assert row.details["ruling"] == "partial" and row.details["refund"] == 120000
    assert row.reason == "The search was done; the analysis was not."


# --------------------------------------------------------------------------- existing staff actions

def test_staff_refund_and_transfer_confirmation_are_audited(client, session, setup):
    p = setup["p"]
    order = support.order(session, p, "pending_payment", payment_method="bank_transfer")
    payments.begin_bank_transfer(session, order)
    session.commit()
    response = post_form(client, f"/orders/{order.id}/transfer-received",
                         {"transfer-amount": "5000.00", "transfer-reference": "BOC-7781"})
    assert response.status_code == 302
    (row,) = audit_rows(session, "order.transfer_received")
    assert row.target_id == order.id and row.details == {
        "number": order.number, "amount": 500000, "reference": "BOC-7781"}
    services.accept(session, order, p.provider)
    services.deliver(session, order, p.provider, "Done")
    session.commit()
    services.complete(session, order, p.buyer)
    response = post_form(client, f"/orders/{order.id}/refund",
                         {"refund-amount": "100.00", "refund-reason": "Late by two days"})
    assert response.status_code == 302
    (row,) = audit_rows(session, "order.refund")
    assert row.reason == "Late by two days" and row.details["amount"] == 10000
    body = text(client.get("/staff/audit?target_type=purchase_order"))
    assert "order.refund" in body and "order.transfer_received" in body
