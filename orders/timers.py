"""Order timers, run by cron through ``flask --app marketplace run-order-timers``.

- a paid order not accepted by its ``accept_by`` time is declined by the platform (money
  released);
- a delivered order the buyer has not answered within AUTO_COMPLETE_DAYS completes by itself
  (money captured);
- an order still awaiting payment after its ``payment_due_at`` is cancelled (voucher value
  given back);
- quote requests and quotes expire;
- reviews whose double-blind window has passed are published (catalog.reviews);
- card holds of open orders older than HOLD_CHECK_AFTER_DAYS are looked up at Stripe (real
  Stripe releases an uncaptured hold after about seven days): a released one puts its order
  back to awaiting payment, in case the webhook never arrived;
- closed orders whose money is not yet where their state says (Stripe was unreachable, a
  process died) are brought in line again;
- milestones that deviate from the plan (past due without a submission, or due soon with
  the work behind it) are announced to buyer, institution and staff, once per deviation
  (orders/alerts.py).
- submitted milestones: the buyer is told NOTICE_DAYS_BEFORE days before the timer approves
  one (once), and a milestone unanswered for MILESTONE_AUTO_APPROVE_DAYS is approved (its
  share released from escrow; orders/milestones.py).

``now`` is passed in, so tests run the timers with a frozen clock. Each order is its own
transaction: one failure does not stop the others.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog import reviews
from orders import alerts, milestones, payments, quotes, services, states, workflow
from orders.models import LedgerEntry, Milestone, Order, Payment
from orders.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

DEFAULT_AUTO_COMPLETE_DAYS = 7
HOLD_CHECK_AFTER_DAYS = 6
UNANSWERED_AFTER_MINUTES = 2


@dataclass
class TimerReport:
    declined: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    lapsed: list[str] = field(default_factory=list)
    milestone_notices: int = 0
    milestones_approved: list[str] = field(default_factory=list)
    expired_requests: int = 0
    expired_quotes: int = 0
    reviews_published: int = 0
    milestone_alerts: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.declined)} declined (not accepted in time), "
                f"{len(self.completed)} completed automatically, "
                f"{len(self.cancelled)} cancelled (unpaid), {len(self.repaired)} money repaired, "
                f"{len(self.lapsed)} card holds found released, "
                f"{len(self.milestones_approved)} milestones approved automatically "
                f"({self.milestone_notices} notices sent), "
                f"{self.expired_requests} quote requests and {self.expired_quotes} quotes "
                f"expired, {self.reviews_published} reviews published (blind window over), "
                f"{self.milestone_alerts} milestone deviation alerts, "
                f"{len(self.errors)} errors")


def run(session: Session, now: datetime, auto_complete_days: int = DEFAULT_AUTO_COMPLETE_DAYS,
        gw: StripeGateway | None = None, progress=None,
        warning_days: int | None = None, milestone_days: int | None = None) -> TimerReport:
    """``progress(items, label)`` wraps each batch (marketplace.jobs: a progress bar);
    ``warning_days`` is the SLA warning window (SLA_WARNING_DAYS) of the milestone alerts;
    ``milestone_days``: MILESTONE_AUTO_APPROVE_DAYS unless given."""
    report = TimerReport()
    if milestone_days is None:
        milestone_days = milestones.auto_approve_days()

    def tracked(items, label: str):
        return progress(items, label) if progress is not None else items

    def each(stmt, action, bucket: list[str], label: str):
        for order_id in tracked(session.scalars(stmt).all(), label):
            order = session.get(Order, order_id)
            try:
                action(order)
                bucket.append(order.number)
            except (workflow.WorkflowError, payments.HoldLapsed):
                session.rollback()  # someone acted on it meanwhile, or it needs paying again
            except Exception as exc:  # noqa: BLE001 - keep going, report it
                session.rollback()
                log.exception("%s failed for order %s", label, order_id)
                report.errors.append(f"{label} {order.number}: {exc}")

    each(select(Order.id).where(Order.status == "paid", Order.accept_by < now),
         lambda order: services.decline(
             session, order, workflow.SYSTEM,
             _("Not accepted in time; the platform declined the order and released the money."),
             now=now, gw=gw),
         report.declined, "auto-decline")
    each(select(Order.id).where(Order.status == "delivered",
                                Order.delivered_at < now - timedelta(days=auto_complete_days)),
         lambda order: services.complete(
             session, order, workflow.SYSTEM,
             _("No answer from the buyer within %(days)d days of delivery; completed "
               "automatically.", days=auto_complete_days), now=now, gw=gw),
         report.completed, "auto-complete")
    each(select(Order.id).where(Order.status == "pending_payment",
                                Order.payment_due_at < now),
         lambda order: _cancel_unpaid(session, order, now, gw),
         report.cancelled, "cancel-unpaid")

    for milestone_id in tracked(milestones.due_for_notice(session, now, milestone_days),
                                "milestone notice"):
        try:
            if milestones.send_notice(session, milestone_id, now, milestone_days):
                report.milestone_notices += 1
            session.commit()
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.exception("milestone notice failed for milestone %s", milestone_id)
            report.errors.append(f"milestone notice {milestone_id}: {exc}")
    for milestone_id in tracked(milestones.due_for_approval(session, now, milestone_days),
                                "milestone auto-approve"):
        milestone = session.get(Milestone, milestone_id)
        order = milestone.order
        try:
            milestones.approve(session, order, workflow.SYSTEM, milestone_id, now=now,
                               by="timer")
            session.commit()
            report.milestones_approved.append(f"{order.number}/{milestone.position + 1}")
        except (workflow.WorkflowError, services.OrderError):
            session.rollback()  # answered or disputed a moment ago: the buyer's act wins
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.exception("milestone auto-approve failed for milestone %s", milestone_id)
            report.errors.append(f"milestone {order.number}: {exc}")

    expired = quotes.expire(session, now)
    session.commit()
    report.expired_requests, report.expired_quotes = expired.requests, expired.quotes
    report.reviews_published = reviews.publish_due_reviews(session, now)
    session.commit()

    for payment_id in tracked(_old_holds(session, now), "hold check"):
        payment = session.get(Payment, payment_id)
        try:
            payments.get(payment.method).confirm(session, payment, gw=gw)
            session.commit()
            if payment.status == "released":
                report.lapsed.append(payment.order.number)
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.exception("hold check failed for payment %s", payment_id)
            report.errors.append(f"hold check {payment.order.number}: {exc}")

    # Card attempts whose answer never came back (Stripe hung, or the database went away
    # between Stripe's confirm and our commit): ask Stripe, so an authorisation that did
    # happen pays its order now, not at the payment deadline (issue 16).
    for payment_id in tracked(_unanswered_attempts(session, now), "attempt check"):
        payment = session.get(Payment, payment_id)
        try:
            payments.refresh_from_stripe(session, payment, gw)
            session.commit()
            if payment.status == "held":
                report.repaired.append(payment.order.number)
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.warning("attempt check failed for payment %s: %s", payment_id, exc)

    for order_id in tracked(alerts.deviating_orders(session, now, warning_days),
                            "milestone alerts"):
        order = session.get(Order, order_id)
        try:
            report.milestone_alerts += len(alerts.alert_order(session, order, now,
                                                              warning_days))
            session.commit()
        except IntegrityError:
            session.rollback()  # a concurrent run announced them first
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.exception("milestone alerts failed for order %s", order_id)
            report.errors.append(f"milestone alerts {order_id}: {exc}")

    for order in tracked(_money_out_of_line(session), "money repair"):
        try:
            if payments.sync_money(session, order, gw):
                report.repaired.append(order.number)
            session.commit()
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.exception("money repair failed for order %s", order.number)
            report.errors.append(f"repair {order.number}: {exc}")
    return report


def _cancel_unpaid(session: Session, order: Order, now: datetime, gw) -> None:
    # A card authorised a moment ago (webhook not yet in) must not be cancelled blindly.
    live = order.live_payment
    if live is not None and payments.get(live.method).asks_provider:
        payments.get(live.method).confirm(session, live, gw=gw)
        session.commit()
        session.refresh(order)
        if order.status != "pending_payment":
            return
    services.cancel(session, order, workflow.SYSTEM,
                    _("Not paid in time; the order was cancelled."), now=now, gw=gw)


def _old_holds(session: Session, now: datetime) -> list[int]:
    """Card holds of open orders authorised long enough ago that Stripe may release them
    (before acceptance; and holds of orders accepted before capture-on-acceptance, until
    ``capture-accepted-holds`` has run)."""
    return list(session.scalars(
        select(Payment.id).join(Order).where(
            Order.status.in_(states.OPEN), Payment.method.in_(payments.names(holds_money=True)),
            Payment.status == "held",
            Payment.authorised_at < now - timedelta(days=HOLD_CHECK_AFTER_DAYS))
        .order_by(Payment.id)).all())


def _unanswered_attempts(session: Session, now: datetime) -> list[int]:
    """Card attempts with a PaymentIntent, still unresolved a few minutes later."""
    return list(session.scalars(
        select(Payment.id).join(Order).where(
            Order.status == "pending_payment", Payment.method == "card",
            Payment.status.in_(("pending", "requires_action")),
            Payment.stripe_payment_intent_id.is_not(None),
            Payment.created_at < now - timedelta(minutes=UNANSWERED_AFTER_MINUTES))
        .order_by(Payment.id)).all())


def _money_out_of_line(session: Session) -> list[Order]:
    """Closed orders whose money is not settled in our records: an attempt or hold still
    open, escrow or held funds left on the ledger, or a settled order not paid out."""
    closed = states.CLOSED
    stuck = set(session.scalars(
        select(Payment.order_id).join(Order).where(
            Order.status.in_(closed),
            Payment.status.in_(("pending", "requires_action", "held")))).all())
    unbalanced = select(LedgerEntry.order_id).join(Order, Order.id == LedgerEntry.order_id).where(
        Order.status.in_(closed),
        or_(LedgerEntry.account.in_(("escrow", "buyer_funds_held")),
            and_(Order.status == "settled", LedgerEntry.account == "provider_payable"))
    ).group_by(LedgerEntry.order_id, LedgerEntry.account).having(func.sum(LedgerEntry.amount) != 0)
    stuck |= set(session.scalars(unbalanced).all())
    return [session.get(Order, order_id) for order_id in sorted(stuck)]
