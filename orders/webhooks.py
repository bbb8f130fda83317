"""Stripe webhooks: verified by signature (in the view), de-duplicated by event id, and used
to reconcile payments whose browser never came back.

The event's copy of the PaymentIntent is not trusted as the current state (events can
arrive late and out of order): the intent is fetched from Stripe and applied with
the payment's method (orders.payments.card.apply_intent, idempotent).
"""

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders import payments
from orders.models import StripeWebhookEvent
from orders.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

HANDLED = {
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
}


def handle_event(session: Session, event: dict, gw: StripeGateway | None = None) -> str:
    """Process one verified event exactly once; returns what happened (for the response and
    the log). The event row and its effects commit together: if processing fails nothing is
    recorded and Stripe's retry is processed afresh."""
    event_id = str(event.get("id") or "")
    event_type = str(event.get("type") or "")
    obj = (event.get("data") or {}).get("object") or {}
    if not event_id:
        return "ignored: no event id"
    record = StripeWebhookEvent(event_id=event_id[:64], type=event_type[:64],
                                object_id=str(obj.get("id") or "")[:64] or None)
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return "duplicate: already processed"
    if event_type not in HANDLED:
        record.outcome = "ignored"
        session.commit()
        return f"ignored: {event_type}"
    payment = payments.payment_for_intent(session, obj)
    if payment is None:
        record.outcome = "unknown payment"
        session.commit()
        log.warning("webhook %s for unknown PaymentIntent %s", event_id, obj.get("id"))
        return "ignored: unknown payment"
    gw = gw or payments.gateway()
    outcome = payments.get(payment.method).webhook(session, payment, event, gw)
    record.outcome = f"payment {payment.id}: {outcome}"
    session.commit()
    if outcome in ("held", "captured") and payment.order.status in ("cancelled", "declined"):
        # The order closed while the payment was in flight: release or refund it now.
        payments.sync_money(session, payment.order, gw)
        session.commit()
    return record.outcome
