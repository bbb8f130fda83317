"""Card payments against localstripe (a stateful fake Stripe on 127.0.0.1): funds held with
manual capture, captured when the institution accepts (issue 13: from then on held by the
platform in escrow), released on decline, declines, 3-D Secure, refunds
after capture (never more than captured), and webhooks (verified, de-duplicated,
reconciling a payment whose browser never came back)."""

import json
import time
from datetime import timedelta

import factories
import pytest
import requests
from conftest import post_form
from helpers import login
from sqlalchemy import func, select
from stripe_fixtures import (  # noqa: F401
    SECRET_KEY,
    WEBHOOK_SECRET,
    event_payload,
    free_port,
    localstripe,
    signed_headers,
)

from marketplace.database import db, utcnow
from marketplace.models import Notification
from orders import cart, checkout, ledger, payments, services, timers, workflow
from orders.models import Order, Payment, StripeWebhookEvent
from orders.stripe_gateway import StripeGateway

OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")
DECLINED_CARD = payments.TestCard("4000000000000341", 12, 2030, "123")
THREE_DS_CARD = payments.TestCard("4000002500003155", 12, 2030, "123")


@pytest.fixture
def bought(session, localstripe):  # noqa: F811 - pytest fixture
    """An enterprise's order of a 5,000.00 package, awaiting card payment."""
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
    return {"order": result.checkout.orders[0], "buyer": buyer, "provider": provider,
            "staff": staff, "stripe": localstripe}


def pay(session, order, card):
    payment = payments.begin_card_payment(session, order)
    session.commit()
    return payments.pay_with_test_card(session, payment, card)


def test_card_payment_is_held_then_captured_when_the_institution_accepts(session, bought):
    """Issue 13 (replaces "captured when the buyer accepts"): the hold is captured at the
    institution's acceptance; the money then sits in escrow (held by the platform) until the
    buyer accepts the work, which recognises it without another Stripe call."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    assert payment.status == "held" and payment.amount_authorised == 500000
    assert order.status == "paid" and payment.card_last4 == "4242"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_capture"
    assert ledger.balances(session, order.id)["buyer_funds_held"] == 500000

    outcome = services.accept(session, order, bought["provider"])
    assert outcome.money == ["captured"] and order.status == "accepted"
    session.refresh(payment)
    assert payment.status == "captured" and payment.amount_captured == 500000
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "succeeded"
    balances = ledger.balances(session, order.id)
    assert balances["buyer_funds_held"] == 0 and balances["platform_cash"] == 500000
    assert balances["escrow"] == -500000  # held by the platform, owed on the open order
    assert ledger.held_by_platform(balances) == 500000

    services.deliver(session, order, bought["provider"], "Filed; receipts attached.")
    session.commit()
    outcome = services.complete(session, order, bought["buyer"])
    assert outcome.warning is None and outcome.money == ["recognised"]
    balances = ledger.balances(session, order.id)
    assert balances["buyer_funds_held"] == 0 and balances["escrow"] == 0
    assert balances["platform_cash"] == 500000 and sum(balances.values()) == 0


def test_a_declined_card_leaves_the_order_awaiting_payment_and_a_retry_works(session, bought):
    order, stripe = bought["order"], bought["stripe"]
    failed = pay(session, order, DECLINED_CARD)
    assert failed.status == "failed" and "declined" in failed.failure_message.lower()
    assert order.status == "pending_payment" and order.live_payment is None
    assert stripe.intent(failed.stripe_payment_intent_id)["status"] == "requires_payment_method"
    assert ledger.balances(session, order.id)["buyer_funds_held"] == 0
    retried = pay(session, order, OK_CARD)
    assert retried.id != failed.id and retried.status == "held"
    assert order.status == "paid"


def test_three_d_secure_requires_action_then_authenticated_then_held(session, bought):
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, THREE_DS_CARD)
    assert payment.status == "requires_action" and order.status == "pending_payment"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_action"
    payments.authenticate_test_payment(session, payment, success=True)
    assert payment.status == "held" and order.status == "paid"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_capture"


def test_failed_three_d_secure_is_a_failed_payment(session, bought):
    order = bought["order"]
    payment = pay(session, order, THREE_DS_CARD)
    payments.authenticate_test_payment(session, payment, success=False)
    assert payment.status == "failed" and "authentication" in payment.failure_message.lower()
    assert order.status == "pending_payment"


def test_provider_decline_releases_the_hold(session, bought):
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    outcome = services.decline(session, order, bought["provider"], "Fully booked until March")
    assert outcome.warning is None
    session.refresh(payment)
    assert order.status == "declined" and payment.status == "released"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "canceled"
    balances = ledger.balances(session, order.id)
    assert all(value == 0 for value in balances.values())


def test_buyer_cancelling_before_acceptance_releases_the_hold(session, bought):
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    services.cancel(session, order, bought["buyer"], "Found it in-house")
    session.refresh(payment)
    assert payment.status == "released"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "canceled"


def _complete(session, bought, card=OK_CARD):
    order = bought["order"]
    payment = pay(session, order, card)
    services.accept(session, order, bought["provider"])
    services.deliver(session, order, bought["provider"], "Done")
    session.commit()
    services.complete(session, order, bought["buyer"])
    session.refresh(payment)
    return order, payment


def test_partial_then_full_refund_after_capture_and_never_more(session, bought):
    order, payment = _complete(session, bought)
    fee_before = -ledger.balances(session, order.id)["platform_fee_revenue"]
    done = payments.staff_refund(session, order, bought["staff"], 120000, "Late delivery")
    session.commit()
    assert done.cash == 120000 and done.voucher == 0
    assert done.refund.stripe_refund_id and payment.amount_refunded == 120000
    charge = bought["stripe"].intent(payment.stripe_payment_intent_id)["latest_charge"]
    assert charge["amount_refunded"] == 120000

    # Refusal by OUR records, although localstripe itself would accept any amount.
    with pytest.raises(payments.PaymentError, match="at most ¥3,800.00"):
        payments.staff_refund(session, order, bought["staff"], 380001, "Too much")
    session.rollback()
    session.refresh(payment)
    assert payment.amount_refunded == 120000

    payments.staff_refund(session, order, bought["staff"], 380000, "Refund the rest")
    session.commit()
    assert payment.amount_refunded == payment.amount_captured == 500000
    with pytest.raises(payments.PaymentError):
        payments.staff_refund(session, order, bought["staff"], 1, "One more cent")
    session.rollback()
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0
    assert balances["platform_cash"] == 0 and balances["provider_payable"] == 0
    assert balances["platform_fee_revenue"] == 0 and fee_before > 0


def test_the_database_refuses_a_refund_beyond_captured_even_without_our_code(session, bought):
    _order, payment = _complete(session, bought)
    payment.amount_refunded = payment.amount_captured + 1
    with pytest.raises(Exception, match="(?i)check|constraint"):
        session.commit()
    session.rollback()


def test_partial_ruling_refunds_part_of_what_was_captured(session, bought):
    """Issue 13 (replaces "a partial ruling captures part and releases the rest"): the card
    was captured at acceptance, so a partial ruling refunds through the Refunds API."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    services.accept(session, order, bought["provider"])
    services.deliver(session, order, bought["provider"], "Report")
    session.commit()
    services.dispute(session, order, bought["buyer"], "Half the report is missing")
    services.resolve(session, order, bought["staff"], "partial", 200000, "Half delivered")
    session.refresh(payment)
    assert order.status == "resolved" and payment.status == "captured"
    assert payment.amount_captured == 500000 and payment.amount_refunded == 200000
    intent = stripe.intent(payment.stripe_payment_intent_id)
    assert intent["status"] == "succeeded"
    refunds = stripe.client.refunds.list(params={"payment_intent": intent["id"]}).data
    assert [r.amount for r in refunds] == [200000]
    balances = ledger.balances(session, order.id)
    assert balances["buyer_funds_held"] == 0 and balances["escrow"] == 0
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 300000


def _legacy_accept(session, order, provider):
    """An order accepted before capture-on-acceptance (issue 13): accepted, card still only
    held. ``capture-accepted-holds`` handles these; the tests below keep their old paths
    working meanwhile."""
    workflow.transition(session, order, "accept", provider,
                        changes={"due_at": utcnow() + timedelta(days=14)})
    session.commit()


# --------------------------------------------------------------------------- webhooks

def _post_event(client, event_id, event_type, obj, secret=None):
    payload = event_payload(event_id, event_type, obj)
    headers = signed_headers(payload) if secret is None else signed_headers(payload, secret)
    return client.post("/stripe/webhook", data=payload, headers=headers)


def test_webhook_makes_the_order_paid_when_the_browser_never_came_back(client, session,
                                                                      bought):
    """The buyer's browser confirmed the card (as Stripe.js does) and was closed before it
    returned to us: only the webhook tells us the money is held."""
    order, stripe = bought["order"], bought["stripe"]
    payment = payments.begin_card_payment(session, order)
    session.commit()
    intent = stripe.client.payment_intents.create(params={
        "amount": payment.amount, "currency": "cny", "capture_method": "manual",
        "metadata": {"payment_id": str(payment.id), "order_id": str(order.id)}})
    payment.stripe_payment_intent_id = intent.id
    session.commit()
    method = stripe.client.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    stripe.client.payment_intents.update(intent.id, params={"payment_method": method.id})
    confirmed = stripe.client.payment_intents.confirm(intent.id).to_dict()
    assert confirmed["status"] == "requires_capture"
    assert order.status == "pending_payment"  # we know nothing yet

    # localstripe sends no event for a manual-capture authorisation, so the test delivers
    # the one Stripe sends, signed with the endpoint's secret.
    response = _post_event(client, "evt_never_returned_1",
                           "payment_intent.amount_capturable_updated", confirmed)
    assert response.status_code == 200, response.get_data(as_text=True)
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "paid" and order.live_payment.status == "held"

    # A replay (Stripe retries) changes nothing.
    events = session.scalar(select(func.count()).select_from(StripeWebhookEvent))
    timeline = len(order.events)
    again = _post_event(client, "evt_never_returned_1",
                        "payment_intent.amount_capturable_updated", confirmed)
    assert again.status_code == 200 and "duplicate" in again.get_json()["status"]
    session.expire_all()
    order = session.get(Order, order.id)
    assert session.scalar(select(func.count()).select_from(StripeWebhookEvent)) == events
    assert len(order.events) == timeline and order.status == "paid"
    assert ledger.balances(session, order.id)["buyer_funds_held"] == payment.amount


def test_webhook_with_a_bad_signature_is_rejected(client, session, bought):
    payload = event_payload("evt_forged", "payment_intent.succeeded",
                            {"id": "pi_forged", "object": "payment_intent"})
    response = client.post("/stripe/webhook", data=payload,
                           headers=signed_headers(payload, secret="whsec_wrong"))
    assert response.status_code == 400
    missing = client.post("/stripe/webhook", data=payload,
                          headers={"Content-Type": "application/json"})
    assert missing.status_code == 400
    tampered = client.post("/stripe/webhook", data=payload.replace(b"pi_forged", b"pi_other"),
                           headers=signed_headers(payload))
    assert tampered.status_code == 400
    assert session.scalar(select(func.count()).select_from(StripeWebhookEvent)) == 0


def test_webhook_needs_no_csrf_token_but_every_other_post_does(app, client, session,
                                                               monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    buyer = factories.user(session, factories.enterprise(session))
    product = factories.product(session)
    session.commit()
    login(client, buyer)  # signed in, so only the missing token can refuse the form post
    refused = client.post("/cart/add", data={"package_id": product.packages[0].id})
    assert refused.status_code == 400
    assert "security token" in refused.get_data(as_text=True)
    assert cart.line_count(session, buyer) == 0
    # The same client, no token either: Stripe's signed webhook is accepted.
    payload = event_payload("evt_no_csrf_token", "customer.created",
                            {"id": "cus_no_csrf", "object": "customer"})
    accepted = client.post("/stripe/webhook", data=payload, headers=signed_headers(payload))
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json()["status"].startswith("ignored")


def test_localstripe_delivers_a_real_signed_webhook_for_a_declined_card(live_server, session,
                                                                       bought):
    """End to end: localstripe itself signs and posts payment_intent.payment_failed to our
    endpoint on the live server; the event is recorded once."""
    stripe = bought["stripe"]
    stripe.register_webhook("orders-tests", f"{live_server}/stripe/webhook")
    try:
        payment = pay(session, bought["order"], DECLINED_CARD)
        deadline = time.monotonic() + 15
        found = None
        while time.monotonic() < deadline and found is None:
            db.session.remove()
            found = session.scalar(select(StripeWebhookEvent).where(
                StripeWebhookEvent.object_id == payment.stripe_payment_intent_id))
            if found is None:
                time.sleep(0.2)
        assert found is not None, "localstripe did not deliver the webhook"
        assert found.type == "payment_intent.payment_failed"
        assert session.get(Payment, payment.id).status == "failed"
    finally:
        stripe.unregister_webhook("orders-tests")


def test_checkout_by_card_over_http_holds_the_money(client, session, localstripe):  # noqa: F811
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org)
    product = factories.product(session, prices=(250000,))
    session.commit()
    post_form(client, "/login", {"email": buyer.email, "password": factories.PASSWORD})
    post_form(client, "/cart/add", {"package_id": product.packages[0].id})
    page = client.get("/checkout").get_data(as_text=True)
    token = page.split('name="token" value="')[1].split('"')[0]
    data = {"token": token, "payment_method": "card", "card_number": "4242 4242 4242 4242",
            "card_expiry": "12/30", "card_cvc": "123"}
    first = post_form(client, "/checkout", data)
    second = post_form(client, "/checkout", data)  # the double click
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    result = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "placed and paid" in result
    session.expire_all()
    assert session.scalar(select(func.count(Order.id))) == 1
    assert session.scalar(select(func.count(Payment.id))) == 1
    intent_id = session.scalar(select(Payment.stripe_payment_intent_id))
    assert localstripe.intent(intent_id)["status"] == "requires_capture"
    assert json.loads(requests.get(f"{localstripe.url}/v1/payment_intents", timeout=5,
                                   auth=("sk_test_x", "")).text)["data"]


# --------------------------------------------------------------------------- expired holds

def _notified(session, user, kind):
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.kind == kind))


def test_a_hold_cancelled_at_stripe_puts_the_order_back_to_awaiting_payment(client, session,
                                                                           bought):
    """Real Stripe cancels an uncaptured PaymentIntent after about seven days. When the
    webhook says so before the institution accepted (the only time a hold exists now), the
    order needs paying again: it cannot be accepted on money that is gone."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    assert order.status == "paid"
    cancelled = stripe.client.payment_intents.cancel(payment.stripe_payment_intent_id).to_dict()
    assert cancelled["status"] == "canceled"

    response = _post_event(client, "evt_hold_expired_1", "payment_intent.canceled", cancelled)
    assert response.status_code == 200, response.get_data(as_text=True)
    session.expire_all()
    order = session.get(Order, order.id)
    payment = session.get(Payment, payment.id)
    assert payment.status == "released" and order.status == "pending_payment"
    assert order.payment_due_at is not None and order.live_payment is None
    assert all(value == 0 for value in ledger.balances(session, order.id).values())
    assert _notified(session, bought["buyer"], "order_lapse") == 1
    assert _notified(session, bought["staff"], "order_lapse") == 1
    with pytest.raises(workflow.WrongState):
        services.accept(session, order, bought["provider"])
    session.rollback()

    again = pay(session, order, OK_CARD)
    assert again.id != payment.id and again.status == "held" and order.status == "paid"
    services.accept(session, order, bought["provider"])
    services.deliver(session, order, bought["provider"], "Done")
    session.commit()
    outcome = services.complete(session, order, bought["buyer"])
    assert outcome.warning is None and order.status == "completed"
    balances = ledger.balances(session, order.id)
    assert balances["platform_cash"] == 500000 and balances["escrow"] == 0
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 500000


def test_accepting_an_order_whose_hold_was_cancelled_is_refused(session, bought):
    """No webhook arrived (or not yet): the institution's acceptance looks at Stripe first,
    and an order whose hold is gone goes back to awaiting payment instead of being accepted
    (issue 13; this used to happen at the buyer's completion)."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    stripe.client.payment_intents.cancel(payment.stripe_payment_intent_id)

    with pytest.raises(payments.PaymentError, match="(?i)pay again"):
        services.accept(session, order, bought["provider"])
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "pending_payment"
    assert session.get(Payment, payment.id).status == "released"
    balances = ledger.balances(session, order.id)
    assert all(value == 0 for value in balances.values()), balances
    assert not ledger.recognised(session, order)


def test_a_failed_capture_at_acceptance_leaves_the_order_paid(session, bought):
    """Stripe does not answer when the institution accepts: nothing changes (the order is
    still paid and awaiting acceptance, the hold still there), the timeline says why, and
    accepting again a moment later captures once."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    unreachable = StripeGateway(SECRET_KEY, f"http://127.0.0.1:{free_port()}", test_mode=True)
    with pytest.raises(payments.CaptureFailed, match="(?i)still paid"):
        services.accept(session, order, bought["provider"], gw=unreachable)
    session.expire_all()
    order = session.get(Order, order.id)
    payment = session.get(Payment, payment.id)
    assert order.status == "paid" and payment.status == "held"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_capture"
    assert [e.name for e in order.events][-1] == "capture_failed"
    assert ledger.balances(session, order.id)["buyer_funds_held"] == 500000

    services.accept(session, order, bought["provider"])
    session.refresh(payment)
    assert order.status == "accepted" and payment.status == "captured"
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "succeeded"
    captures = [e for e in ledger.entries(session, order.id)
                if e.kind == "capture" and e.account == "platform_cash"]
    assert [e.amount for e in captures] == [500000]


def test_the_timer_job_finds_a_hold_cancelled_at_stripe(session, bought):
    """A legacy order (accepted before capture-on-acceptance) whose hold the bank released:
    the hold check finds it; the order is not sent back (no lapse after acceptance) but the
    buyer and staff are told it must be paid again."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    _legacy_accept(session, order, bought["provider"])
    stripe.client.payment_intents.cancel(payment.stripe_payment_intent_id)
    timers.run(session, utcnow() + timedelta(days=7))
    session.expire_all()
    assert session.get(Order, order.id).status == "accepted"
    assert session.get(Payment, payment.id).status == "released"
    assert _notified(session, bought["buyer"], "order_repay_needed") == 1
    assert _notified(session, bought["staff"], "order_repay_needed") == 1


def test_nothing_is_recognised_when_the_capture_finds_the_hold_gone(session, bought):
    """Stripe did not answer when the buyer accepted the delivery, so the order completed
    and the capture was left to the timer job; by then the hold had been cancelled. No
    revenue is posted for money never received, and staff are told."""
    order, stripe = bought["order"], bought["stripe"]
    payment = pay(session, order, OK_CARD)
    _legacy_accept(session, order, bought["provider"])
    services.deliver(session, order, bought["provider"], "Done")
    session.commit()
    unreachable = StripeGateway(SECRET_KEY, f"http://127.0.0.1:{free_port()}", test_mode=True)
    outcome = services.complete(session, order, bought["buyer"], gw=unreachable)
    assert order.status == "completed" and outcome.warning
    stripe.client.payment_intents.cancel(payment.stripe_payment_intent_id)

    timers.run(session, utcnow() + timedelta(minutes=5))
    session.expire_all()
    order = session.get(Order, order.id)
    assert session.get(Payment, payment.id).status == "released"
    assert not ledger.recognised(session, order)
    balances = ledger.balances(session, order.id)
    assert balances["platform_fee_revenue"] == 0 and balances["provider_payable"] == 0
    assert sum(balances.values()) == 0
    assert _notified(session, bought["staff"], "order_payment_missing") == 1
    timers.run(session, utcnow() + timedelta(minutes=10))  # told once, not every run
    assert _notified(session, bought["staff"], "order_payment_missing") == 1


# --------------------------------------------------------------------------- overlapping clicks

def test_two_overlapping_pay_clicks_leave_no_second_hold(session, bought):
    """Request A begins, request B begins (replacing A's attempt), then A pays: A's money
    must not stay held at Stripe for a payment row we consider cancelled."""
    order, stripe = bought["order"], bought["stripe"]
    first = payments.begin_card_payment(session, order)  # request A
    session.commit()
    second = payments.begin_card_payment(session, order)  # request B
    session.commit()
    try:
        payments.pay_with_test_card(session, first, OK_CARD)  # A goes on
    except payments.PaymentError:
        session.rollback()
    payments.pay_with_test_card(session, second, OK_CARD)  # B goes on
    session.expire_all()
    assert session.get(Payment, second.id).status == "held"
    assert session.get(Order, order.id).status == "paid"
    intents = session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.order_id == order.id, Payment.stripe_payment_intent_id.is_not(None))).all()
    held = [i for i in intents if stripe.intent(i)["status"] == "requires_capture"]
    assert held == [session.get(Payment, second.id).stripe_payment_intent_id]
    assert ledger.balances(session, order.id)["buyer_funds_held"] == 500000


def test_a_hold_arriving_for_a_replaced_attempt_is_cancelled_at_stripe(client, session, bought):
    """The in-flight request A confirmed its card after B replaced A's attempt: the webhook
    for A's hold cancels it at Stripe instead of leaving the buyer's money held forever."""
    order, stripe = bought["order"], bought["stripe"]
    first = payments.begin_card_payment(session, order)
    session.commit()
    payments.begin_card_payment(session, order)
    session.commit()
    assert session.get(Payment, first.id).status == "canceled"
    method = stripe.client.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    intent = stripe.client.payment_intents.create(params={
        "amount": first.amount, "currency": "cny", "capture_method": "manual",
        "payment_method": method.id,
        "metadata": {"payment_id": str(first.id), "order_id": str(order.id)}})
    confirmed = stripe.client.payment_intents.confirm(intent.id).to_dict()
    assert confirmed["status"] == "requires_capture"
    response = _post_event(client, "evt_orphan_hold_1",
                           "payment_intent.amount_capturable_updated", confirmed)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stripe.intent(intent.id)["status"] == "canceled"
    session.expire_all()
    assert session.get(Order, order.id).status == "pending_payment"
    assert ledger.balances(session, order.id)["buyer_funds_held"] == 0


def test_reloading_the_stripe_page_never_cancels_an_authorised_payment(session, bought):
    """GET /checkout/<token>/pay begins a new attempt on every load. If Stripe.js already
    authorised the previous attempt, the reload applies that hold instead of cancelling it."""
    order, stripe = bought["order"], bought["stripe"]
    payment = payments.begin_card_payment(session, order)
    session.commit()
    payments.create_browser_intent(session, payment)
    method = stripe.client.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    stripe.client.payment_intents.update(payment.stripe_payment_intent_id,
                                         params={"payment_method": method.id})
    stripe.client.payment_intents.confirm(payment.stripe_payment_intent_id)  # Stripe.js

    with pytest.raises(payments.PaymentError, match="paid a moment ago"):
        payments.begin_card_payment(session, order)  # the reload
    session.rollback()
    assert stripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_capture"
    session.expire_all()
    assert session.get(Payment, payment.id).status == "held"
    assert session.get(Order, order.id).status == "paid"


def test_begin_card_payment_is_serialised_on_the_order(session, bought):
    """Two requests that read the order at the same moment: the second to write loses
    (the conditional UPDATE of the order row, a row lock on PostgreSQL)."""
    from sqlalchemy.orm import Session as OrmSession

    order = bought["order"]
    with OrmSession(db.engine) as other:
        stale = other.get(Order, order.id)
        assert stale.status == "pending_payment"
        payments.begin_card_payment(session, order)
        session.commit()
        with pytest.raises(payments.PaymentError, match="(?i)another payment"):
            payments.begin_card_payment(other, stale)
        other.rollback()
    session.expire_all()
    assert session.scalar(select(func.count(Payment.id))
                          .where(Payment.order_id == order.id)) == 1


# --------------------------------------------------------------------------- refund form

def test_a_double_submitted_refund_form_refunds_once(client, session, bought):
    """The refund form carries a one-time token; the second post of the same form (a double
    click) is answered with a clear message and refunds nothing more."""
    import re
    from html import unescape

    import order_support as osup

    from orders.models import Refund

    order, payment = _complete(session, bought)
    osup.login(client, bought["staff"])
    page = client.get(f"/staff/orders/{order.id}").get_data(as_text=True)
    token = re.search(r'name="refund-token"[^>]*value="([^"]+)"', page)
    token = token or re.search(r'value="([^"]+)"[^>]*name="refund-token"', page)
    assert token, "the refund form carries a one-time token"
    data = {"refund-amount": "100.00", "refund-reason": "Late by two days",
            "refund-token": token.group(1)}
    first = post_form(client, f"/orders/{order.id}/refund", data)
    second = post_form(client, f"/orders/{order.id}/refund", data)  # the double click
    assert first.status_code == second.status_code == 302
    shown = unescape(client.get(second.headers["Location"]).get_data(as_text=True))
    assert "already" in shown and "nothing more was refunded" in shown.lower()
    session.expire_all()
    assert session.get(Payment, payment.id).amount_refunded == 10000
    assert session.scalar(select(func.count(Refund.id))) == 1
    charge = bought["stripe"].intent(payment.stripe_payment_intent_id)["latest_charge"]
    assert charge["amount_refunded"] == 10000
    # Two posts at the very same moment both pass that check: the UNIQUE index stops the
    # second refund row (written before Stripe is called) even without our code.
    from sqlalchemy.exc import IntegrityError
    session.add(Refund(payment_id=payment.id, order_id=order.id, amount=1, reason="Twin",
                       form_token=token.group(1)))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()

    # A fresh form (a new token) refunds again, as a second decision should.
    page = client.get(f"/staff/orders/{order.id}").get_data(as_text=True)
    fresh = re.search(r'name="refund-token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="refund-token"', page)
    assert fresh.group(1) != token.group(1)
    post_form(client, f"/orders/{order.id}/refund", {**data, "refund-token": fresh.group(1)})
    session.expire_all()
    assert session.get(Payment, payment.id).amount_refunded == 20000
