"""What people do to orders: accept, decline, work, deliver, accept delivery, dispute, rule,
cancel, settle; milestones, progress updates and messages.

Every status change goes through orders.workflow.transition(). Actions that move money
commit the transition first and then let orders.payments.sync_money bring the money in line;
if Stripe cannot be reached the order keeps its new state, the money step is retried by
``run-order-timers``, and the caller gets a warning to show.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.models import Product
from catalog.search import outbox as search_outbox
from marketplace import audit
from marketplace.database import utcnow
from marketplace.models import User
from marketplace.notifications import notify_organisation
from orders import payments, states, workflow
from orders import timeline as order_timeline
from orders.models import Milestone, Order, OrderEvent, OrderMessage, ProgressUpdate
from orders.money import format_amount
from orders.stripe_gateway import GatewayError, StripeGateway

log = logging.getLogger(__name__)

RULINGS = {"full": "Full refund", "partial": "Partial refund", "none": "No refund"}


class OrderError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Outcome:
    """What an action did, for the flash message."""

    event: OrderEvent | None = None
    money: list[str] = field(default_factory=list)
    warning: str | None = None


def load(session: Session, order_id: int) -> Order | None:
    return session.scalar(
        select(Order).where(Order.id == order_id)
        .options(joinedload(Order.buyer), joinedload(Order.provider),
                 selectinload(Order.lines), selectinload(Order.payments),
                 selectinload(Order.milestones), selectinload(Order.progress_updates)
                 .selectinload(ProgressUpdate.files))
    )


def settle_money(session: Session, order: Order, gw: StripeGateway | None = None) -> Outcome:
    """Commit what is done, then move the money; a Stripe failure becomes a warning."""
    session.commit()
    try:
        done = payments.sync_money(session, order, gw)
        session.commit()
        return Outcome(money=done)
    except (GatewayError, payments.PaymentError) as exc:
        session.rollback()
        log.warning("money for order %s left for the timer job: %s", order.number, exc)
        workflow.record_event(session, order, "money_pending", workflow.SYSTEM,
                              note=order_timeline.note("money_pending"))
        session.commit()
        return Outcome(warning=_("The order was updated, but the payment service did not "
                                 "answer. The money will be moved automatically in a few "
                                 "minutes."))


def _fire(session: Session, order: Order, name: str, actor: User | None, note: str = "",
          now: datetime | None = None, changes: dict | None = None,
          gw: StripeGateway | None = None, money: bool = False) -> Outcome:
    event = workflow.transition(session, order, name, actor, note=note, now=now, changes=changes)
    if not money:
        session.commit()
        return Outcome(event=event)
    outcome = settle_money(session, order, gw)
    outcome.event = event
    return outcome


# --------------------------------------------------------------------------- provider

def accept(session: Session, order: Order, actor: User, note: str = "",
           now: datetime | None = None, gw: StripeGateway | None = None) -> Outcome:
    """The institution accepts: the buyer's card hold is captured first (issue 13), so from
    now on the money is held by the platform in escrow. A capture that fails leaves the
    order paid (``payments.CaptureFailed``); a hold the bank already released sends it back
    to awaiting payment (``payments.HoldLapsed``). If the order changed meanwhile (the buyer
    cancelled a moment before), the money follows its new state."""
    workflow.check(order, "accept", actor, note)
    now = now or utcnow()
    changes = {}
    if order.due_at is None:
        days = max([line.delivery_days or 0 for line in order.lines] or [0]) or 14
        changes["due_at"] = now + timedelta(days=days)
    money = payments.capture_for_acceptance(session, order, gw)
    try:
        outcome = _fire(session, order, "accept", actor, note, now, changes)
    except workflow.WrongState:
        session.rollback()
        session.refresh(order)
        settle_money(session, order, gw)  # e.g. cancelled meanwhile: the capture goes back
        raise
    outcome.money = money
    return outcome


def decline(session: Session, order: Order, actor: User | None, reason: str,
            now: datetime | None = None, gw: StripeGateway | None = None) -> Outcome:
    return _fire(session, order, "decline", actor, reason, now,
                 {"decline_reason": reason.strip() or None}, gw, money=True)


def start(session: Session, order: Order, actor: User, note: str = "") -> Outcome:
    return _fire(session, order, "start", actor, note)


def start_work_if_accepted(session: Session, order: Order, actor: User) -> None:
    """The institution's first progress or milestone starts the work (accepted -> in
    progress)."""
    if order.status == "accepted":
        workflow.transition(session, order, "start", actor)


def add_milestone(session: Session, order: Order, actor: User, title: str, share_bp: int,
                  due_date: date | None) -> Milestone:
    require_provider_working(order, actor)
    title = title.strip()
    if not title:
        raise OrderError(_("Give the milestone a title."))
    used = sum(m.share_bp for m in order.milestones)
    if share_bp <= 0 or used + share_bp > 10_000:
        left = f"{(10_000 - used) / 100:g}"
        raise OrderError(_("Milestone shares add up to at most 100%% (%(left)s%% left).",
                           left=left))
    milestone = Milestone(order_id=order.id, position=len(order.milestones), title=title[:200],
                          share_bp=share_bp, due_date=due_date)
    session.add(milestone)
    workflow.record_event(session, order, "milestone_added", actor, note=order_timeline.note(
        "milestone_added_due" if due_date else "milestone_added", title=title,
        share=f"{share_bp / 100:g}", **({"due_date": due_date} if due_date else {})))
    session.flush()
    session.refresh(order)
    return milestone


# --------------------------------------------------------------------------- milestones
# Submitting, approving and sending back milestones (money released from escrow) live in
# orders/milestones.py; these are what the order's own transitions do to them.

def _milestone(order: Order, milestone_id: int) -> Milestone:
    milestone = next((m for m in order.milestones if m.id == milestone_id), None)
    if milestone is None:
        raise OrderError(_("No such milestone on this order."), status=404)
    return milestone


def _check_disputable(order: Order, milestone_id: int | None) -> None:
    if milestone_id is not None and \
            _milestone(order, milestone_id).status not in states.MILESTONE_DISPUTABLE:
        raise OrderError(_("This milestone cannot be disputed now (it was approved, or is "
                           "disputed already)."), status=409)


def milestone_disputed(session: Session, order: Order, milestone_id: int | None) -> None:
    """A dispute opened naming a milestone: the milestone is held for the ruling
    (conditional UPDATE: an approval that came first wins)."""
    if milestone_id is None:
        return
    milestone = _milestone(order, milestone_id)
    session.flush()
    result = session.execute(
        update(Milestone).where(Milestone.id == milestone.id,
                                Milestone.status.in_(states.MILESTONE_DISPUTABLE))
        .values(status="disputed").execution_options(synchronize_session=False))
    session.refresh(milestone)
    if result.rowcount != 1:
        raise OrderError(_("This milestone cannot be disputed now (it was approved, or is "
                           "disputed already)."), status=409)


def milestones_ruled(session: Session, order: Order) -> None:
    session.execute(update(Milestone).where(Milestone.order_id == order.id,
                                            Milestone.status == "disputed")
                    .values(status="ruled").execution_options(synchronize_session=False))


def milestones_completed(session: Session, order: Order, now: datetime) -> None:
    """The buyer accepted the delivery: milestones not yet approved are approved with it
    (the completion releases the rest of escrow)."""
    session.execute(update(Milestone).where(
        Milestone.order_id == order.id,
        Milestone.status.in_(("pending", "submitted", "changes_requested")))
        .values(status="approved", approved_by="completion", decided_at=now)
        .execution_options(synchronize_session=False))


def require_provider_working(order: Order, actor: User) -> None:
    """Only the order's institution, and only while the work is on (states.PROVIDER_WORKING)."""
    if workflow.role_of(order, actor) != "provider":
        raise workflow.NotAllowed(_("Only the institution handling this order can do that."))
    if order.status not in states.PROVIDER_WORKING:
        raise workflow.WrongState(_("Milestones and progress are posted while the work is "
                                    "accepted or in progress."))


def post_progress(session: Session, order: Order, actor: User, percent: int,
                  note: str) -> ProgressUpdate:
    require_provider_working(order, actor)
    if not 0 <= percent <= 100:
        raise OrderError(_("Progress is a percentage from 0 to 100."))
    if not note.strip():
        raise OrderError(_("Say what was done."))
    start_work_if_accepted(session, order, actor)
    update_ = ProgressUpdate(order_id=order.id, author_id=actor.id, percent=percent,
                             note=note.strip())
    session.add(update_)
    workflow.record_event(session, order, "progress", actor, note=f"{percent}% — {note.strip()}")
    notify_organisation(session, order.buyer, "order_progress",
                        lambda: _("Order %(number)s: %(percent)d%% done", number=order.number,
                                  percent=percent), note.strip(),
                        workflow.order_link(order, "buyer"))
    session.flush()
    return update_


def deliver(session: Session, order: Order, actor: User, note: str,
            now: datetime | None = None) -> tuple[Outcome, ProgressUpdate]:
    """Record the delivery (note and files go on a 100% update) and fire ``deliver``.
    The caller attaches files to the returned update before committing."""
    workflow.check(order, "deliver", actor)
    if not note.strip():
        raise OrderError(_("Describe what you deliver."))
    delivery = ProgressUpdate(order_id=order.id, author_id=actor.id, percent=100,
                              note=note.strip(), is_delivery=True)
    session.add(delivery)
    session.flush()
    event = workflow.transition(session, order, "deliver", actor, note=note, now=now)
    return Outcome(event=event), delivery


# --------------------------------------------------------------------------- buyer

def request_revision(session: Session, order: Order, actor: User, note: str) -> Outcome:
    return _fire(session, order, "request_revision", actor, note,
                 changes={"delivered_at": None})


def complete(session: Session, order: Order, actor: User | None, note: str = "",
             now: datetime | None = None, gw: StripeGateway | None = None) -> Outcome:
    """Accept the delivery: capture the held money and recognise it. Stripe is asked first
    whether the hold is still there; if it was released the order goes back to awaiting
    payment and ``payments.HoldLapsed`` is raised instead."""
    workflow.check(order, "complete", actor, note)
    payments.confirm_hold(session, order, gw)
    now = now or utcnow()
    milestones_completed(session, order, now)  # the completion releases the rest
    outcome = _fire(session, order, "complete", actor, note, now, gw=gw, money=True)
    if order.product_id:
        session.execute(update(Product).where(Product.id == order.product_id)
                        .values(sales_count=Product.sales_count + 1,
                                updated_at=Product.updated_at)
                        .execution_options(synchronize_session=False))
        search_outbox.enqueue(session, order.product_id, "sold")  # "best selling" sort
        session.commit()
    return outcome


def dispute(session: Session, order: Order, actor: User, reason: str,
            milestone_id: int | None = None) -> Outcome:
    """The buyer opens a dispute, on the order or on one of its milestones (held until the
    ruling; milestones already approved keep their released money)."""
    workflow.check(order, "dispute", actor, reason)
    _check_disputable(order, milestone_id)
    event = workflow.transition(session, order, "dispute", actor, note=reason)
    milestone_disputed(session, order, milestone_id)
    session.commit()
    return Outcome(event=event)


# --------------------------------------------------------------------------- staff / both

def resolve(session: Session, order: Order, staff: User, ruling: str, refund: int | None,
            note: str, gw: StripeGateway | None = None) -> Outcome:
    """Staff ruling: full refund, partial refund (an amount), or no refund. Like
    ``complete`` it first asks Stripe whether the card hold is still there
    (``payments.HoldLapsed`` if not: the order is back to awaiting payment)."""
    from orders import ledger

    if ruling not in RULINGS:
        raise OrderError(_("Choose a ruling."))
    # A ruling splits only what is still held: milestones already approved were released to
    # the institution (only a staff clawback takes such money back).
    held = order.subtotal - ledger.released_total(session, order.id)
    if ruling == "full":
        refund = held
    elif ruling == "none":
        refund = 0
    elif refund is None or not 0 < refund < held:
        if held < order.subtotal:
            raise OrderError(_("A partial refund is more than zero and less than what is "
                               "still held for this order (%(value)s; approved milestones "
                               "were released to the institution).",
                               value=format_amount(held, order.currency)))
        raise OrderError(_("A partial refund is more than zero and less than the order value "
                           "(%(value)s).", value=format_amount(order.subtotal, order.currency)))
    note = note.strip()
    workflow.check(order, "resolve", staff, f"{RULINGS[ruling]}. {note}")
    payments.confirm_hold(session, order, gw)  # no ruling on money that is gone
    audit.record(session, staff, "order.resolve", order, note or None, number=order.number,
                 ruling=ruling, refund=refund)
    summary = f"{RULINGS[ruling]}"
    if ruling == "partial":
        summary += f": {format_amount(refund, order.currency)} back to the buyer"
    milestones_ruled(session, order)
    return _fire(session, order, "resolve", staff, f"{summary}. {note}" if note else "",
                 changes={"ruling": ruling, "ruling_refund": refund}, gw=gw, money=True)


def cancel(session: Session, order: Order, actor: User | None, reason: str = "",
           now: datetime | None = None, gw: StripeGateway | None = None) -> Outcome:
    if workflow.role_of(order, actor) == "staff":  # staff decisions are audited
        audit.record(session, actor, "order.cancel", order, reason.strip() or None,
                     number=order.number, from_status=order.status,
                     amount_due=order.amount_due)
    return _fire(session, order, "cancel", actor, reason, now, gw=gw, money=True)


def settle(session: Session, order: Order, actor: User | None, note: str = "") -> Outcome:
    return _fire(session, order, "settle", actor, note, money=True)


# --------------------------------------------------------------------------- messages

def post_message(session: Session, order: Order, actor: User, body: str) -> OrderMessage:
    role = workflow.role_of(order, actor)
    if role not in ("buyer", "provider"):
        raise workflow.NotAllowed(_("The message thread is between the buyer and the "
                                    "institution; staff can read it."))
    body = body.strip()
    if not body:
        raise OrderError(_("Write a message first."))
    if len(body) > 5000:
        raise OrderError(_("Messages are at most 5,000 characters."))
    message = OrderMessage(order_id=order.id, author_id=actor.id, author_role=role, body=body)
    session.add(message)
    other = order.provider if role == "buyer" else order.buyer
    notify_organisation(session, other, "order_message",
                        lambda: _("Order %(number)s: new message from the buyer",
                                  number=order.number) if role == "buyer"
                        else _("Order %(number)s: new message from the institution",
                               number=order.number),
                        body[:300], workflow.order_link(order, "provider" if role == "buyer"
                                                        else "buyer"))
    session.flush()
    return message


def messages(session: Session, order_id: int) -> list[OrderMessage]:
    return list(session.scalars(select(OrderMessage).where(OrderMessage.order_id == order_id)
                                .options(selectinload(OrderMessage.files),
                                         joinedload(OrderMessage.author))
                                .order_by(OrderMessage.id)).unique())


def timeline(session: Session, order_id: int) -> list[OrderEvent]:
    return list(session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                .options(joinedload(OrderEvent.actor))
                                .order_by(OrderEvent.created_at, OrderEvent.id)).unique())


def open_order_count(session: Session, provider_org_id: int) -> int:
    return session.scalar(select(func.count(Order.id)).where(
        Order.provider_org_id == provider_org_id, Order.status.in_(("paid",)))) or 0
