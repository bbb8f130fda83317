"""The bookkeeping every payment method shares: payment status moves, the order becoming
paid, refunds (reserved before the method sends them), staff refunds split between cash and
voucher, and the money that follows an order's state (``sync_money``), which asks each
payment's method (orders.payments.base) to capture, release or refund.

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
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from marketplace import audit, permissions
from marketplace.database import utcnow
from marketplace.models import User
from marketplace.notifications import notify, notify_organisation
from orders import ledger, timeline, vouchers, workflow
from orders.models import (
    Order,
    OrderEvent,
    Payment,
    Refund,
    SettlementItem,
    SettlementStatement,
)
from orders.money import format_amount, refund_split
from orders.payments.base import get

log = logging.getLogger(__name__)

DEFAULT_ACCEPT_WITHIN_HOURS = 72
# A card hold lives about seven days at the bank; the acceptance window (whose end the timer
# declines the order at) never runs longer than this, so a hold is captured or released
# before the bank lets it go (issue 13).
MAX_ACCEPT_WITHIN_HOURS = 6 * 24


class PaymentError(Exception):
    """A payment action refused; ``status`` is the HTTP status for views."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


class HoldLapsed(PaymentError):
    """The order's card hold was released at Stripe before it was captured: the order went
    back to awaiting payment (already committed) and cannot complete."""


class CaptureFailed(PaymentError):
    """The institution's acceptance could not capture the card (Stripe refused or did not
    answer): nothing changed, the order is still paid and awaiting acceptance."""


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


# --------------------------------------------------------------------------- order paid

def order_paid(session: Session, order: Order, actor: User | None = workflow.SYSTEM,
               now: datetime | None = None) -> bool:
    """The money for ``order`` is secured: fire ``pay`` and book the voucher share."""
    now = now or utcnow()
    if order.status != "pending_payment":
        return False
    hours = min(_setting("ACCEPT_WITHIN_HOURS", DEFAULT_ACCEPT_WITHIN_HOURS),
                MAX_ACCEPT_WITHIN_HOURS)
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
            note=timeline.note("hold_lapsed"),
            changes={"payment_due_at": now + timedelta(days=days), "accept_by": None,
                     "paid_at": None})
    except workflow.WrongState:
        session.refresh(order)


# --------------------------------------------------------------------------- starting an attempt

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
        raise PaymentError(_("Another payment attempt for this order started a moment ago. "
                             "Reload the order page to see where it stands."))
    set_committed_value(order, "version", order.version + 1)


# --------------------------------------------------------------------------- before capture

def confirm_hold(session: Session, order: Order, gw=None) -> None:
    """Before the buyer's acceptance captures the money: is the card hold still there?
    If Stripe released it, the order goes back to awaiting payment (committed) and
    ``HoldLapsed`` is raised. If Stripe cannot be reached the capture will find out
    (``sync_money`` then posts no revenue for money not received)."""
    lapsed = False
    for payment in list(order.payments):
        if payment.status == "held" and not get(payment.method).still_held(session, payment, gw):
            lapsed = True
    if lapsed:
        session.commit()
        raise HoldLapsed(_("The card hold on this order was released by the bank before the "
                           "work was accepted, so nothing can be captured. The buyer must pay "
                           "again before the order can be completed."))


def capture_for_acceptance(session: Session, order: Order, gw=None) -> list[str]:
    """The institution accepts ``order``: its money goes into the platform's escrow before
    the ``accept`` transition (issue 13). Stripe is asked first whether the card hold is
    still there (``HoldLapsed``, the order back to awaiting payment, if not), then the hold
    is captured in full. A capture that fails raises ``CaptureFailed`` and leaves the order
    paid, awaiting acceptance, with a timeline entry; the provider may try again. Bank
    transfers and vouchers are in escrow already. Commits around each Stripe call."""
    confirm_hold(session, order, gw)
    done: list[str] = []
    for payment in list(order.payments):
        if payment.status == "held":
            done += get(payment.method).capture_on_accept(session, payment, gw)
    return done


def capture_failed(session: Session, order: Order, reason: str) -> CaptureFailed:
    """Record a failed capture at acceptance (committed) and return the error to raise."""
    session.rollback()
    workflow.record_event(session, order, "capture_failed", workflow.SYSTEM,
                          note=timeline.note("capture_failed", reason=reason))
    session.commit()
    return CaptureFailed(_("The buyer's card payment could not be captured just now "
                           "(%(reason)s). Nothing changed: the order is still paid and "
                           "awaiting your acceptance. Try again in a few minutes; if the bank "
                           "released the card hold meanwhile, the order goes back to the "
                           "buyer to pay again.", reason=reason))


# --------------------------------------------------------------------------- refunds

def refund_payment(session: Session, payment: Payment, amount: int, actor: User | None,
                   reason: str, gw=None,
                   form_token: str | None = None, clawback: bool = False) -> Refund:
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
    method = get(payment.method)
    refund = Refund(payment_id=payment.id, order_id=order.id, amount=amount,
                    reason=reason.strip(), created_by_id=getattr(actor, "id", None),
                    form_token=form_token,
                    status="succeeded" if method.refunds_at_provider else "pending_transfer")
    _add_refund(session, refund)
    method.refund(session, payment, amount, refund, gw)
    if clawback:  # money already released to the institution (issue 13)
        ledger.clawback(session, order, amount)
    else:
        ledger.refunded(session, order, amount)
    workflow.record_event(session, order, "refund", actor, note=timeline.note(
        "refund_reason", refund_amount=amount, currency=order.currency, reason=reason.strip())
        if reason.strip() else timeline.note("refund", refund_amount=amount,
                                             currency=order.currency))
    notify_organisation(session, order.buyer, "order_refund",
                        lambda: _("Order %(number)s: %(amount)s refunded", number=order.number,
                                  amount=format_amount(amount, order.currency)),
                        lambda: reason.strip() or _("A refund was issued on your order."),
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
                 gw=None, form_token: str | None = None
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
    current = ledger.balances(session, order.id)
    reversible = max(0, -current["escrow"]) + max(
        0, -current["platform_fee_revenue"] - current["provider_payable"])
    if amount > reversible:  # part of it was paid out to the institution already
        raise PaymentError(_("Refused: only %(amount)s of this order is still owed to the "
                             "institution; money already paid out to it is refunded with a "
                             "clawback against its next statement.",
                             amount=format_amount(reversible, order.currency)), status=400)
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


def clawback_limit(session: Session, order: Order, rows=None) -> int:
    """Order value released to the institution (milestone releases, completion, ruling) not
    yet clawed back, capped by the cash that can still be refunded. ``rows``: the order's
    ledger entries, if already read."""
    rows = ledger.entries(session, order.id) if rows is None else rows
    released = sum(e.amount for e in rows
                   if e.account == "escrow" and e.kind in ("milestone_release", "recognise"))
    clawed = sum(-e.amount for e in rows
                 if e.account == "platform_cash" and e.kind == "clawback")
    cash = sum(p.refundable for p in order.payments if p.status == "captured")
    return max(0, min(released - clawed, cash))


def staff_clawback(session: Session, order: Order, staff: User, amount: int, reason: str,
                   gw=None, form_token: str | None = None) -> Refund:
    """Staff refund money already released to the institution (issue 13): the buyer gets
    ``amount`` back from the captured payment (Stripe's Refunds API for cards), and the
    ledger records a ``clawback`` (Dr provider_payable and platform_fee_revenue, Cr platform
    cash) that the institution's next statement deducts. Audited; the institution is told.
    Never more than was released and not clawed back, nor more than the payment can still
    refund. Caller commits."""
    if workflow.role_of(order, staff) != "staff":
        raise workflow.NotAllowed(_("Only platform staff can record a clawback."))
    if not (reason or "").strip():
        raise PaymentError(_("Give the reason for the clawback."), status=400)
    if amount <= 0:
        raise PaymentError(_("Enter an amount to claw back."), status=400)
    if form_token and session.scalar(select(Refund.id).where(Refund.form_token == form_token)):
        raise PaymentError(ALREADY_REFUNDED)
    session.refresh(order)
    limit = clawback_limit(session, order)
    if amount > limit:
        raise PaymentError(_("Refused: at most %(amount)s released to the institution can be "
                             "clawed back on this order.",
                             amount=format_amount(limit, order.currency)), status=400)
    payment = next((p for p in reversed(order.payments)
                    if p.status == "captured" and p.refundable >= amount), None)
    if payment is None:
        raise PaymentError(_("No single payment of this order can refund that much; claw back "
                             "a smaller amount."), status=400)
    refund = refund_payment(session, payment, amount, staff, reason, gw, form_token,
                            clawback=True)
    workflow.record_event(session, order, "clawback", staff, note=timeline.note(
        "clawback", clawback_amount=amount, currency=order.currency, reason=reason.strip()))
    audit.record(session, staff, "order.clawback", order, reason.strip(), number=order.number,
                 amount=amount, payment_id=payment.id)
    notify_organisation(
        session, order.provider, "order_clawback",
        lambda: _("Order %(number)s: %(amount)s clawed back", number=order.number,
                  amount=format_amount(amount, order.currency)),
        lambda: _("Platform staff refunded %(amount)s of money already released to you for "
                  "this order. It is deducted from your next statement. Reason: %(reason)s",
                  amount=format_amount(amount, order.currency), reason=reason.strip()),
        workflow.order_link(order, "provider"))
    session.flush()
    return refund


# --------------------------------------------------------------------------- one-off migration

@dataclass
class HoldMigration:
    """What ``capture_accepted_holds`` did, by order number."""

    captured: list[str]
    repay_needed: list[str]
    failed: list[str]

    def summary(self) -> str:
        return (f"{len(self.captured)} card holds captured into escrow, "
                f"{len(self.repay_needed)} orders whose hold was already gone (buyer asked to "
                f"pay again), {len(self.failed)} left for a later run (Stripe did not answer)")


def accepted_holds(session: Session) -> list[int]:
    """Card payments still only held on orders past acceptance (accepted before
    capture-on-acceptance, issue 13)."""
    from orders import states

    past_acceptance = tuple(s for s in states.OPEN if s in states.WORK_BEGUN)
    return list(session.scalars(
        select(Payment.id).join(Order, Order.id == Payment.order_id)
        .where(Payment.status == "held", Order.status.in_(past_acceptance))
        .order_by(Payment.id)).all())


def capture_accepted_holds(session: Session, gw=None, progress=None) -> HoldMigration:
    """The one-off step of issue 13 (``flask --app marketplace capture-accepted-holds``):
    every order already past acceptance whose card is still only a hold has it captured
    now, so its money is held by the platform like any other; an order whose hold the bank
    already released is marked for the buyer to pay again (``repay_needed``: timeline entry,
    buyer and staff told once). Idempotent: a second run finds nothing to do. Each payment is
    its own transaction (commits)."""
    report = HoldMigration([], [], [])
    ids = accepted_holds(session)
    for payment_id in (progress(ids, "holds") if progress else ids):
        payment = session.get(Payment, payment_id)
        order = payment.order
        try:
            done = get(payment.method).capture_on_accept(session, payment, gw)
            session.commit()
            if done or payment.status == "captured":
                report.captured.append(order.number)
        except HoldLapsed:
            session.commit()
            report.repay_needed.append(order.number)
        except CaptureFailed:
            report.failed.append(order.number)
        session.refresh(payment)
        if payment.status == "released" and order.number not in report.repay_needed:
            report.repay_needed.append(order.number)
    return report


# --------------------------------------------------------------------------- money follows state

def targets(order: Order, released: int = 0) -> tuple[int, int, bool] | None:
    """(cash kept, voucher value kept, recognise?) for a closed order; None while open.

    ``released`` is order value already released to the institution by milestone approvals:
    it is never given back by a cancellation or a ruling (only a staff clawback can), so a
    cancelled order keeps it and a ruling splits only what is still held."""
    released = max(0, min(released, order.subtotal))
    if order.status in ("cancelled", "declined"):
        if not released:
            return 0, 0, False
        cash_back, voucher_back = refund_split(order.subtotal - released, order.subtotal,
                                               order.voucher_amount)
        return order.amount_due - cash_back, order.voucher_amount - voucher_back, False
    if order.status in ("completed", "settled"):
        return order.amount_due, order.voucher_amount, True
    if order.status == "resolved":
        back = min(order.ruling_refund or 0, order.subtotal - released)
        cash_back, voucher_back = refund_split(back, order.subtotal, order.voucher_amount)
        return order.amount_due - cash_back, order.voucher_amount - voucher_back, True
    return None


def sync_money(session: Session, order: Order, gw=None) -> list[str]:
    """Make the money match the order's state; idempotent. Returns what was done.

    Cancelled/declined: holds released, unfinished attempts cancelled, received money
    refunded, voucher value given back. Completed: holds captured, the order's value
    recognised (platform fee and provider payable). Resolved: the staff ruling applied
    (partial capture or refund, voucher share given back), the rest recognised.
    Settled: the provider's payable paid out. Commits after each Stripe call.
    """
    wanted = targets(order, ledger.released_total(session, order.id))
    done: list[str] = []
    if wanted is None:
        return done
    keep_cash, keep_voucher, recognise = wanted
    session.refresh(order)
    for payment in list(order.payments):
        done += get(payment.method).follow_order(session, payment, keep_cash, gw)
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
    if (order.status == "settled" and ledger.balances(session, order.id)["provider_payable"] < 0
            and not _in_unpaid_statement(session, order)):
        ledger.payout(session, order)
        done.append("paid_out")
    session.flush()
    return done


def _in_unpaid_statement(session: Session, order: Order) -> bool:
    """A line of the order (a milestone release, say) waits in a statement not paid yet:
    its payable is paid when that statement is, not by the repair job."""
    return session.scalar(
        select(SettlementItem.id).join(SettlementStatement,
                                       SettlementStatement.id == SettlementItem.statement_id)
        .where(SettlementItem.order_id == order.id, SettlementStatement.paid_at.is_(None))
        .limit(1)) is not None


def _payment_missing(session: Session, order: Order, missing: int) -> bool:
    """Tell staff once that a closed order's money was never received. True if told now."""
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == order.id,
                                                  OrderEvent.name == "payment_missing")):
        return False
    event = workflow.record_event(
        session, order, "payment_missing", workflow.SYSTEM,
        note=timeline.note("payment_missing", missing_amount=missing, currency=order.currency))
    staff = session.scalars(permissions.staff_users()).all()
    for user in staff:  # each in their own language
        notify(session, user, "order_payment_missing",
               lambda: _("Order %(number)s: payment missing", number=order.number),
               lambda: timeline.note_text(event), workflow.order_link(order, "staff"))
    return True


def repay_needed(session: Session, order: Order, amount: int) -> bool:
    """An order past acceptance whose card hold is gone (accepted before capture-on-
    acceptance, issue 13, and released by the bank before ``capture-accepted-holds`` ran):
    the order is not sent back (``lapse`` exists only before acceptance); the buyer and
    staff are told, once, that the buyer must pay again. True if told now."""
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == order.id,
                                                  OrderEvent.name == "repay_needed")):
        return False
    money = format_amount(amount, order.currency)
    workflow.record_event(session, order, "repay_needed", workflow.SYSTEM, note=timeline.note(
        "repay_needed", hold_amount=amount, currency=order.currency))
    notify_organisation(
        session, order.buyer, "order_repay_needed",
        lambda: _("Order %(number)s: please pay again", number=order.number),
        lambda: _("The bank released the hold on your card (%(amount)s) before the platform "
                  "captured it, so nothing was charged. Platform staff will contact you to "
                  "pay again so the work can go on.", amount=money),
        workflow.order_link(order, "buyer"))
    for user in session.scalars(permissions.staff_users()).all():
        notify(session, user, "order_repay_needed",
               lambda: _("Order %(number)s: card hold released after acceptance",
                         number=order.number),
               lambda: _("%(amount)s was never captured; the buyer was asked to pay again.",
                         amount=money),
               workflow.order_link(order, "staff"))
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
        workflow.record_event(session, order, "voucher_returned", actor, note=timeline.note(
            "voucher_returned", returned_amount=given, currency=order.currency))
    return given


