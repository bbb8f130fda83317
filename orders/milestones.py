"""Milestones that move money (issue 13): the institution submits a milestone (note, files),
the buyer approves it or asks for changes (with a reason), and the approval releases the
milestone's share of the order value from escrow to the institution (ledger posting
``milestone_release``: Dr escrow, Cr platform fee, Cr provider payable). A submitted
milestone the buyer leaves unanswered for MILESTONE_AUTO_APPROVE_DAYS (default 14) is
approved by the timer, after a notice to the buyer NOTICE_DAYS_BEFORE days before (once).

Statuses live in orders/states.py (``MILESTONE_STATUSES``). Every status change here is a
conditional UPDATE from the statuses it may leave (as payments/core.py does for refunds), and
an approval first touches the order row on the condition that the order may still release
money (not disputed, not closed): two tabs approving, the timer racing "request changes", an
approval racing a dispute or a cancellation: one wins, the other is refused with a message.

Services flush; the view, command or timer commits.
"""

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.models import User
from marketplace.notifications import notify_organisation
from orders import ledger, states, timeline, workflow
from orders.models import Milestone, Order, ProgressUpdate
from orders.money import format_amount, split_by_shares
from orders.services import OrderError, require_provider_working, start_work_if_accepted

DEFAULT_AUTO_APPROVE_DAYS = 14
NOTICE_DAYS_BEFORE = 3


def auto_approve_days() -> int:
    try:
        return int(current_app.config.get("MILESTONE_AUTO_APPROVE_DAYS",
                                          DEFAULT_AUTO_APPROVE_DAYS))
    except RuntimeError:
        return DEFAULT_AUTO_APPROVE_DAYS


def amounts(order: Order) -> dict[int | None, int]:
    """Each milestone's share of the order value in minor units (largest remainder, so the
    parts add up exactly); key None is the rest, released when the order completes."""
    shares = [m.share_bp for m in order.milestones]
    rest = 10_000 - sum(shares)
    parts = split_by_shares(order.subtotal, [*shares, max(rest, 0)])
    found: dict[int | None, int] = {
        m.id: part for m, part in zip(order.milestones, parts[:-1], strict=True)}
    found[None] = parts[-1]
    return found


def _find(order: Order, milestone_id: int) -> Milestone:
    milestone = next((m for m in order.milestones if m.id == milestone_id), None)
    if milestone is None:
        raise OrderError(_("No such milestone on this order."), status=404)
    return milestone


def _move(session: Session, milestone: Milestone, from_statuses: tuple[str, ...], to: str,
          **values) -> bool:
    session.flush()
    result = session.execute(
        update(Milestone).where(Milestone.id == milestone.id,
                                Milestone.status.in_(from_statuses))
        .values(status=to, **values).execution_options(synchronize_session=False))
    session.refresh(milestone)
    return result.rowcount == 1


def _refusal(milestone: Milestone) -> OrderError:
    """Why an answer to ``milestone`` came too late, from its status now."""
    messages = {
        "approved": _("This milestone was already approved (in another tab, or by the "
                      "timer); its money was released once."),
        "changes_requested": _("Changes were already requested on this milestone; it waits "
                               "for the institution to submit it again."),
        "pending": _("This milestone is not submitted yet."),
        "disputed": _("This milestone is in dispute; platform staff will rule on it."),
        "ruled": _("Platform staff ruled on this milestone."),
    }
    return OrderError(messages.get(milestone.status,
                                   _("This milestone cannot be answered now.")), status=409)


def _order_may_release(session: Session, order: Order) -> None:
    """Touch the order row on the condition that it may still release milestone money:
    on PostgreSQL the row stays locked until commit (a dispute or cancellation racing this
    waits, then sees what we did); on SQLite the UPDATE takes the write lock. If a dispute
    or cancellation came first, nothing is released."""
    session.flush()
    result = session.execute(
        update(Order).where(Order.id == order.id,
                            Order.status.in_(states.MILESTONE_APPROVABLE_ORDER))
        .values(version=Order.version).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.refresh(order)
        if order.status == "disputed":
            raise OrderError(_("A dispute is open on this order: milestones cannot be "
                               "approved until platform staff rule on it."), status=409)
        raise OrderError(_("This order is %(status)s: its milestones can no longer be "
                           "approved.", status=states.label(order.status).lower()), status=409)


# --------------------------------------------------------------------------- institution

def submit(session: Session, order: Order, actor: User, milestone_id: int, note: str,
           now: datetime | None = None) -> tuple[Milestone, ProgressUpdate]:
    """The institution submits a milestone for the buyer's approval. The note (and files,
    attached by the caller to the returned progress update) say what was done."""
    require_provider_working(order, actor)
    milestone = _find(order, milestone_id)
    note = (note or "").strip()
    if not note:
        raise OrderError(_("Say what was done for this milestone."))
    if milestone.status not in states.MILESTONE_SUBMITTABLE:
        raise OrderError(_("This milestone is already submitted."), status=409)
    now = now or utcnow()
    reached = sum(m.share_bp for m in order.milestones
                  if m.status in states.MILESTONE_REACHED or m.id == milestone.id) // 100
    update_ = ProgressUpdate(order_id=order.id, author_id=actor.id,
                             percent=max(min(reached, 100), order.progress_percent),
                             note=f"{milestone.title}: {note}", created_at=now)
    session.add(update_)
    session.flush()
    if not _move(session, milestone, states.MILESTONE_SUBMITTABLE, "submitted",
                 submitted_at=now, completed_at=now, submission_note=note,
                 submission_update_id=update_.id, auto_notice_at=None, decided_at=None):
        raise OrderError(_("This milestone is already submitted."), status=409)
    start_work_if_accepted(session, order, actor)
    workflow.record_event(session, order, "milestone_submitted", actor, note=timeline.note(
        "milestone_submitted", title=milestone.title, note=note))
    days = auto_approve_days()
    notify_organisation(
        session, order.buyer, "order_milestone",
        lambda: _("Order %(number)s: milestone submitted for approval", number=order.number),
        lambda: _("“%(title)s” awaits your approval. Approve it to release its share to the "
                  "institution, or ask for changes. Without an answer within %(days)d days "
                  "it is approved automatically.", title=milestone.title, days=days),
        workflow.order_link(order, "buyer"))
    session.flush()
    return milestone, update_


# --------------------------------------------------------------------------- buyer

def approve(session: Session, order: Order, actor: User | None, milestone_id: int,
            now: datetime | None = None, by: str = "buyer") -> Milestone:
    """Approve a submitted milestone and release its share from escrow (never more than
    escrow holds in money). ``actor`` is the buyer, or ``workflow.SYSTEM`` for the timer
    (``by="timer"``). Refused (OrderError 409) if it is no longer submitted or the order may
    no longer release money."""
    role = workflow.role_of(order, actor)
    if role not in ("buyer", "system"):
        raise workflow.NotAllowed(_("Only the buyer approves the milestones of an order."))
    milestone = _find(order, milestone_id)
    now = now or utcnow()
    _order_may_release(session, order)
    if not _move(session, milestone, ("submitted",), "approved", decided_at=now,
                 approved_by=by):
        raise _refusal(milestone)
    share = amounts(order)[milestone.id]
    posting, released = ledger.milestone_release(
        session, order, share, f"Milestone “{milestone.title}” approved"[:200])
    milestone.released_amount = released
    milestone.release_posting = posting or None
    if by == "timer":
        note = timeline.note("milestone_auto_approved", title=milestone.title,
                             days=auto_approve_days(), released_amount=released,
                             currency=order.currency)
    else:
        note = timeline.note("milestone_approved", title=milestone.title,
                             released_amount=released, currency=order.currency)
    workflow.record_event(session, order, "milestone_approved", actor, note=note)
    notify_organisation(
        session, order.provider, "order_milestone",
        lambda: _("Order %(number)s: milestone approved", number=order.number),
        lambda: _("“%(title)s” was approved; %(amount)s was released to your payable and "
                  "goes into your next statement.", title=milestone.title,
                  amount=format_amount(released, order.currency)),
        workflow.order_link(order, "provider"))
    session.flush()
    return milestone


def request_changes(session: Session, order: Order, actor: User, milestone_id: int,
                    reason: str, now: datetime | None = None) -> Milestone:
    """The buyer sends a submitted milestone back with a reason; nothing is released."""
    if workflow.role_of(order, actor) != "buyer":
        raise workflow.NotAllowed(_("Only the buyer answers the milestones of an order."))
    milestone = _find(order, milestone_id)
    reason = (reason or "").strip()
    if not reason:
        raise OrderError(_("Say what should be changed."))
    if order.status not in states.MILESTONE_APPROVABLE_ORDER:
        raise OrderError(_("This order is %(status)s: its milestones can no longer be "
                           "answered.", status=states.label(order.status).lower()), status=409)
    now = now or utcnow()
    if not _move(session, milestone, ("submitted",), "changes_requested", decided_at=now,
                 decision_note=reason[:5000]):
        raise _refusal(milestone)
    workflow.record_event(session, order, "milestone_changes", actor, note=timeline.note(
        "milestone_changes", title=milestone.title, reason=reason))
    notify_organisation(
        session, order.provider, "order_milestone",
        lambda: _("Order %(number)s: changes requested on a milestone", number=order.number),
        lambda: _("“%(title)s”: %(reason)s", title=milestone.title, reason=reason),
        workflow.order_link(order, "provider"))
    session.flush()
    return milestone


# Disputes, rulings and completion touch milestones too: orders/services.py
# (milestone_disputed, milestones_ruled, milestones_completed).


# --------------------------------------------------------------------------- timer

def due_for_notice(session: Session, now: datetime, days: int) -> list[int]:
    limit = now - timedelta(days=max(days - NOTICE_DAYS_BEFORE, 0))
    return list(session.scalars(
        select(Milestone.id).join(Order, Order.id == Milestone.order_id).where(
            Milestone.status == "submitted", Milestone.submitted_at <= limit,
            Milestone.auto_notice_at.is_(None),
            Order.status.in_(states.MILESTONE_APPROVABLE_ORDER))
        .order_by(Milestone.id)).all())


def send_notice(session: Session, milestone_id: int, now: datetime, days: int) -> bool:
    """Tell the buyer, once, that the milestone will be approved automatically."""
    session.flush()
    claimed = session.execute(
        update(Milestone).where(Milestone.id == milestone_id, Milestone.status == "submitted",
                                Milestone.auto_notice_at.is_(None))
        .values(auto_notice_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        return False
    milestone = session.get(Milestone, milestone_id)
    session.refresh(milestone)
    order = milestone.order
    when = milestone.submitted_at + timedelta(days=days)
    left = max(1, round((when - now).total_seconds() / 86_400))
    notify_organisation(
        session, order.buyer, "order_milestone",
        lambda: _("Order %(number)s: a milestone will be approved automatically",
                  number=order.number),
        lambda: _("“%(title)s” was submitted and has no answer yet. It will be approved "
                  "automatically, and its share released to the institution, in %(days)d "
                  "day(s) unless you approve it or ask for changes.", title=milestone.title,
                  days=left),
        workflow.order_link(order, "buyer"))
    workflow.record_event(session, order, "milestone_notice", workflow.SYSTEM,
                          note=timeline.note("milestone_notice", title=milestone.title,
                                             days=left))
    session.flush()
    return True


def due_for_approval(session: Session, now: datetime, days: int) -> list[int]:
    return list(session.scalars(
        select(Milestone.id).join(Order, Order.id == Milestone.order_id).where(
            Milestone.status == "submitted",
            Milestone.submitted_at <= now - timedelta(days=days),
            Order.status.in_(states.MILESTONE_APPROVABLE_ORDER))
        .order_by(Milestone.id)).all())
