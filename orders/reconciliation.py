"""Reconciliation of our card payment records with Stripe's, per calendar month.

Our side: every card ``Payment`` created in the month (PaymentIntent id, status, amounts
authorised, captured and refunded, and the ``Refund`` rows with their Stripe ids). Stripe's
side: the PaymentIntents created in the month and the refunds created since the month began,
each listed 100 at a time (a handful of API calls per month, never one per payment). Against
real Stripe the lists are filtered by date at Stripe; localstripe cannot filter, so there we
page through its (small) store and filter here.

Mismatches reported:

- ``missing_at_stripe``  we have a PaymentIntent id Stripe does not know
- ``missing_here``       Stripe has an intent that no payment of ours records
- ``status``             the intent's state disagrees with ours (e.g. held here, captured there)
- ``amount``             the intent's amount is not what we asked for
- ``captured``           Stripe captured another amount than our records say
- ``refunded``           refund totals differ
- ``unknown_refund``     a refund at Stripe that no refund of ours records

localstripe models a partial capture as a capture of the whole charge plus a refund of the
rest (created on the charge, without a PaymentIntent); such refunds are counted as
"not captured", the way real Stripe reports ``amount_received``.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from catalog.services import Page
from orders import payments as payment_methods
from orders.models import Payment
from orders.money import format_amount
from orders.settlement import Period
from orders.stripe_gateway import GatewayError, StripeGateway

# Stripe PaymentIntent statuses that agree with each of our payment statuses.
EXPECTED = {
    "pending": {"requires_payment_method", "requires_confirmation", "processing"},
    "requires_action": {"requires_action"},
    "held": {"requires_capture"},
    "captured": {"succeeded"},
    "released": {"canceled"},
    "failed": {"requires_payment_method", "canceled"},
    "canceled": {"canceled", "requires_payment_method", "requires_confirmation"},
}
# Stripe's words for a PaymentIntent, said in ours (the raw status stays in the page's data).
STRIPE_STATUS_LABELS = {
    "requires_payment_method": _l("Awaiting a card"),
    "requires_confirmation": _l("Awaiting confirmation"),
    "requires_action": _l("Needs 3-D Secure"),
    "processing": _l("Processing"),
    "requires_capture": _l("Authorised, not captured"),
    "succeeded": _l("Captured"),
    "canceled": _l("Cancelled"),
}
KIND_LABELS = {
    "missing_at_stripe": _l("Missing at Stripe"),
    "missing_here": _l("Missing in our records"),
    "status": _l("Status differs"),
    "amount": _l("Amount differs"),
    "captured": _l("Captured amount differs"),
    "refunded": _l("Refund total differs"),
    "unknown_refund": _l("Refund unknown to us"),
}


class ReconciliationError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Mismatch:
    kind: str
    intent_id: str | None
    payment: Payment | None
    ours: str
    stripe: str
    detail: str = ""

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass
class Report:
    period: Period
    currency: str
    payments_checked: int = 0
    intents_listed: int = 0
    refunds_listed: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for mismatch in self.mismatches:
            found[mismatch.kind] += 1
        return dict(found)

    def page(self, number: int, size: int) -> Page:
        total = len(self.mismatches)
        pages = max(1, -(-total // size))
        number = max(1, min(number, pages))
        return Page(items=self.mismatches[(number - 1) * size:number * size], total=total,
                    page=number, page_size=size)


def gateway() -> StripeGateway:
    return StripeGateway.from_config(current_app.config)


@dataclass
class _StripeIntent:
    id: str
    status: str
    amount: int
    captured: int
    refunded: int
    refund_ids: set[str]
    metadata: dict


def _stripe_facts(intent: dict, refunds_by_intent: dict[str, list[dict]],
                  refunds_by_charge: dict[str, list[dict]]) -> _StripeIntent:
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, dict) else {}
    charge_id = charge.get("id") or (intent.get("latest_charge")
                                     if isinstance(intent.get("latest_charge"), str) else None)
    own = [r for r in refunds_by_intent.get(intent["id"], [])
           if r.get("status") in ("succeeded", "pending", None)]
    if intent.get("amount_received") is not None:  # real Stripe
        captured = int(intent["amount_received"])
    elif charge.get("captured"):  # localstripe: the uncaptured rest is a refund on the charge
        rest = sum(int(r.get("amount") or 0) for r in refunds_by_charge.get(charge_id, [])
                   if not r.get("payment_intent"))
        captured = int(charge.get("amount") or 0) - rest
    else:
        captured = 0
    return _StripeIntent(id=intent["id"], status=intent.get("status") or "",
                         amount=int(intent.get("amount") or 0), captured=captured,
                         refunded=sum(int(r.get("amount") or 0) for r in own),
                         refund_ids={r["id"] for r in own},
                         metadata=dict(intent.get("metadata") or {}))


def _stripe_status(status: str) -> str:
    return str(STRIPE_STATUS_LABELS.get(status, status))


def _our_status(payment: Payment) -> str:
    return payment_methods.status_badge(payment.method, payment.status)[0]


def _money(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def _compare(report: Report, payment: Payment, facts: _StripeIntent) -> None:
    currency = payment.currency
    intent_id = facts.id
    if facts.status not in EXPECTED.get(payment.status, set()):
        report.mismatches.append(Mismatch("status", intent_id, payment, _our_status(payment),
                                          _stripe_status(facts.status)))
    if facts.amount != payment.amount:
        report.mismatches.append(Mismatch("amount", intent_id, payment,
                                          _money(payment.amount, currency),
                                          _money(facts.amount, currency)))
    if facts.captured != payment.amount_captured:
        report.mismatches.append(Mismatch("captured", intent_id, payment,
                                          _money(payment.amount_captured, currency),
                                          _money(facts.captured, currency)))
    if facts.refunded != payment.amount_refunded:
        report.mismatches.append(Mismatch("refunded", intent_id, payment,
                                          _money(payment.amount_refunded, currency),
                                          _money(facts.refunded, currency)))
    ours = {r.stripe_refund_id for r in payment.refunds if r.stripe_refund_id}
    for refund_id in sorted(facts.refund_ids - ours):
        report.mismatches.append(Mismatch("unknown_refund", intent_id, payment, "—", refund_id,
                                          _("A refund made at Stripe, not through the "
                                            "platform.")))
    for refund_id in sorted(ours - facts.refund_ids):
        report.mismatches.append(Mismatch("refunded", intent_id, payment, refund_id, "—",
                                          _("Our refund is not listed at Stripe.")))


def reconcile(session: Session, period: Period, gw: StripeGateway,
              currency: str | None = None) -> Report:
    """Compare our card payments of ``period`` with Stripe's PaymentIntents and refunds."""
    currency = currency or current_app.config.get("CURRENCY", "CNY")
    start, end = period.bounds()
    report = Report(period, currency)
    payments = list(session.scalars(
        select(Payment).where(Payment.method.in_(payment_methods.names(reconcile_with_stripe=True)),
                              Payment.created_at >= start,
                              Payment.created_at < end)
        .options(selectinload(Payment.refunds), selectinload(Payment.order))
        .order_by(Payment.id)))
    report.payments_checked = len(payments)
    try:
        intents = list(gw.list_payment_intents(int(start.timestamp()), int(end.timestamp())))
        refunds = list(gw.list_refunds(int(start.timestamp())))
    except GatewayError as exc:
        raise ReconciliationError(_("Stripe could not be asked: %(error)s",
                                    error=exc.message)) from exc
    report.intents_listed = len(intents)
    report.refunds_listed = len(refunds)
    refunds_by_intent: dict[str, list[dict]] = defaultdict(list)
    refunds_by_charge: dict[str, list[dict]] = defaultdict(list)
    for refund in refunds:
        if refund.get("payment_intent"):
            refunds_by_intent[refund["payment_intent"]].append(refund)
        if refund.get("charge"):
            refunds_by_charge[refund["charge"]].append(refund)

    by_intent = {p.stripe_payment_intent_id: p for p in payments if p.stripe_payment_intent_id}
    listed_ids = {intent["id"] for intent in intents}
    # Intents of the month that belong to payments made just outside it (a month boundary).
    strays = [i["id"] for i in intents if i["id"] not in by_intent]
    if strays:
        for payment in session.scalars(select(Payment).where(
                Payment.stripe_payment_intent_id.in_(strays))
                .options(selectinload(Payment.refunds))):
            by_intent[payment.stripe_payment_intent_id] = payment

    for intent in intents:
        facts = _stripe_facts(intent, refunds_by_intent, refunds_by_charge)
        payment = by_intent.get(intent["id"])
        if payment is None:
            meta = facts.metadata
            report.mismatches.append(Mismatch(
                "missing_here", intent["id"], None, "—",
                f"{_stripe_status(facts.status)}, {_money(facts.amount, currency)}",
                _("Stripe intent with order %(number)s; no payment of ours records it.",
                  number=meta["order_number"]) if meta.get("order_number") else
                _("Stripe intent with no order in its metadata; no payment of ours records "
                  "it.")))
            continue
        _compare(report, payment, facts)

    for payment in payments:
        intent_id = payment.stripe_payment_intent_id
        if not intent_id or intent_id in listed_ids:
            continue
        # Created just outside the month at Stripe, or really missing: ask for it directly
        # (rare, so one call each is fine).
        try:
            intent = gw.retrieve_intent(intent_id)
        except GatewayError:
            report.mismatches.append(Mismatch(
                "missing_at_stripe", intent_id, payment, _our_status(payment), _("not found"),
                _("Our payment names a PaymentIntent Stripe does not have.")))
            continue
        _compare(report, payment, _stripe_facts(intent, refunds_by_intent, refunds_by_charge))
    report.mismatches.sort(key=lambda m: (m.payment.id if m.payment else 0, m.kind))
    return report
