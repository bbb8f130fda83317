"""The Stripe webhook: signed, de-duplicated, CSRF-exempt."""

import logging

from flask import (
    current_app,
    jsonify,
    request,
)

from marketplace.database import db
from marketplace.extensions import csrf
from orders import webhooks
from orders.stripe_gateway import GatewayError, construct_event
from orders.views import bp

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- Stripe webhook

@bp.post("/stripe/webhook")
def stripe_webhook():
    payload = request.get_data(cache=False)
    try:
        event = construct_event(payload, request.headers.get("Stripe-Signature"),
                                current_app.config.get("STRIPE_WEBHOOK_SECRET") or "")
    except ValueError:
        log.warning("rejected a webhook with a missing or bad signature")
        return jsonify(error="invalid signature"), 400
    try:
        outcome = webhooks.handle_event(db.session, event)
    except GatewayError as exc:
        db.session.rollback()
        log.warning("webhook %s not processed yet: %s", event.get("id"), exc)
        return jsonify(error="payment service unavailable, retry later"), 503
    return jsonify(status=outcome)


csrf.exempt(stripe_webhook)


csrf.exempt(stripe_webhook)
