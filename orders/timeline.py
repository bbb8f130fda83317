"""The words of an order's timeline: what each event is called and the notes the platform
writes, in the reader's language.

A note the platform writes itself (a milestone submitted, an amount released, a refund) is
stored as a key and its values (``order_event.note_key``/``note_args``) and put into words
when the page is shown, so a Chinese reader sees Chinese and an English one English,
whoever's action wrote it and in whichever language. What people typed (reasons, notes) is
one of the values and stays in their own words. The English text is stored in ``note`` too
(exports, the audit trail, and the rows written before keys existed, which show it as is).

Values are shown by their names: ``*_amount`` minor units in the note's ``currency``,
``*_date`` an ISO date and ``*_at`` an ISO UTC instant, both in the platform's time zone and
the reader's format; anything else as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from marketplace.i18n import format_date, format_datetime
from orders.money import format_amount


def _n(message: str) -> str:
    """Marks a note for the translation catalogue; it is translated when shown."""
    return message


NOTES: dict[str, str] = {
    "placed_one": _n("Order placed (%(count)d item)."),
    "placed_many": _n("Order placed (%(count)d items)."),
    "quote_accepted": _n("Quote accepted: %(price_amount)s, delivery by %(due_date)s."),
    "application_submitted": _n("Application submitted."),
    "money_pending": _n("The payment service could not be reached; the platform will retry "
                        "automatically."),
    "milestone_added": _n("Milestone “%(title)s” (%(share)s%% of the price)."),
    "milestone_added_due": _n("Milestone “%(title)s” (%(share)s%% of the price, due "
                              "%(due_date)s)."),
    "milestone_submitted": _n("Milestone “%(title)s” submitted: %(note)s"),
    "milestone_approved": _n("Milestone “%(title)s” approved; %(released_amount)s released."),
    "milestone_auto_approved": _n("Milestone “%(title)s” approved automatically after "
                                  "%(days)d days without an answer; %(released_amount)s "
                                  "released."),
    "milestone_changes": _n("Changes requested on “%(title)s”: %(reason)s"),
    "milestone_notice": _n("The buyer was told that “%(title)s” will be approved "
                           "automatically in %(days)d day(s)."),
    "hold_lapsed": _n("The card hold expired or was released at the bank before the work was "
                      "accepted. The buyer must pay again; nothing was charged."),
    "capture_failed": _n("The card could not be captured at acceptance: %(reason)s. The order "
                         "stays paid, awaiting acceptance."),
    "refund": _n("Refunded %(refund_amount)s."),
    "refund_reason": _n("Refunded %(refund_amount)s: %(reason)s"),
    "clawback": _n("Clawback of %(clawback_amount)s against the institution's next "
                   "statement: %(reason)s"),
    "payment_missing": _n("%(missing_amount)s of this order was never captured: the card hold "
                          "was released before the capture. Nothing is recognised or paid "
                          "out until staff settle it with the buyer."),
    "repay_needed": _n("The card hold of %(hold_amount)s was released by the bank before it "
                       "was captured. The buyer must pay again; staff follow up."),
    "voucher_returned": _n("%(returned_amount)s returned to the innovation voucher."),
    "payment_failed": _n("Card payment failed: %(message)s"),
    "requires_action": _n("The card needs 3-D Secure authentication."),
    "stray_hold_cancelled": _n("A card authorisation arrived for a payment attempt that had "
                               "been replaced; it was cancelled at Stripe."),
    "paid_out": _n("Paid out in statement %(statement)s (%(reference)s)."),
    "acceptance_deadline_moved": _n("The acceptance deadline moved from %(before_at)s to "
                                    "%(after_at)s. %(reason)s"),
    "due_date_moved": _n("The due date moved from %(before_at)s to %(after_at)s. %(reason)s"),
    "milestone_moved": _n("Milestone “%(title)s” moved from %(before_date)s to "
                          "%(after_date)s. %(reason)s"),
    "nudged_buyer": _n("Reminder sent to the buyer: %(reason)s"),
    "nudged_provider": _n("Reminder sent to the institution: %(reason)s"),
}

# What each event is called on the timeline (transitions without an entry here use the
# status table's "done" wording; see orders/views).
EVENT_LABELS = {
    "placed": _l("Order placed"), "accept": _l("Accepted"),
    "milestone_added": _l("Milestone added"), "milestone_done": _l("Milestone reached"),
    "progress": _l("Progress update"), "milestone_submitted": _l("Milestone submitted"),
    "milestone_approved": _l("Milestone approved"),
    "milestone_changes": _l("Changes requested on a milestone"),
    "milestone_notice": _l("Automatic approval announced"),
    "capture_failed": _l("Card capture failed"), "clawback": _l("Clawback recorded"),
    "repay_needed": _l("Payment needed again"), "payment_failed": _l("Payment failed"),
    "payment_requires_action": _l("3-D Secure requested"), "refund": _l("Refund"),
    "voucher_returned": _l("Voucher value returned"),
    "money_pending": _l("Payment service unavailable"),
    "hold_released": _l("Card hold released"),
    "stray_hold_cancelled": _l("Duplicate card hold cancelled"),
    "payment_missing": _l("Payment missing"), "staff_note": _l("Note from platform staff"),
    "deadline_extended": _l("Deadline extended"), "milestone_extended": _l("Milestone extended"),
    "staff_nudge": _l("Reminder from platform staff"), "contract_signed": _l("Contract signed"),
    "contract_version": _l("New contract version"),
}
# Events about money, marked out on the timeline.
MONEY_EVENTS = frozenset({
    "refund", "voucher_returned", "milestone_approved", "capture_failed", "clawback",
    "repay_needed", "payment_failed", "money_pending", "hold_released", "lapse",
    "stray_hold_cancelled", "payment_missing"})


@dataclass(frozen=True)
class EventNote:
    """A note the platform writes: a key of ``NOTES`` and its values (JSON-safe)."""

    key: str
    args: dict = field(default_factory=dict)

    def english(self) -> str:
        """The note in English (stored in ``order_event.note``)."""
        return _words(self.key, self.args, locale="en")


def note(key: str, **args) -> EventNote:
    """A platform note; dates and instants are stored as ISO text."""
    if key not in NOTES:
        raise KeyError(f"unknown timeline note {key!r}")
    stored = {}
    for name, value in args.items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        stored[name] = value
    return EventNote(key, stored)


def note_text(event) -> str:
    """What the timeline shows under an event, in the reader's language."""
    if event.note_key in NOTES and event.note_args is not None:
        try:
            return _words(event.note_key, event.note_args)
        except (KeyError, ValueError, TypeError):
            pass  # a note written by another version: its stored English text
    return event.note or ""


def event_label(name: str, application: bool = False) -> str | None:
    """The timeline heading of an event (None: the caller's transition wording)."""
    if name == "accept" and application:
        return str(_l("Approved"))
    label = EVENT_LABELS.get(name)
    return str(label) if label is not None else None


def _words(key: str, args: dict, locale: str | None = None) -> str:
    """The note in the request's language, or untranslated in English (``locale="en"``)."""
    template = NOTES[key] if locale == "en" else gettext(NOTES[key])
    currency = args.get("currency") or "CNY"
    return template % {name: _shown(name, value, currency, locale)
                       for name, value in args.items()}


def _shown(name: str, value, currency: str, locale: str | None):
    if value is None:
        return "—"
    if name.endswith("_amount"):
        return format_amount(int(value), currency)
    if name.endswith("_date"):
        return format_date(date.fromisoformat(value), locale)
    if name.endswith("_at"):
        return format_datetime(datetime.fromisoformat(value), locale)
    return value
