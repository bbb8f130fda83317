"""The payment-method interface and its registry.

A payment method is one class, registered once with ``@register``. Everything else (the
CHECK constraints' lists of methods, form choices, the checkout and pay pages' partials,
money following an order's state, reconciliation, webhooks) asks the registry, so a new
method (Alipay or WeChat Pay through Stripe, say) is one new module plus its templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from orders.models import Order, Payment


class PaymentMethod:
    """One way to pay. Subclasses set the attributes and override what they support.

    ``begin``    start an attempt on an order awaiting payment (returns the Payment row);
    ``confirm``  bring an attempt in line with what the provider says (or staff confirm);
    ``capture``  / ``cancel`` / ``refund``: money follows the order's state
                 (``follow_order`` does all three for a closed order);
    ``reconcile`` whether the provider's records are compared with ours (reconciliation);
    ``webhook``  handle a provider's (already verified) event.
    """

    name: str = ""
    label: str = ""          # checkout's radio label
    short_label: str = ""    # lists, filters, the order page
    partial: str = ""        # template of the method's box on the checkout and pay pages
    instructions_partial: str = ""  # the order page's "how to pay" box, if any
    status_labels: dict[str, str] = {}  # the method's own words for a payment's status
    position: int = 50          # order on the checkout page
    begins_at_checkout: bool = False  # True: the attempt starts with the order (no browser step)
    collects_card: bool = False   # True: card details (test form or Stripe.js), 3-D Secure
    asks_provider: bool = False  # True: the provider knows the attempt's state; ask it (browser
    #   return, before cancelling an unpaid order) with ``confirm``
    begun_message: str = ""       # said to the buyer when an attempt without a browser step starts
    holds_money: bool = False   # True: authorised now, captured when the institution accepts
    selectable: bool = True     # offered as a way to pay the amount due (not voucher)
    reconcile_with_stripe: bool = False
    refunds_at_provider: bool = False  # True: a refund is sent back through the provider

    # What the submit buttons and the note under them say with this method chosen: a method
    # that takes the money at once (card: held until the buyer accepts) says "pay".
    def place_order_label(self, amount: str) -> str:
        return _("Place order and pay %(amount)s", amount=amount)

    def pay_label(self, amount: str) -> str:
        return _("Pay %(amount)s", amount=amount)

    def place_order_note(self) -> str:
        return _("By placing the order you agree that the amount is held for each institution "
                 "until you accept its work, and released if it declines.")

    def begin(self, session: Session, order: Order, **kwargs) -> Payment:
        raise NotImplementedError

    def confirm(self, session: Session, payment: Payment, **kwargs) -> Payment:
        raise NotImplementedError

    def redirect_after_begin(self, session: Session, payment: Payment,
                             return_url: str) -> str | None:
        """For a method whose buyer approves on the provider's own page (Alipay or WeChat Pay
        through Stripe, say): start it there and return that page's address; the buyer comes
        back to ``return_url`` (orders.payment_return, which calls ``confirm``). None: no
        such page (the view then says ``begun_message``). Commits if it calls the provider."""
        return None

    def cancel(self, session: Session, payment: Payment) -> None:
        """Give up an unfinished attempt (a retry or another method replaces it)."""
        raise NotImplementedError

    def refund(self, session: Session, payment: Payment, amount: int, refund, gw=None) -> None:
        """Send ``amount`` back through the provider; the caller reserved and recorded it."""

    def follow_order(self, session: Session, payment: Payment, keep_cash: int,
                     gw=None) -> list[str]:
        """Capture, release or refund so that ``payment`` keeps ``keep_cash`` of a closed
        order. Idempotent. Returns what was done."""
        return []

    def capture_on_accept(self, session: Session, payment: Payment, gw=None) -> list[str]:
        """The institution accepts the order: take money that is only held (a card
        authorisation) into the platform's escrow. Raises ``core.CaptureFailed`` (order left
        as it was) or ``core.HoldLapsed``. Methods whose money is received at once do
        nothing."""
        return []

    def still_held(self, session: Session, payment: Payment, gw=None) -> bool:
        """Before capture: is the money still held? (False: the hold was released.)"""
        return True

    def webhook(self, session: Session, payment: Payment, event: dict, gw=None) -> str:
        """A verified, de-duplicated provider event about ``payment``; returns what changed."""
        return "ignored"


_METHODS: dict[str, PaymentMethod] = {}

# A payment's status in words, with its badge colour; a method may say it its own way
# (``status_labels``), e.g. a bank transfer is "awaiting transfer", not "awaiting payment".
STATUS_BADGES = {
    "pending": (_l("Awaiting payment"), "warning"),
    "requires_action": (_l("Needs 3-D Secure"), "warning"),
    "held": (_l("Funds held"), "info"),
    "captured": (_l("Captured"), "success"),
    "failed": (_l("Failed"), "danger"),
    "released": (_l("Hold released"), "secondary"),
    "canceled": (_l("Cancelled"), "secondary"),
}


def register(cls: type[PaymentMethod]) -> type[PaymentMethod]:
    _METHODS[cls.name] = cls()
    return cls


def get(name: str) -> PaymentMethod:
    """The method called ``name``; KeyError for an unknown one."""
    return _METHODS[name]


def all_methods() -> list[PaymentMethod]:
    return sorted(_METHODS.values(), key=lambda m: (m.position, m.name))


def selectable() -> list[PaymentMethod]:
    """The methods a buyer can choose to pay what is due, in checkout order."""
    return [m for m in all_methods() if m.selectable]


def choices() -> list[tuple[str, str]]:
    """(name, label) of the methods a buyer can choose, for forms."""
    return [(m.name, str(m.label)) for m in selectable()]  # in the current language


def names(**flags) -> list[str]:
    """Names of the methods whose attributes equal ``flags``: names(holds_money=True)."""
    return [m.name for m in all_methods()
            if all(getattr(m, key) == value for key, value in flags.items())]


def label(name: str) -> str:
    """Short label of a method for lists and the order page; the raw name if unknown."""
    method = _METHODS.get(name)
    return str(method.short_label) if method else name


def status_badge(method: str, status: str) -> tuple[str, str]:
    """(label, badge colour) of a payment of ``method`` in ``status``."""
    label_, colour = STATUS_BADGES.get(status, (status, "secondary"))
    own = _METHODS.get(method)
    if own is not None and status in own.status_labels:
        label_ = own.status_labels[status]
    return str(label_), colour
