"""Payments: card (Stripe PaymentIntents, funds held with manual capture), corporate bank
transfer, and the money that follows an order's state (capture, release, refunds, voucher
value given back).

Rules kept here:

- a payment row exists (and is committed) before Stripe is called, and the PaymentIntent id
  is committed before the intent is confirmed, so a crash never loses track of money: the
  webhook or the timer job finds the row again (by PaymentIntent id or metadata);
- every status change of a payment is a conditional UPDATE from the statuses it may leave,
  so the browser return, a webhook and a retry can race without posting anything twice;
- refunds are reserved with ``amount_refunded + x <= amount_captured`` before Stripe is asked
  (and a CHECK constraint says the same), so we never refund more than was captured, whatever
  Stripe or localstripe would accept;
- ``sync_money`` makes the money match the order's state and is idempotent: views call it
  right after a transition, and ``run-order-timers`` calls it again for anything left behind
  (for example when Stripe was unreachable).

Functions that call Stripe commit the session at the points noted in their docstrings.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from marketplace import audit
from marketplace.database import utcnow
from marketplace.models import User
from marketplace.notifications import notify, notify_organisation
from orders import ledger, vouchers, workflow
from orders.models import Order, OrderEvent, Payment, Refund
from orders.money import format_amount, refund_split
from orders.stripe_gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    StripeGateway,
    intent_summary,
)

log = logging.getLogger(__name__)

DEFAULT_ACCEPT_WITHIN_HOURS = 72


class PaymentError(Exception):
    """A payment action refused; ``status`` is the HTTP status for views."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


class HoldLapsed(PaymentError):
    """The order's card hold was released at Stripe before it was captured: the order went
    back to awaiting payment (already committed) and cannot complete."""


@dataclass(frozen=True)
class TestCard:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


def gateway() -> StripeGateway:
    return StripeGateway.from_config(current_app.config)


def _setting(name: str, default: int) -> int:
    try:
        return int(current_app.config.get(name, default))
    except RuntimeError:
        return default


def _move(session: Session, payment: Payment, from_statuses: tuple[str, ...], to: str,
          **values) -> bool:
    """Change a payment's status only if it is still in one of ``from_statuses``."""
    session.flush()
    result = session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.status.in_(from_statuses))
        .values(status=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    session.refresh(payment)
    return result.rowcount == 1


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


# --------------------------------------------------------------------------- order paid

def order_paid(session: Session, order: Order, actor: User | None = workflow.SYSTEM,
               now: datetime | None = None) -> bool:
    """The money for ``order`` is secured: fire ``pay`` and book the voucher share."""
    now = now or utcnow()
    if order.status != "pending_payment":
        return False
    hours = _setting("ACCEPT_WITHIN_HOURS", DEFAULT_ACCEPT_WITHIN_HOURS)
    try:
        workflow.transition(session, order, "pay", actor, now=now,
                            changes={"accept_by": now + timedelta(hours=hours)})
    except workflow.WrongState:
        session.refresh(order)
        return False
    # Paid again after a lapsed card hold: the voucher share is on the ledger already.
    missing = order.voucher_amount - ledger.balances(session, order.id)["voucher_receivable"]
    if missing > 0:
        ledger.voucher_applied(session, order, missing)
    return True


def _hold_lapsed(session: Session, order: Order, now: datetime) -> None:
    """The card hold of an order not yet completed was released at Stripe (real Stripe
    cancels an uncaptured PaymentIntent after about seven days): nothing is held for the
    work any more, so the order goes back to awaiting payment with a fresh payment window.
    Buyer, institution and staff are told (the ``lapse`` transition notifies them)."""
    days = _setting("PAYMENT_WINDOW_DAYS", 3)
    try:
        workflow.transition(
            session, order, "lapse", workflow.SYSTEM, now=now,
            note="The card hold expired or was released at the bank before the work was "
                 "accepted. The buyer must pay again; nothing was charged.",
            changes={"payment_due_at": now + timedelta(days=days), "accept_by": None,
                     "paid_at": None})
    except workflow.WrongState:
        session.refresh(order)


# --------------------------------------------------------------------------- card payments

def _claim(session: Session, order: Order) -> None:
    """Serialise payment starts on the order: a conditional UPDATE of the order row (status
    and version must still be what we read) bumps its version. On PostgreSQL the row stays
    locked until this transaction ends, so a concurrent start waits, then matches no row;
    on SQLite the UPDATE takes the database write lock. The loser changes nothing."""
    session.flush()
    result = session.execute(
        update(Order).where(Order.id == order.id, Order.status == "pending_payment",
                            Order.version == order.version)
        .values(version=Order.version + 1)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise PaymentError("Another payment attempt for this order started a moment ago. "
                           "Reload the order page to see where it stands.")
    set_committed_value(order, "version", order.version + 1)


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
    if payment.method == "card" and payment.stripe_payment_intent_id:
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
        # retry (``_abandon`` asks Stripe first) or the webhook applies what Stripe did.
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


def confirm_hold(session: Session, order: Order, gw: StripeGateway | None = None) -> None:
    """Before the buyer's acceptance captures the money: is the card hold still there?
    If Stripe released it, the order goes back to awaiting payment (committed) and
    ``HoldLapsed`` is raised. If Stripe cannot be reached the capture will find out
    (``sync_money`` then posts no revenue for money not received)."""
    lapsed = False
    for payment in list(order.payments):
        if payment.method != "card" or payment.status != "held":
            continue
        gw = gw or gateway()
        try:
            intent = gw.retrieve_intent(payment.stripe_payment_intent_id)
        except GatewayError:
            continue
        lapsed |= apply_intent(session, payment, intent, gw) == "released"
    if lapsed:
        session.commit()
        raise HoldLapsed("The card hold on this order was released by the bank before the "
                         "work was accepted, so nothing can be captured. The buyer must pay "
                         "again before the order can be completed.")


def _fail(session: Session, payment: Payment, code: str | None, message: str | None) -> None:
    message = message or "The payment did not go through."
    if _move(session, payment, ("pending", "requires_action"), "failed",
             failure_code=(code or "failed")[:64], failure_message=message):
        order = payment.order
        workflow.record_event(session, order, "payment_failed", workflow.SYSTEM,
                              note=f"Card payment failed: {message}")
        notify_organisation(session, order.buyer, "payment_failed",
                            f"Order {order.number}: payment failed",
                            f"{message} Nothing was charged. You can retry with another card.",
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
                                  workflow.SYSTEM, note="Card needs 3-D Secure authentication.")
            outcome = "requires_action"
    elif status == "requires_payment_method" and (facts["error_code"] or facts["error_message"]):
        before = payment.status
        _fail(session, payment, facts["error_code"], facts["error_message"])
        outcome = "failed" if payment.status == "failed" and before != "failed" else outcome
    elif status == "requires_capture" and payment.status in ("canceled", "failed", "released"):
        (gw or gateway()).cancel_intent(facts["id"])
        workflow.record_event(session, payment.order, "stray_hold_cancelled", workflow.SYSTEM,
                              note="A card authorisation arrived for a payment attempt that "
                                   "had been replaced; it was cancelled at Stripe.")
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
            outcome = "released"
        elif _move(session, payment, ("pending", "requires_action"), "canceled"):
            outcome = "canceled"
    session.flush()
    return outcome


# --------------------------------------------------------------------------- bank transfer

def bank_reference(order: Order) -> str:
    """A payment reference unique to the order, with a check digit against typos."""
    digits = f"{order.id:08d}"
    check = sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10
    return f"ISS{digits}{check}"


def begin_bank_transfer(session: Session, order: Order) -> Payment:
    if order.status != "pending_payment":
        raise PaymentError("This order is not awaiting payment.")
    if order.amount_due <= 0:
        raise PaymentError("Nothing is left to pay on this order.")
    live = order.live_payment
    if live is not None:
        if live.method == "bank_transfer" and live.status == "pending":
            return live
        if live.status in ("held", "captured"):
            raise PaymentError("This order is already paid.")
    _claim(session, order)
    if live is not None:
        _abandon(session, live)
    order.payment_method = "bank_transfer"
    if not order.bank_reference:
        order.bank_reference = bank_reference(order)
    payment = Payment(order_id=order.id, method="bank_transfer", status="pending",
                      currency=order.currency, amount=order.amount_due)
    session.add(payment)
    session.flush()
    session.refresh(order)
    return payment


def mark_transfer_received(session: Session, order: Order, staff: User, amount: int,
                           reference: str = "") -> Payment:
    """Staff confirm the transfer arrived. The amount must match what is due."""
    workflow.check(order, "pay", staff)
    payment = order.live_payment
    if payment is None or payment.method != "bank_transfer" or payment.status != "pending":
        raise PaymentError("This order is not waiting for a bank transfer.")
    if amount != payment.amount:
        raise PaymentError(
            f"The amount received ({format_amount(amount, order.currency)}) does not match the "
            f"amount due ({format_amount(payment.amount, order.currency)}). Contact the buyer; "
            "the order stays unpaid.", status=400)
    now = utcnow()
    if not _move(session, payment, ("pending",), "captured", amount_authorised=amount,
                 amount_captured=amount, authorised_at=now, captured_at=now,
                 received_by_id=staff.id, received_reference=reference.strip()[:64] or None):
        raise PaymentError("This transfer was already recorded.")
    ledger.transfer_received(session, order, amount)
    audit.record(session, staff, "order.transfer_received", order, None, number=order.number,
                 amount=amount, reference=reference.strip()[:64] or None)
    order_paid(session, order, staff, now=now)
    return payment


# --------------------------------------------------------------------------- refunds

def refund_payment(session: Session, payment: Payment, amount: int, actor: User | None,
                   reason: str, gw: StripeGateway | None = None,
                   form_token: str | None = None) -> Refund:
    """Refund part of what was captured. Never more than captured minus refunded: the
    reservation is a conditional UPDATE (and a CHECK constraint), so a second refund
    racing this one cannot pass it. The refund row (with the form's one-time token, UNIQUE)
    is written before Stripe is asked, so a double-submitted form fails here, not after a
    second refund at Stripe. Card refunds go through the Refunds API; bank transfers are
    recorded for staff to pay back. Caller commits."""
    if amount <= 0:
        raise PaymentError("Enter an amount to refund.", status=400)
    session.flush()
    reserved = session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == "captured",
               Payment.amount_refunded + amount <= Payment.amount_captured)
        .values(amount_refunded=Payment.amount_refunded + amount, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    session.refresh(payment)
    if reserved.rowcount != 1:
        raise PaymentError(
            f"Refused: at most {format_amount(max(payment.refundable, 0), payment.currency)} "
            "of this payment can still be refunded (refunds never exceed what was captured).",
            status=400)
    order = payment.order
    refund = Refund(payment_id=payment.id, order_id=order.id, amount=amount,
                    reason=reason.strip(), created_by_id=getattr(actor, "id", None),
                    form_token=form_token,
                    status="succeeded" if payment.method == "card" else "pending_transfer")
    _add_refund(session, refund)
    if payment.method == "card":
        gw = gw or gateway()
        try:
            result = gw.refund(payment.stripe_payment_intent_id, amount,
                               {"payment_id": str(payment.id), "order_id": str(order.id)})
        except GatewayError:
            session.rollback()
            raise
        refund.stripe_refund_id = result.get("id")
    ledger.refunded(session, order, amount)
    workflow.record_event(session, order, "refund", actor,
                          note=f"Refunded {format_amount(amount, order.currency)}"
                               + (f": {reason.strip()}" if reason.strip() else ""))
    notify_organisation(session, order.buyer, "order_refund",
                        f"Order {order.number}: {format_amount(amount, order.currency)} refunded",
                        reason.strip() or "A refund was issued on your order.",
                        workflow.order_link(order, "buyer"))
    session.flush()
    return refund


@dataclass
class StaffRefund:
    """What a staff refund gave back: ``cash`` to the buyer and ``voucher`` value to the
    innovation voucher, both recorded on one ``refund`` row."""

    cash: int
    voucher: int
    refund: Refund

    @property
    def total(self) -> int:
        return self.cash + self.voucher


ALREADY_REFUNDED = ("This refund form was already submitted (a double click?): the refund "
                    "was issued once and nothing more was refunded. Reload the order to see "
                    "it; to refund more, fill in the form again.")


def _add_refund(session: Session, refund: Refund) -> None:
    """Insert a refund row now; a form token already used is refused (UNIQUE index)."""
    session.add(refund)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise PaymentError(ALREADY_REFUNDED) from None


def staff_refund(session: Session, order: Order, staff: User, amount: int, reason: str,
                 gw: StripeGateway | None = None, form_token: str | None = None
                 ) -> StaffRefund:
    """A refund after capture, decided by staff on a completed or resolved order.

    ``amount`` is order value given back. It is split between the buyer's cash and the
    innovation voucher in proportion to the voucher's share of the price
    (orders.money.refund_split, on the totals given back so far), so the voucher never pays
    more than its share of what the order keeps.

    ``form_token`` is the refund form's one-time token: a second submission of the same
    form raises PaymentError and refunds nothing. Caller commits."""
    if workflow.role_of(order, staff) != "staff":
        raise workflow.NotAllowed("Only platform staff can issue refunds.")
    if order.status not in ("completed", "resolved"):
        raise workflow.WrongState("Refunds after capture are issued on completed or resolved "
                                  "orders; open orders are cancelled or ruled on instead.")
    if not reason.strip():
        raise PaymentError("Give the reason for the refund.", status=400)
    if amount <= 0:
        raise PaymentError("Enter an amount to refund.", status=400)
    if form_token and session.scalar(select(Refund.id).where(Refund.form_token == form_token)):
        raise PaymentError(ALREADY_REFUNDED)
    session.refresh(order)
    captured = [p for p in order.payments if p.status == "captured"]
    redemption = vouchers.redemption_for(session, order.id)
    cash_kept = sum(p.refundable for p in captured)
    voucher_kept = redemption.net if redemption is not None else 0
    if cash_kept + voucher_kept <= 0:
        raise PaymentError("Nothing was captured on this order, so there is nothing to refund.",
                           status=400)
    if amount > cash_kept + voucher_kept:
        raise PaymentError(
            f"Refused: at most {format_amount(cash_kept + voucher_kept, order.currency)} of "
            "this order can still be refunded (refunds never exceed what was paid).",
            status=400)
    back_after = order.subtotal - (cash_kept + voucher_kept) + amount
    _cash_total, voucher_total = refund_split(min(back_after, order.subtotal), order.subtotal,
                                              order.voucher_amount)
    voucher_part = min(amount, max(0, voucher_kept - (order.voucher_amount - voucher_total)))
    cash_part = min(amount - voucher_part, cash_kept)
    voucher_part = amount - cash_part  # <= voucher_kept, since amount <= everything kept
    payment = None
    if cash_part:
        payment = next(p for p in reversed(captured) if p.refundable >= cash_part)
        refund = refund_payment(session, payment, cash_part, staff, reason, gw, form_token)
        refund.voucher_amount = voucher_part
    else:  # the voucher takes all of it: one row all the same (and the form's token)
        refund = Refund(payment_id=None, order_id=order.id, amount=0,
                        voucher_amount=voucher_part, reason=reason.strip(),
                        created_by_id=staff.id, form_token=form_token, status="succeeded")
        _add_refund(session, refund)
    if voucher_part:
        _give_back_voucher(session, order, redemption, voucher_part, staff)
    audit.record(session, staff, "order.refund", order, reason.strip(), number=order.number,
                 amount=amount, cash=cash_part, voucher=voucher_part,
                 payment_id=getattr(payment, "id", None))
    session.flush()
    return StaffRefund(cash=cash_part, voucher=voucher_part, refund=refund)


# --------------------------------------------------------------------------- money follows state

def targets(order: Order) -> tuple[int, int, bool] | None:
    """(cash kept, voucher value kept, recognise?) for a closed order; None while open."""
    if order.status in ("cancelled", "declined"):
        return 0, 0, False
    if order.status in ("completed", "settled"):
        return order.amount_due, order.voucher_amount, True
    if order.status == "resolved":
        back = min(order.ruling_refund or 0, order.subtotal)
        cash_back, voucher_back = refund_split(back, order.subtotal, order.voucher_amount)
        return order.amount_due - cash_back, order.voucher_amount - voucher_back, True
    return None


def sync_money(session: Session, order: Order, gw: StripeGateway | None = None) -> list[str]:
    """Make the money match the order's state; idempotent. Returns what was done.

    Cancelled/declined: holds released, unfinished attempts cancelled, received money
    refunded, voucher value given back. Completed: holds captured, the order's value
    recognised (platform fee and provider payable). Resolved: the staff ruling applied
    (partial capture or refund, voucher share given back), the rest recognised.
    Settled: the provider's payable paid out. Commits after each Stripe call.
    """
    wanted = targets(order)
    done: list[str] = []
    if wanted is None:
        return done
    keep_cash, keep_voucher, recognise = wanted
    session.refresh(order)
    for payment in list(order.payments):
        if payment.method == "card":
            done += _sync_card(session, payment, keep_cash, gw)
        elif payment.method == "bank_transfer":
            if payment.status == "pending" and _move(session, payment, ("pending",), "canceled"):
                done.append("transfer_cancelled")
            elif payment.status == "captured":
                excess = payment.amount_captured - payment.amount_refunded - keep_cash
                if excess > 0:
                    refund_payment(session, payment, excess, None,
                                   "Returned by bank transfer after the order closed")
                    done.append("transfer_refund")
    redemption = vouchers.redemption_for(session, order.id)
    if redemption is not None:
        excess = redemption.net - keep_voucher
        if excess > 0 and _give_back_voucher(session, order, redemption, excess,
                                             workflow.SYSTEM):
            done.append("voucher_returned")
    session.refresh(order)
    holds_left = any(p.status in ("held", "pending", "requires_action") for p in order.payments)
    received = sum(p.amount_captured for p in order.payments if p.status == "captured")
    if recognise and not holds_left and received < keep_cash:
        # The hold was released before it could be captured (the order completed while
        # Stripe was unreachable): no revenue for money never received, staff are told.
        if _payment_missing(session, order, keep_cash - received):
            done.append("payment_missing")
    elif recognise and not holds_left and ledger.balances(session, order.id)["escrow"] < 0:
        ledger.recognise(session, order)
        done.append("recognised")
    if order.status == "settled" and ledger.balances(session, order.id)["provider_payable"] < 0:
        ledger.payout(session, order)
        done.append("paid_out")
    session.flush()
    return done


def _payment_missing(session: Session, order: Order, missing: int) -> bool:
    """Tell staff once that a closed order's money was never received. True if told now."""
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == order.id,
                                                  OrderEvent.name == "payment_missing")):
        return False
    note = (f"{format_amount(missing, order.currency)} of this order was never captured: the "
            "card hold was released before the capture. Nothing is recognised or paid out "
            "until staff settle it with the buyer.")
    workflow.record_event(session, order, "payment_missing", workflow.SYSTEM, note=note)
    staff = session.scalars(select(User).where(User.role.in_(("staff", "admin")),
                                               User.active.is_(True))).all()
    for user in staff:
        notify(session, user, "order_payment_missing",
               f"Order {order.number}: payment missing", note, workflow.order_link(order, "staff"))
    return True


def _give_back_voucher(session: Session, order: Order, redemption, amount: int,
                       actor: User | None) -> int:
    """Return up to ``amount`` to the order's voucher (and its programme's budget) and post
    the reversal; returns what was given back."""
    given = vouchers.give_back(session, redemption, amount)
    receivable = ledger.balances(session, order.id)["voucher_receivable"]
    if min(given, receivable) > 0:
        ledger.voucher_returned(session, order, min(given, receivable))
    if given:
        workflow.record_event(session, order, "voucher_returned", actor,
                              note=f"{format_amount(given, order.currency)} returned to the "
                                   "innovation voucher.")
    return given


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
