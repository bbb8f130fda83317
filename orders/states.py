"""THE table of order statuses (DESIGN.md §5): one row per status, and every list of
statuses the code needs derived from it.

Models (the status CHECK constraint), the workflow, list tabs, timers, SLA, settlement,
reviews, credibility, the staff console and the templates read this module; none keeps its
own copy. Adding a status means one row here, the transitions into and out of it in
orders/workflow.py, and a migration for the CHECK constraint (orders/models.py reads
``VALUES``).

Columns:
    value       the string stored in purchase_order.status
    label       the label (lazy gettext: English msgid, the Chinese lives in the catalogue)
    badge       Bootstrap colour of its badge
    group       "open" (work or money still moving), "closed" (ended, but the order still
                waits to be settled with the institution) or "terminal" (nothing more happens)
    tab         the buyer's and institution's order-list tab: open / completed / closed
    deadline    the order column holding the SLA deadline while in this status, or None
                when no SLA clock runs (the clock runs exactly when this is set)
    acts_next   who must act next: buyer / provider / staff / nobody
    waiting     why no SLA clock runs, for open states without one ("" otherwise)
    card_hold   the buyer's card hold can still be released by the bank in this status
                (the "lapse" transition): only before acceptance, since the provider's
                ``accept`` captures the card into the platform's escrow (issue 13)
    reviewable  both sides may rate each other (the work ended with an outcome)
    work_begun  the institution accepted the order (its progress is worth showing)
"""

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class OrderState:
    value: str
    label: str
    badge: str
    group: str  # open / closed / terminal
    tab: str  # open / completed / closed
    acts_next: str = "nobody"  # buyer / provider / staff / nobody
    deadline: str | None = None  # accept_by / due_at: the SLA clock runs
    waiting: str = ""
    card_hold: bool = False
    reviewable: bool = False
    work_begun: bool = False  # the institution accepted: progress and milestones are shown

    @property
    def clock_runs(self) -> bool:
        return self.deadline is not None


GROUPS = ("open", "closed", "terminal")
ACTORS = ("buyer", "provider", "staff", "nobody")

STATES: dict[str, OrderState] = {s.value: s for s in (
    OrderState("pending_payment", _l("Awaiting payment"), "warning", "open", "open",
               acts_next="buyer", waiting=_l("awaiting the buyer's payment")),
    OrderState("paid", _l("Paid · awaiting acceptance"), "info", "open", "open",
               acts_next="provider", deadline="accept_by", card_hold=True),
    OrderState("accepted", _l("Accepted"), "primary", "open", "open",
               acts_next="provider", deadline="due_at", work_begun=True),
    OrderState("in_progress", _l("In progress"), "primary", "open", "open",
               acts_next="provider", deadline="due_at", work_begun=True),
    OrderState("delivered", _l("Delivered · awaiting acceptance"), "info", "open", "open",
               acts_next="buyer", waiting=_l("delivered, awaiting the buyer's review"),
               work_begun=True),
    OrderState("completed", _l("Completed"), "success", "closed", "completed",
               reviewable=True, work_begun=True),
    OrderState("settled", _l("Settled"), "success", "terminal", "completed",
               reviewable=True, work_begun=True),
    OrderState("declined", _l("Declined"), "secondary", "terminal", "closed"),
    OrderState("cancelled", _l("Cancelled"), "secondary", "terminal", "closed"),
    OrderState("disputed", _l("In dispute"), "danger", "open", "open",
               acts_next="staff", waiting=_l("in dispute, awaiting a staff ruling"),
               work_begun=True),
    OrderState("resolved", _l("Dispute resolved"), "dark", "closed", "closed",
               reviewable=True, work_begun=True),
)}


def _where(**wanted) -> tuple[str, ...]:
    return tuple(s.value for s in STATES.values()
                 if all(getattr(s, key) == value for key, value in wanted.items()))


VALUES: tuple[str, ...] = tuple(STATES)  # the CHECK constraint of purchase_order.status
INITIAL = "pending_payment"
OPEN: tuple[str, ...] = _where(group="open")
# Ended: nothing more to do for buyer or provider. "closed" ones still wait for settlement.
CLOSED: tuple[str, ...] = tuple(s for s in VALUES if STATES[s].group != "open")
TERMINAL: tuple[str, ...] = _where(group="terminal")
SETTLEABLE: tuple[str, ...] = _where(group="closed")
# Open states whose money is still only a hold on the card (captured when the institution
# accepts the order): the states a card hold released at Stripe can catch an order in.
LAPSABLE: tuple[str, ...] = _where(card_hold=True)
REVIEWABLE: tuple[str, ...] = _where(reviewable=True)
WORK_BEGUN: tuple[str, ...] = _where(work_begun=True)
# SLA: status -> deadline column, for the states whose clock runs.
DEADLINE_COLUMN: dict[str, str] = {s.value: s.deadline for s in STATES.values() if s.deadline}
CLOCKED: tuple[str, ...] = tuple(DEADLINE_COLUMN)
ACCEPT_CLOCKED: tuple[str, ...] = _where(deadline="accept_by")  # waiting for acceptance
WORK_CLOCKED: tuple[str, ...] = _where(deadline="due_at")  # work under way
# The institution is working: it posts progress and milestones and may deliver.
WORKING: tuple[str, ...] = WORK_CLOCKED
WAITING_REASONS: dict[str, str] = {s.value: s.waiting for s in STATES.values() if s.waiting}
# Order-list tabs: tab -> statuses.
TABS: dict[str, tuple[str, ...]] = {
    "all": VALUES, "open": _where(tab="open"), "completed": _where(tab="completed"),
    "closed": _where(tab="closed")}
# Per side: the states in which an order waits on that side ("Needs action" tab).
ACTS_NEXT: dict[str, tuple[str, ...]] = {
    actor: _where(acts_next=actor) for actor in ACTORS if actor != "nobody"}


def state(status: str) -> OrderState:
    """The row of ``status``; an unknown value gets a neutral row (shown, never trusted)."""
    return STATES.get(status) or OrderState(status, status, "secondary", "terminal", "closed")


def label(status: str) -> str:
    """The status's label in the current language."""
    return str(state(status).label)


def badge(status: str) -> str:
    return state(status).badge


def is_open(status: str) -> bool:
    return status in OPEN


# --------------------------------------------------------------------------- milestones
#
# THE table of milestone statuses (issue 13): a milestone is submitted by the institution,
# approved by the buyer (or by the timer after MILESTONE_AUTO_APPROVE_DAYS of silence), which
# releases its share of the order from escrow, or sent back with a reason; a dispute opened on
# it holds it until staff rule. orders/models.py reads MILESTONE_VALUES for the CHECK
# constraint; orders/services.py moves milestones between these with conditional UPDATEs.


@dataclass(frozen=True)
class MilestoneState:
    value: str
    label: str
    badge: str
    reached: bool = False  # the institution says the work of it is done (counts as progress)
    released: bool = False  # its share of the money left escrow for the institution


MILESTONE_STATUSES: tuple[MilestoneState, ...] = (
    MilestoneState("pending", _l("Not submitted"), "secondary"),
    MilestoneState("submitted", _l("Submitted · awaiting approval"), "info", reached=True),
    MilestoneState("changes_requested", _l("Changes requested"), "warning"),
    MilestoneState("approved", _l("Approved · released"), "success", reached=True,
                   released=True),
    MilestoneState("disputed", _l("In dispute"), "danger", reached=True),
    MilestoneState("ruled", _l("Ruled on by staff"), "dark", reached=True),
)
MILESTONE_TABLE: dict[str, MilestoneState] = {m.value: m for m in MILESTONE_STATUSES}
MILESTONE_VALUES: tuple[str, ...] = tuple(MILESTONE_TABLE)  # CHECK of milestone.status
MILESTONE_REACHED: tuple[str, ...] = tuple(m.value for m in MILESTONE_STATUSES if m.reached)
# The institution may submit (again) from these.
MILESTONE_SUBMITTABLE: tuple[str, ...] = ("pending", "changes_requested")
# A milestone the buyer sent back: the progress its submission reported no longer counts.
MILESTONE_SENT_BACK = "changes_requested"
# Milestones that still wait for the institution's (first or corrected) submission: one of
# these past its due day makes the order overdue (orders/sla.py) and raises a deviation
# alert (orders/alerts.py).
MILESTONE_AWAITING_SUBMISSION: tuple[str, ...] = MILESTONE_SUBMITTABLE
# The buyer may dispute the order naming one of these milestones.
MILESTONE_DISPUTABLE: tuple[str, ...] = ("pending", "submitted", "changes_requested")
# Order states in which the institution works on the order: posts progress, adds and
# submits milestones.
PROVIDER_WORKING: tuple[str, ...] = ("accepted", "in_progress")
# Order states in which a submitted milestone may be approved (not while disputed, not
# after the order closed).
MILESTONE_APPROVABLE_ORDER: tuple[str, ...] = ("accepted", "in_progress", "delivered")


def milestone_label(status: str) -> str:
    row = MILESTONE_TABLE.get(status)
    return str(row.label) if row else status


def milestone_badge(status: str) -> str:
    row = MILESTONE_TABLE.get(status)
    return row.badge if row else "secondary"
