"""THE order state machine (DESIGN.md §5). Every view, command and job changes an order's
status through ``transition()`` and nowhere else.

    pending_payment → paid (funds held) → accepted → in_progress → delivered → completed → settled
    side exits: declined (provider refuses, money released), cancelled (rules per state),
                disputed → resolved (staff ruling: full, partial or no refund)
    back to pending_payment (system only, "lapse"): the card hold of a paid but not yet
                completed order was released at Stripe, so the buyer must pay again

Each transition names, per role, the states it may be fired from. A role that may never fire
a transition gets ``NotAllowed`` (HTTP 403); a role that may, but not from the order's current
state, gets ``WrongState`` (HTTP 409). Either way nothing is changed. A successful transition
updates the order with a conditional UPDATE (status and version must still be what we read,
so two people acting at once cannot both win), writes an ``OrderEvent`` for the timeline and
notifies the other parties.

Money follows the state: orders.payments reacts to the new state (capture, release, refund)
after the transition is recorded.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.database import utcnow
from marketplace.models import User
from marketplace.notifications import notify, notify_organisation
from marketplace.permissions import order_role
from orders import figures  # noqa: F401 (keeps the dashboard figures with every change)
from orders.models import Order, OrderEvent

ROLES = ("buyer", "provider", "staff", "system")
SYSTEM = None  # the actor of automatic transitions (timers, webhooks)

STATUS_LABELS = {
    "pending_payment": ("Awaiting payment", "待支付", "warning"),
    "paid": ("Paid · awaiting acceptance", "已支付", "info"),
    "accepted": ("Accepted", "已接单", "primary"),
    "in_progress": ("In progress", "服务中", "primary"),
    "delivered": ("Delivered · awaiting acceptance", "已交付", "info"),
    "completed": ("Completed", "已完成", "success"),
    "settled": ("Settled", "已结算", "success"),
    "declined": ("Declined", "已拒单", "secondary"),
    "cancelled": ("Cancelled", "已取消", "secondary"),
    "disputed": ("In dispute", "争议中", "danger"),
    "resolved": ("Dispute resolved", "已裁决", "dark"),
}
OPEN_STATUSES = ("pending_payment", "paid", "accepted", "in_progress", "delivered", "disputed")
CLOSED_STATUSES = ("completed", "settled", "declined", "cancelled", "resolved")
TERMINAL_STATUSES = ("settled", "declined", "cancelled")
# Open states whose money is held on the card (captured only when the buyer accepts the work):
# the states a card hold released at Stripe can catch an order in.
LAPSABLE_STATUSES = ("paid", "accepted", "in_progress", "delivered", "disputed")


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, (status, "", "secondary"))[0]


def status_badge(status: str) -> str:
    return STATUS_LABELS.get(status, (status, "", "secondary"))[2]


@dataclass(frozen=True)
class Transition:
    name: str
    label: str  # button text
    to: str
    allowed: dict[str, frozenset[str]]  # role -> states it may be fired from
    summary: str  # timeline text: "<actor> accepted the order"
    note_required: frozenset[str] = field(default_factory=frozenset)  # roles that must explain
    stamp: str | None = None  # order column set to the time of the transition


def _t(name, label, to, summary, allowed, note_required=(), stamp=None) -> Transition:
    return Transition(name=name, label=label, to=to, summary=summary,
                      allowed={role: frozenset(states) for role, states in allowed.items()},
                      note_required=frozenset(note_required), stamp=stamp)


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    _t("pay", "Mark as paid", "paid", "payment received; funds are held",
       {"system": ["pending_payment"], "staff": ["pending_payment"]}, stamp="paid_at"),
    _t("accept", "Accept order", "accepted", "accepted the order",
       {"provider": ["paid"]}, stamp="accepted_at"),
    _t("decline", "Decline order", "declined", "declined the order; the money is released",
       {"provider": ["paid"], "system": ["paid"]}, note_required=["provider"],
       stamp="closed_at"),
    _t("start", "Start work", "in_progress", "started work",
       {"provider": ["accepted"]}),
    _t("deliver", "Deliver", "delivered", "delivered the work",
       {"provider": ["accepted", "in_progress"]}, stamp="delivered_at"),
    _t("request_revision", "Ask for a revision", "in_progress", "asked for a revision",
       {"buyer": ["delivered"]}, note_required=["buyer"]),
    _t("complete", "Accept delivery", "completed", "accepted the delivery; the order is complete",
       {"buyer": ["delivered"], "system": ["delivered"]}, stamp="completed_at"),
    _t("dispute", "Open a dispute", "disputed", "opened a dispute",
       {"buyer": ["accepted", "in_progress", "delivered"]}, note_required=["buyer"]),
    _t("resolve", "Rule on the dispute", "resolved", "ruled on the dispute",
       {"staff": ["disputed"]}, note_required=["staff"], stamp="closed_at"),
    _t("cancel", "Cancel order", "cancelled", "cancelled the order",
       {"buyer": ["pending_payment", "paid"],
        "staff": ["pending_payment", "paid", "accepted", "in_progress"],
        "system": ["pending_payment"]},
       note_required=["staff"], stamp="closed_at"),
    # Real Stripe cancels a card hold that is not captured within about seven days: the
    # order is not paid any more, so it goes back to awaiting payment (orders.payments).
    _t("lapse", "Payment lapsed", "pending_payment",
       "found the card hold released by the bank; the order must be paid again",
       {"system": list(LAPSABLE_STATUSES)}),
    _t("settle", "Mark settled", "settled", "settled the order with the institution",
       {"staff": ["completed", "resolved"], "system": ["completed", "resolved"]},
       stamp="closed_at"),
)}

# Transitions that change an input of the credibility score of buyer or provider: paying
# (the buyer's on-time payment, the provider's paid orders), accepting (the provider's
# response time and accepted orders) and every ending. The score's badge is stored, its
# breakdown computed live, so missing one here would show two different scores.
CREDIBILITY_TRANSITIONS = frozenset({"pay", "accept", "complete", "resolve", "cancel",
                                     "decline", "dispute"})

# Who hears about each transition (besides the actor's own organisation). Nobody hears
# about "settle" order by order: the institution gets one notice per paid statement
# (orders.settlement.mark_paid), not one per order in it.
_NOTIFY = {
    "pay": ("buyer", "provider"), "accept": ("buyer",), "decline": ("buyer",),
    "start": ("buyer",), "deliver": ("buyer",), "request_revision": ("provider",),
    "complete": ("buyer", "provider"), "dispute": ("provider", "staff"),
    "resolve": ("buyer", "provider"), "cancel": ("buyer", "provider"),
    "lapse": ("buyer", "provider", "staff"),
}


class WorkflowError(Exception):
    """A refused transition; ``status`` is the HTTP status a view answers with."""

    status = 409

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(WorkflowError):
    status = 403


class WrongState(WorkflowError):
    status = 409


class NoteRequired(WorkflowError):
    status = 400


class ContractUnsigned(WorkflowError):
    status = 409


# Work on an order that carries a technology contract waits for both signatures
# (orders.contracts.start_blocked_reason); orders without a contract are not held.
CONTRACT_GATED = frozenset({"start", "deliver"})


def role_of(order: Order, actor: User | None) -> str | None:
    """"system" for automatic transitions, else the actor's part in this order."""
    if actor is SYSTEM:
        return "system"
    return order_role(actor, order)


def allowed_transitions(order: Order, actor: User | None) -> list[Transition]:
    """The transitions this actor may fire now (for showing buttons)."""
    role = role_of(order, actor)
    return [t for t in TRANSITIONS.values() if order.status in t.allowed.get(role, ())]


def can(order: Order, name: str, actor: User | None) -> bool:
    role = role_of(order, actor)
    return order.status in TRANSITIONS[name].allowed.get(role, ())


def check(order: Order, name: str, actor: User | None, note: str = "") -> str:
    """Raise unless ``actor`` may fire ``name`` on ``order`` now; returns the actor's role."""
    transition_ = TRANSITIONS.get(name)
    if transition_ is None:
        raise NotAllowed(f"Unknown action “{name}”.")
    role = role_of(order, actor)
    if role is None or role not in transition_.allowed:
        raise NotAllowed(f"Your account may not {transition_.label.lower()} on this order.")
    if order.status not in transition_.allowed[role]:
        raise WrongState(
            f"This order is {status_label(order.status).lower()}; "
            f"“{transition_.label}” is not possible now.")
    if role in transition_.note_required and not (note or "").strip():
        raise NoteRequired(f"Please give a reason to {transition_.label.lower()}.")
    if name in CONTRACT_GATED:
        from orders.contracts import start_blocked_reason

        reason = start_blocked_reason(order)
        if reason:
            raise ContractUnsigned(reason)
    return role


def transition(session: Session, order: Order, name: str, actor: User | None, *,
               note: str = "", now: datetime | None = None,
               changes: dict | None = None) -> OrderEvent:
    """Fire transition ``name``: check, change the state, record the event, notify.

    ``changes`` are further order columns set in the same UPDATE (deadlines, reasons).
    Raises a ``WorkflowError`` and changes nothing when the transition is not allowed, or
    when someone else changed the order since it was read.
    """
    role = check(order, name, actor, note)
    transition_ = TRANSITIONS[name]
    now = now or utcnow()
    values = dict(changes or {})
    if transition_.stamp:
        values.setdefault(transition_.stamp, now)
    from_status = order.status
    session.flush()
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == from_status,
               Order.version == order.version)
        .values(status=transition_.to, version=Order.version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise WrongState("This order was changed by someone else a moment ago. "
                         "Reload the page to see its current state.")
    set_committed_value(order, "status", transition_.to)
    set_committed_value(order, "version", order.version + 1)
    set_committed_value(order, "updated_at", now)
    for key, value in values.items():
        set_committed_value(order, key, value)
    event = OrderEvent(order_id=order.id, name=name, actor_id=getattr(actor, "id", None),
                       actor_role=role, from_status=from_status, to_status=transition_.to,
                       note=(note or "").strip(), created_at=now)
    session.add(event)
    _notify(session, order, name, role, actor, note)
    session.flush()
    if name in CREDIBILITY_TRANSITIONS:
        from providers.credibility import refresh_for_order

        refresh_for_order(session, order, now)  # both parties, in this transaction
    return event


def record_event(session: Session, order: Order, name: str, actor: User | None,
                 note: str = "") -> OrderEvent:
    """A timeline entry that does not change the status (milestone, payment failure...)."""
    role = role_of(order, actor) or "system"
    event = OrderEvent(order_id=order.id, name=name, actor_id=getattr(actor, "id", None),
                       actor_role=role, note=note.strip())
    session.add(event)
    return event


def order_link(order: Order, party: str) -> str:
    if party == "provider":
        return f"/provider/orders/{order.id}"
    if party == "staff":
        return f"/staff/orders/{order.id}"
    return f"/orders/{order.id}"


def _notify(session: Session, order: Order, name: str, role: str, actor, note: str) -> None:
    transition_ = TRANSITIONS[name]
    who = {"buyer": "The buyer", "provider": "The institution", "staff": "Platform staff",
           "system": "The platform"}[role]
    title = f"Order {order.number}: {status_label(transition_.to).lower()}"
    body = f"{who} {transition_.summary}: {order.title}."
    if note:
        body += f"\n\nNote: {note.strip()}"
    for party in _NOTIFY.get(name, ()):
        if party == role:
            continue
        if party == "staff":
            staff = session.scalars(select(User).where(User.role.in_(("staff", "admin")),
                                                       User.active.is_(True))).all()
            for user in staff:
                notify(session, user, f"order_{name}", title, body, order_link(order, "staff"))
            continue
        organisation = order.buyer if party == "buyer" else order.provider
        notify_organisation(session, organisation, f"order_{name}", title, body,
                            order_link(order, party))
