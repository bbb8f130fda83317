"""Payments: one small interface (orders/payments/base.py), one module per method, found
through one registry.

- ``get(name)``, ``all_methods()``, ``choices()``: the registry. Forms, the checkout and pay
  pages (each method's own partial), order lists' filters, money following an order's
  state, reconciliation and webhooks ask it instead of testing ``method == "card"``.
- card.py: card through Stripe PaymentIntents, held with manual capture (and
  orders/stripe_gateway.py, the thin Stripe client);
- bank_transfer.py: corporate bank transfer, confirmed by staff;
- voucher.py: the innovation voucher as a payment component (programme and grant rules stay
  in orders/vouchers.py);
- core.py: the bookkeeping they share: payment status moves, the order becoming paid,
  refunds, staff refunds, and ``sync_money`` (money follows the order's state).

Adding a method (Alipay through Stripe, say): a new module here with a ``PaymentMethod``
subclass decorated with ``@register`` (every module of the package is imported below), its
partial under templates/checkout/methods/, and its name in orders.models.PAYMENT_METHODS
with a migration for the CHECK constraints (the database's list of accepted values). A
method whose buyer approves on the provider's page implements ``redirect_after_begin`` and
``confirm``; the pay page, the return page, refunds, money following the order's state, the
timers, reconciliation and the webhook then reach it through the registry.

Transactions: services flush, the view (or CLI command, or job) commits. The documented
exception is Stripe: a function that calls Stripe commits before the call (the payment row
and the PaymentIntent id must survive a crash, so a webhook or the timer job can find them)
and after it (Stripe's answer is applied at once); such functions say so in their docstring
(card.pay_with_test_card, create_browser_intent, authenticate_test_payment, _abandon when an
authorised intent turns up, core.confirm_hold when a hold lapsed, core.sync_money). A view
that called one must therefore not assume it can roll the whole request back.
"""

import importlib
import pkgutil

from orders.models import PAYMENT_METHODS
from orders.payments import bank_transfer, card, voucher
from orders.payments.bank_transfer import (
    bank_reference,
    begin_bank_transfer,
    mark_transfer_received,
)
from orders.payments.base import (
    PaymentMethod,
    all_methods,
    choices,
    get,
    label,
    names,
    register,
    selectable,
    status_badge,
)
from orders.payments.card import (
    TestCard,
    apply_intent,
    authenticate_test_payment,
    begin_card_payment,
    create_browser_intent,
    gateway,
    pay_with_test_card,
    payment_for_intent,
    refresh_from_stripe,
)
from orders.payments.core import (
    CaptureFailed,
    HoldLapsed,
    PaymentError,
    StaffRefund,
    capture_accepted_holds,
    capture_for_acceptance,
    clawback_limit,
    confirm_hold,
    order_paid,
    refund_payment,
    staff_clawback,
    staff_refund,
    sync_money,
    targets,
)

# Every other module of this package is a payment method too: importing it registers it, so
# a new method is a new file here, not an edit of this one.
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "core"):
        importlib.import_module(f"{__name__}.{_module.name}")

# The database accepts the names in orders.models.PAYMENT_METHODS (CHECK constraints); a
# method registered here without a migration would fail at the first INSERT, so say it now.
_unknown = {m.name for m in all_methods()} - set(PAYMENT_METHODS)
if _unknown:
    raise RuntimeError(f"payment methods {sorted(_unknown)} are missing from "
                       "orders.models.PAYMENT_METHODS (add them there with a migration)")

__all__ = [
    "CaptureFailed", "capture_accepted_holds", "capture_for_acceptance", "clawback_limit", "staff_clawback", "HoldLapsed", "PaymentError", "PaymentMethod", "StaffRefund", "TestCard", "all_methods",
    "apply_intent", "authenticate_test_payment", "bank_reference", "bank_transfer",
    "begin_bank_transfer", "begin_card_payment", "card", "choices", "confirm_hold",
    "create_browser_intent", "gateway", "get", "mark_transfer_received", "order_paid",
    "pay_with_test_card", "payment_for_intent", "refresh_from_stripe", "refund_payment",
    "label", "names", "register", "selectable", "staff_refund", "status_badge", "sync_money", "targets", "voucher",
]
