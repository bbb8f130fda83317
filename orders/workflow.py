"""THE order state machine (DESIGN.md §5). Every view, command and job changes an order's
status through ``transition()`` and nowhere else.

    pending_payment → paid (funds held) → accepted → in_progress → delivered → completed → settled
    side exits: declined (provider refuses, money released), cancelled (rules per state),
                disputed → resolved (staff ruling: full, partial or no refund)
    back to pending_payment (system only, "lapse"): the card hold of a paid order not yet
                accepted was released at Stripe, so the buyer must pay again (from
                acceptance on the card is captured: issue 13)

Each transition names, per role, the states it may be fired from. A role that may never fire
a transition gets ``NotAllowed`` (HTTP 403); a role that may, but not from the order's current
state, gets ``WrongState`` (HTTP 409). Either way nothing is changed. A successful transition
updates the order with a conditional UPDATE (status and version must still be what we read,
so two people acting at once cannot both win), writes an ``OrderEvent`` for the timeline and
publishes ``OrderTransitioned`` (marketplace/events.py): orders/notices.py notifies the other
parties in the same transaction, providers/credibility/subscribers.py marks both parties for
a credibility recompute that runs after commit.

Statuses (labels, groups, who acts next) live in orders/states.py; this module holds the
transitions between them.

Money follows the state: orders.payments reacts to the new state (capture, release, refund)
after the transition is recorded.
"""

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from marketplace import events
from marketplace.database import utcnow
from marketplace.events import OrderTransitioned
from marketplace.models import User
from marketplace.permissions import order_role
from orders import figures, states  # noqa: F401 (figures keeps the dashboard figures with every change)
from orders.models import Order, OrderEvent
from orders.timeline import EventNote

ROLES = ("buyer", "provider", "staff", "system")
SYSTEM = None  # the actor of automatic transitions (timers, webhooks)

# Statuses, labels and groups live in orders.states; these names stay for older imports.
STATUS_LABELS = {s.value: (s.label, s.badge) for s in states.STATES.values()}
OPEN_STATUSES = states.OPEN
CLOSED_STATUSES = states.CLOSED
TERMINAL_STATUSES = states.TERMINAL
LAPSABLE_STATUSES = states.LAPSABLE
status_label = states.label
status_badge = states.badge


@dataclass(frozen=True)
class Transition:
    name: str
    label: str  # button text
    to: str
    allowed: dict[str, frozenset[str]]  # role -> states it may be fired from
    summary: str  # timeline text: "<actor> accepted the order"
    note_required: frozenset[str] = field(default_factory=frozenset)  # roles that must explain
    stamp: str | None = None  # order column set to the time of the transition
    # How the order page shows it: the question of its note box ("" = a plain button), the
    # button's style and the timeline entry.
    prompt: str = ""
    style: str = "btn-outline-primary"
    done: str = ""


def _t(name, label, to, summary, allowed, note_required=(), stamp=None, *, prompt="",
       style="btn-outline-primary", done="") -> Transition:
    return Transition(name=name, label=label, to=to, summary=summary,
                      allowed={role: frozenset(sources) for role, sources in allowed.items()},
                      note_required=frozenset(note_required), stamp=stamp, prompt=prompt,
                      style=style, done=done or label)


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    _t("pay", _l("Mark as paid"), "paid", _l("payment received; funds are held"),
       {"system": ["pending_payment"], "staff": ["pending_payment"]}, stamp="paid_at",
       done=_l("Paid — funds held")),
    _t("accept", _l("Accept order"), "accepted", _l("accepted the order"),
       {"provider": ["paid"]}, stamp="accepted_at", style="btn-success", done=_l("Accepted")),
    _t("decline", _l("Decline order"), "declined",
       _l("declined the order; the money is released"),
       {"provider": ["paid"], "system": ["paid"]}, note_required=["provider"],
       stamp="closed_at", prompt=_l("Why do you decline? The buyer sees this."),
       style="btn-outline-danger", done=_l("Declined")),
    _t("start", _l("Start work"), "in_progress", _l("started work"),
       {"provider": ["accepted"]}, style="btn-primary", done=_l("Work started")),
    _t("deliver", _l("Deliver"), "delivered", _l("delivered the work"),
       {"provider": ["accepted", "in_progress"]}, stamp="delivered_at", done=_l("Delivered")),
    _t("request_revision", _l("Ask for a revision"), "in_progress", _l("asked for a revision"),
       {"buyer": ["delivered"]}, note_required=["buyer"], prompt=_l("What should be changed?"),
       style="btn-outline-secondary", done=_l("Revision requested")),
    _t("complete", _l("Accept delivery"), "completed",
       _l("accepted the delivery; the order is complete"),
       {"buyer": ["delivered"], "system": ["delivered"]}, stamp="completed_at",
       style="btn-success", done=_l("Completed")),
    _t("dispute", _l("Open a dispute"), "disputed", _l("opened a dispute"),
       {"buyer": ["accepted", "in_progress", "delivered"]}, note_required=["buyer"],
       prompt=_l("What went wrong? Platform staff will review the order, its messages and files."),
       style="btn-outline-danger", done=_l("Dispute opened")),
    _t("resolve", _l("Rule on the dispute"), "resolved", _l("ruled on the dispute"),
       {"staff": ["disputed"]}, note_required=["staff"], stamp="closed_at",
       done=_l("Dispute resolved")),
    _t("cancel", _l("Cancel order"), "cancelled", _l("cancelled the order"),
       {"buyer": ["pending_payment", "paid"],
        "staff": ["pending_payment", "paid", "accepted", "in_progress"],
        "system": ["pending_payment"]},
       note_required=["staff"], stamp="closed_at", prompt=_l("Reason for cancelling"),
       style="btn-outline-danger", done=_l("Cancelled")),
    # Real Stripe cancels a card hold that is not captured within about seven days: the
    # order is not paid any more, so it goes back to awaiting payment (orders.payments).
    # Only before acceptance: the institution's acceptance captures the card (issue 13).
    _t("lapse", _l("Payment lapsed"), "pending_payment",
       _l("found the card hold released by the bank; the order must be paid again"),
       {"system": list(LAPSABLE_STATUSES)},
       done=_l("Card hold released — awaiting payment again")),
    _t("settle", _l("Mark settled"), "settled", _l("settled the order with the institution"),
       {"staff": ["completed", "resolved"], "system": ["completed", "resolved"]},
       stamp="closed_at", done=_l("Settled")),
)}


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


# The transitions a page shows as a plain button (with a note box where one is needed);
# paying, delivering and ruling have forms of their own.
_OWN_FORMS = frozenset({"pay", "deliver", "resolve"})


def page_actions(order: Order, actor: User | None, role: str | None,
                 elsewhere: frozenset[str] | set[str] = frozenset()) -> dict:
    """What the order page offers ``actor`` now, computed once for the template: the
    transition ``buttons`` (less those fired through their own forms, and ``elsewhere``:
    what this role does on another page) and the flags of the other forms."""
    allowed = allowed_transitions(order, actor)
    names = {t.name for t in allowed}
    working = role == "provider" and order.status in states.WORKING
    return {
        "actions": allowed,
        "buttons": [t for t in allowed if t.name not in _OWN_FORMS and t.name not in elsewhere],
        "can_deliver": "deliver" in names,
        "can_report_work": working,  # progress updates and milestones (orders.services)
        "show_progress": order.status in states.WORK_BEGUN or bool(order.milestones),
        "can_rule": "resolve" in names,
        "can_refund_after_capture": role == "staff" and order.status in states.SETTLEABLE,
        "transition_done": {t.name: t.done for t in TRANSITIONS.values()},  # timeline entries
    }


def check(order: Order, name: str, actor: User | None, note: str | EventNote = "") -> str:
    """Raise unless ``actor`` may fire ``name`` on ``order`` now; returns the actor's role."""
    transition_ = TRANSITIONS.get(name)
    if transition_ is None:
        raise NotAllowed(_("Unknown action “%(name)s”.", name=name))
    role = role_of(order, actor)
    if role is None or role not in transition_.allowed:
        raise NotAllowed(_("Your account may not %(action)s on this order.",
                           action=transition_.label.lower()))
    if order.status not in transition_.allowed[role]:
        raise WrongState(_("This order is %(status)s; “%(action)s” is not possible now.",
                           status=status_label(order.status).lower(),
                           action=transition_.label))
    if role in transition_.note_required and not _note_columns(note)["note"]:
        raise NoteRequired(_("Please give a reason to %(action)s.",
                             action=transition_.label.lower()))
    if name in CONTRACT_GATED:
        from orders.contracts import start_blocked_reason

        reason = start_blocked_reason(order)
        if reason:
            raise ContractUnsigned(reason)
    return role


def transition(session: Session, order: Order, name: str, actor: User | None, *,
               note: str | EventNote = "", now: datetime | None = None,
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
        raise WrongState(_("This order was changed by someone else a moment ago. "
                           "Reload the page to see its current state."))
    set_committed_value(order, "status", transition_.to)
    set_committed_value(order, "version", order.version + 1)
    set_committed_value(order, "updated_at", now)
    for key, value in values.items():
        set_committed_value(order, key, value)
    event = OrderEvent(order_id=order.id, name=name, actor_id=getattr(actor, "id", None),
                       actor_role=role, from_status=from_status, to_status=transition_.to,
                       created_at=now, **_note_columns(note))
    session.add(event)
    session.flush()
    # Notifications (in this transaction) and the credibility mark (recomputed after
    # commit) subscribe to this; see marketplace/events.py for who listens.
    events.publish(session, OrderTransitioned(
        order_id=order.id, name=name, from_status=from_status, to_status=transition_.to,
        actor_role=role, at=now, actor_id=getattr(actor, "id", None), note=event.note))
    session.flush()
    return event


def record_event(session: Session, order: Order, name: str, actor: User | None,
                 note: str | EventNote = "") -> OrderEvent:
    """A timeline entry that does not change the status (milestone, payment failure...).
    ``note``: what a person wrote, or a platform note (orders/timeline.py), shown in the
    reader's language."""
    role = role_of(order, actor) or "system"
    event = OrderEvent(order_id=order.id, name=name, actor_id=getattr(actor, "id", None),
                       actor_role=role, **_note_columns(note))
    session.add(event)
    return event


def _note_columns(note: str | EventNote | None) -> dict:
    if isinstance(note, EventNote):
        return {"note": note.english(), "note_key": note.key, "note_args": note.args}
    return {"note": (note or "").strip()}


def order_link(order: Order, party: str) -> str:
    if party == "provider":
        return f"/provider/orders/{order.id}"
    if party == "staff":
        return f"/staff/orders/{order.id}"
    return f"/orders/{order.id}"
