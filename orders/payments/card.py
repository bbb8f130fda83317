"""Card payments through Stripe PaymentIntents, funds held with manual capture.

Authorised at checkout (``begin`` + ``pay_with_test_card`` in test mode, or Stripe.js with
``create_browser_intent``), captured when the institution accepts the order (from then on the
money is held by the platform in escrow, issue 13), released on decline or cancellation
before acceptance, refunded (in part or whole) through the Refunds API after it. Every call to
Stripe is surrounded by commits (the documented exception to "the view commits"): the
payment row and the PaymentIntent id are committed before Stripe is asked to move money, so
a crash never loses track of it.
"""

import logging
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.notifications import notify_organisation
from orders import ledger, states, timeline, workflow
from orders.models import Order, Payment
from orders.payments.base import PaymentMethod, get, register
from orders.payments.core import (
    HoldLapsed,
    PaymentError,
    _claim,
    _hold_lapsed,
    _move,
    capture_failed,
    order_paid,
    refund_payment,
    repay_needed,
)
from orders.stripe_gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    StripeGateway,
    intent_summary,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestCard:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


def gateway() -> StripeGateway:
    return StripeGateway.from_config(current_app.config)


def payment_for_intent(session: Session, intent: dict) -> Payment | None:
    payment = session.scalar(select(Payment).where(
        Payment.stripe_payment_intent_id == intent.get("id")))
    if payment is None:
        raw_id = (intent.get("metadata") or {}).get("payment_id")
        if raw_id and str(raw_id).isdigit():
            payment = session.get(Payment, int(raw_id))
            if payment is not None and payment.stripe_payment_intent_id not in (
                    None, intent.get("id")):
                payment = None
    return payment


def begin_card_payment(session: Session, order: Order) -> Payment:
    """A new card payment attempt for an order awaiting payment (caller commits).
    An unfinished earlier attempt is abandoned; if Stripe says it was authorised meanwhile
    it is applied instead (committed) and PaymentError says the order is paid."""
    if order.status != "pending_payment":
        raise PaymentError("This order is not awaiting payment.")
    if order.amount_due <= 0:
        raise PaymentError("Nothing is left to pay on this order.")
    _claim(session, order)
    live = order.live_payment
    if live is not None:
        if live.status in ("held", "captured"):
            raise PaymentError("This order is already paid.")
        _abandon(session, live)
    payment = Payment(order_id=order.id, method="card", status="pending",
                      currency=order.currency, amount=order.amount_due)
    session.add(payment)
    order.payment_method = "card"
    session.flush()
    session.refresh(order)
    return payment


def _abandon(session: Session, payment: Payment) -> None:
    """Give up an unfinished attempt (a retry, or a reload of the Stripe.js page, replaces
    it). Stripe is asked first and an intent that is already authorised is never cancelled:
    it is applied (the order is paid; committed here, since PaymentError makes callers roll
    back) and PaymentError raised. If Stripe cannot be reached, GatewayError propagates and
    nothing changes, so the buyer can retry."""
    if payment.method != "card":
        get(payment.method).cancel(session, payment)
        return
    if payment.stripe_payment_intent_id:
        gw = gateway()
        intent = gw.retrieve_intent(payment.stripe_payment_intent_id)
        if intent.get("status") not in ("requires_capture", "succeeded", "canceled"):
            try:
                intent = gw.cancel_intent(payment.stripe_payment_intent_id)
            except GatewayError:
                intent = gw.retrieve_intent(payment.stripe_payment_intent_id)
        if intent.get("status") in ("requires_capture", "succeeded"):
            apply_intent(session, payment, intent, gw)
            session.commit()
            raise PaymentError("This order was paid a moment ago.")
        apply_intent(session, payment, intent, gw)
    _move(session, payment, ("pending", "requires_action"), "canceled")


def _still_pending(session: Session, payment: Payment) -> None:
    session.refresh(payment)
    if payment.status != "pending":
        raise PaymentError("This payment attempt was replaced by a newer one (a second click "
                           "or another tab); nothing was charged by this one.")


def pay_with_test_card(session: Session, payment: Payment, card: TestCard,
                       gw: StripeGateway | None = None) -> Payment:
    """Test mode (localstripe): create the PaymentMethod from a test card number on the
    server, create the PaymentIntent (committed before confirming), confirm it and apply the
    result. Declines leave the order awaiting payment with the reason recorded."""
    gw = gw or gateway()
    order = payment.order
    _still_pending(session, payment)
    try:
        method = gw.create_test_card_payment_method(card.number, card.exp_month, card.exp_year,
                                                    card.cvc)
    except GatewayUnavailable as exc:  # Stripe down or hung: not the card's fault
        _fail(session, payment, exc.code, exc.message)
        session.commit()
        raise
    except GatewayError as exc:
        _fail(session, payment, exc.code or "invalid_card",
              "The card details were not accepted. Check the number, expiry and CVC.")
        session.commit()
        return payment
    try:
        intent = gw.create_intent(
            amount=payment.amount, currency=payment.currency, payment_method=method["id"],
            metadata={"payment_id": str(payment.id), "order_id": str(order.id),
                      "order_number": order.number})
    except GatewayUnavailable as exc:  # an unconfirmed intent, if any, holds nothing
        _fail(session, payment, exc.code, exc.message)
        session.commit()
        raise
    payment.stripe_payment_intent_id = intent["id"]
    payment.stripe_client_secret = intent.get("client_secret")
    payment.card_last4 = (method.get("card") or {}).get("last4")
    payment.card_brand = (method.get("card") or {}).get("brand")
    session.commit()
    try:
        intent = gw.confirm_intent(intent["id"])
    except CardDeclined:
        intent = gw.retrieve_intent(intent["id"])
    except GatewayUnavailable as exc:
        # The confirm may have happened: the payment stays pending with its intent, and a
        # retry (``_abandon`` asks Stripe first), the webhook or run-order-timers applies
        # what Stripe did.
        payment.failure_code, payment.failure_message = exc.code, exc.message
        session.commit()
        raise
    apply_intent(session, payment, intent, gw)
    session.commit()
    return payment


def create_browser_intent(session: Session, payment: Payment,
                          gw: StripeGateway | None = None) -> str:
    """Real Stripe: an unconfirmed PaymentIntent whose client secret Stripe.js confirms in the
    browser (card details never reach us). Commits. Returns the client secret."""
    gw = gw or gateway()
    order = payment.order
    _still_pending(session, payment)
    intent = gw.create_intent(
        amount=payment.amount, currency=payment.currency, payment_method=None,
        metadata={"payment_id": str(payment.id), "order_id": str(order.id),
                  "order_number": order.number})
    payment.stripe_payment_intent_id = intent["id"]
    payment.stripe_client_secret = intent.get("client_secret")
    session.commit()
    return intent["client_secret"]


def authenticate_test_payment(session: Session, payment: Payment, success: bool,
                              gw: StripeGateway | None = None) -> Payment:
    """Test mode: complete (or fail) 3-D Secure the way the bank's page would. Commits."""
    gw = gw or gateway()
    if payment.status != "requires_action" or not payment.stripe_payment_intent_id:
        raise PaymentError("This payment is not waiting for authentication.")
    try:
        intent = gw.authenticate_test_intent(payment.stripe_payment_intent_id,
                                             payment.stripe_client_secret or "", success)
    except GatewayError:
        intent = gw.retrieve_intent(payment.stripe_payment_intent_id)
    apply_intent(session, payment, intent, gw)
    session.commit()
    return payment


def refresh_from_stripe(session: Session, payment: Payment,
                        gw: StripeGateway | None = None) -> Payment:
    """Ask Stripe for the intent's state and apply it (browser return, timer job)."""
    gw = gw or gateway()
    if payment.stripe_payment_intent_id:
        apply_intent(session, payment, gw.retrieve_intent(payment.stripe_payment_intent_id), gw)
    return payment


def _fail(session: Session, payment: Payment, code: str | None, message: str | None) -> None:
    message = message or "The payment did not go through."
    if _move(session, payment, ("pending", "requires_action"), "failed",
             failure_code=(code or "failed")[:64], failure_message=message):
        order = payment.order
        workflow.record_event(session, order, "payment_failed", workflow.SYSTEM,
                              note=timeline.note("payment_failed", message=message))
        notify_organisation(
            session, order.buyer, "payment_failed",
            lambda: _("Order %(number)s: payment failed", number=order.number),
            lambda: _("%(message)s Nothing was charged. You can retry with another card.",
                      message=message),
            workflow.order_link(order, "buyer"))


def apply_intent(session: Session, payment: Payment, intent: dict,
                 gw: StripeGateway | None = None) -> str:
    """Bring our records in line with a PaymentIntent's state. Idempotent; returns what
    changed ("held", "captured", "failed", "released", "stray_hold_cancelled", ... or
    "unchanged").

    A hold that arrives for an attempt we already gave up (cancelled, failed or released:
    two overlapping pay clicks, a reload) is cancelled at Stripe, so the buyer's money is
    never held for a payment row nobody will capture."""
    facts = intent_summary(intent)
    if payment.stripe_payment_intent_id is None and facts["id"]:
        payment.stripe_payment_intent_id = facts["id"]
    status = facts["status"]
    now = utcnow()
    outcome = "unchanged"
    if status == "requires_action":
        if _move(session, payment, ("pending",), "requires_action"):
            workflow.record_event(session, payment.order, "payment_requires_action",
                                  workflow.SYSTEM, note=timeline.note("requires_action"))
            outcome = "requires_action"
    elif status == "requires_payment_method" and (facts["error_code"] or facts["error_message"]):
        before = payment.status
        _fail(session, payment, facts["error_code"], facts["error_message"])
        outcome = "failed" if payment.status == "failed" and before != "failed" else outcome
    elif status == "requires_capture" and payment.status in ("canceled", "failed", "released"):
        (gw or gateway()).cancel_intent(facts["id"])
        workflow.record_event(session, payment.order, "stray_hold_cancelled", workflow.SYSTEM,
                              note=timeline.note("stray_hold_cancelled"))
        outcome = "stray_hold_cancelled"
    elif status in ("requires_capture", "succeeded"):
        if status == "succeeded" and payment.status in ("canceled", "failed", "released"):
            log.error("payment %s: PaymentIntent %s captured for an abandoned attempt; "
                      "refund it by hand", payment.id, facts["id"])
        if _move(session, payment, ("pending", "requires_action"), "held",
                 amount_authorised=payment.amount, authorised_at=now,
                 failure_code=None, failure_message=None):
            ledger.card_held(session, payment.order, payment.amount)
            order_paid(session, payment.order)
            outcome = "held"
        if status == "succeeded":
            received = min(facts["amount_received"] or payment.amount_authorised,
                           payment.amount_authorised)
            if _move(session, payment, ("held",), "captured", amount_captured=received,
                     captured_at=now):
                ledger.captured(session, payment.order, received)
                if payment.amount_authorised > received:
                    ledger.released(session, payment.order, payment.amount_authorised - received)
                outcome = "captured"
    elif status == "canceled":
        if _move(session, payment, ("held",), "released"):
            ledger.released(session, payment.order, payment.amount_authorised)
            order = payment.order
            if order.status in workflow.LAPSABLE_STATUSES:
                _hold_lapsed(session, order, now)
            elif order.status in states.OPEN:  # accepted before capture-on-acceptance
                repay_needed(session, order, payment.amount_authorised)
            outcome = "released"
        elif _move(session, payment, ("pending", "requires_action"), "canceled"):
            outcome = "canceled"
    session.flush()
    return outcome


def _sync_card(session: Session, payment: Payment, keep_cash: int,
               gw: StripeGateway | None) -> list[str]:
    gw = gw or gateway()
    intent_id = payment.stripe_payment_intent_id
    if payment.status in ("pending", "requires_action"):
        if intent_id:
            try:
                apply_intent(session, payment, gw.cancel_intent(intent_id), gw)
            except GatewayError:
                # Perhaps it was authorised meanwhile: look, apply, and go on from there.
                apply_intent(session, payment, gw.retrieve_intent(intent_id), gw)
        if payment.status in ("pending", "requires_action"):
            _move(session, payment, ("pending", "requires_action"), "canceled")
        session.commit()
        if payment.status != "held":
            return ["attempt_cancelled"]
    if payment.status == "held":
        if keep_cash <= 0:
            intent = _or_current(gw, intent_id, gw.cancel_intent, intent_id)
            apply_intent(session, payment, intent, gw)
            session.commit()
            return ["hold_released"]
        amount = min(keep_cash, payment.amount_authorised)
        intent = _or_current(gw, intent_id, gw.capture_intent, intent_id,
                             None if amount == payment.amount_authorised else amount)
        apply_intent(session, payment, intent, gw)
        session.commit()
        return ["captured"]
    if payment.status == "captured":
        excess = payment.amount_captured - payment.amount_refunded - keep_cash
        if excess > 0:
            refund_payment(session, payment, excess, None, "Refund after the order closed", gw)
            session.commit()
            return ["refunded"]
    return []


def _or_current(gw: StripeGateway, intent_id: str, action, *args) -> dict:
    """Run a Stripe action; if Stripe refuses because it already happened (a retry after a
    crash), return the intent as it is now so it can be applied."""
    try:
        return action(*args)
    except GatewayError:
        intent = gw.retrieve_intent(intent_id)
        if intent.get("status") in ("succeeded", "canceled"):
            return intent
        raise


@register
class Card(PaymentMethod):
    name = "card"
    label = _l("Card (funds held until you accept the work)")
    short_label = _l("Card")
    partial = "checkout/methods/card.html"
    position = 10
    collects_card = True
    asks_provider = True
    holds_money = True
    reconcile_with_stripe = True
    refunds_at_provider = True

    def begin(self, session: Session, order: Order, **kwargs) -> Payment:
        return begin_card_payment(session, order)

    def confirm(self, session: Session, payment: Payment, gw=None, **kwargs) -> Payment:
        return refresh_from_stripe(session, payment, gw)

    def cancel(self, session: Session, payment: Payment) -> None:
        _abandon(session, payment)

    def refund(self, session: Session, payment: Payment, amount: int, refund, gw=None) -> None:
        gw = gw or gateway()
        try:
            result = gw.refund(payment.stripe_payment_intent_id, amount,
                               {"payment_id": str(payment.id), "order_id": str(payment.order_id)})
        except GatewayError:
            session.rollback()
            raise
        refund.stripe_refund_id = result.get("id")

    def follow_order(self, session: Session, payment: Payment, keep_cash: int,
                     gw=None) -> list[str]:
        return _sync_card(session, payment, keep_cash, gw)

    def capture_on_accept(self, session: Session, payment: Payment, gw=None) -> list[str]:
        """Capture the whole hold at Stripe (commits). A refusal or no answer raises
        CaptureFailed with the order untouched; a hold found cancelled at Stripe puts the
        order back to awaiting payment and raises HoldLapsed."""
        if payment.status != "held":
            return []
        gw = gw or gateway()
        order = payment.order
        intent_id = payment.stripe_payment_intent_id
        try:
            intent = _or_current(gw, intent_id, gw.capture_intent, intent_id, None)
        except GatewayError as exc:
            log.warning("capture at acceptance failed for order %s: %s", order.number, exc)
            raise capture_failed(session, order, exc.message or exc.code or "error") from exc
        outcome = apply_intent(session, payment, intent, gw)
        session.commit()
        if payment.status == "released":
            raise HoldLapsed(_("The card hold on this order was released by the bank before "
                               "the order was accepted, so nothing could be captured. The "
                               "buyer must pay again."))
        return ["captured"] if outcome == "captured" else []

    def still_held(self, session: Session, payment: Payment, gw=None) -> bool:
        if payment.status != "held":
            return True
        gw = gw or gateway()
        try:
            intent = gw.retrieve_intent(payment.stripe_payment_intent_id)
        except GatewayError:
            return True  # the capture will find out
        return apply_intent(session, payment, intent, gw) != "released"

    def webhook(self, session: Session, payment: Payment, event: dict, gw=None) -> str:
        """A PaymentIntent event: fetch the intent (the event's copy may be stale and arrive
        out of order) and apply it."""
        obj = (event.get("data") or {}).get("object") or {}
        gw = gw or gateway()
        return apply_intent(session, payment, gw.retrieve_intent(obj["id"]), gw)
