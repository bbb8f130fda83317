"""Corporate bank transfer: the order shows the platform's account and a payment reference;
staff confirm receipt (the money is then captured: with the platform at once). Refunds are
recorded for staff to pay back by transfer."""

from sqlalchemy.orm import Session

from marketplace import audit
from marketplace.database import utcnow
from marketplace.models import User
from orders import ledger, workflow
from orders.models import Order, Payment
from orders.money import format_amount
from orders.payments.base import PaymentMethod, get, register
from orders.payments.core import PaymentError, _claim, _move, order_paid, refund_payment


def bank_reference(order: Order) -> str:
    """A payment reference unique to the order, with a check digit against typos."""
    digits = f"{order.id:08d}"
    check = sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10
    return f"ISS{digits}{check}"


def begin_bank_transfer(session: Session, order: Order) -> Payment:
    if order.status != "pending_payment":
        raise PaymentError("This order is not awaiting payment.")
    if order.amount_due <= 0:
        raise PaymentError("Nothing is left to pay on this order.")
    live = order.live_payment
    if live is not None:
        if live.method == "bank_transfer" and live.status == "pending":
            return live
        if live.status in ("held", "captured"):
            raise PaymentError("This order is already paid.")
    _claim(session, order)
    if live is not None:
        get(live.method).cancel(session, live)
    order.payment_method = "bank_transfer"
    if not order.bank_reference:
        order.bank_reference = bank_reference(order)
    payment = Payment(order_id=order.id, method="bank_transfer", status="pending",
                      currency=order.currency, amount=order.amount_due)
    session.add(payment)
    session.flush()
    session.refresh(order)
    return payment


def mark_transfer_received(session: Session, order: Order, staff: User, amount: int,
                           reference: str = "") -> Payment:
    """Staff confirm the transfer arrived. The amount must match what is due."""
    workflow.check(order, "pay", staff)
    payment = order.live_payment
    if payment is None or payment.method != "bank_transfer" or payment.status != "pending":
        raise PaymentError("This order is not waiting for a bank transfer.")
    if amount != payment.amount:
        raise PaymentError(
            f"The amount received ({format_amount(amount, order.currency)}) does not match the "
            f"amount due ({format_amount(payment.amount, order.currency)}). Contact the buyer; "
            "the order stays unpaid.", status=400)
    now = utcnow()
    if not _move(session, payment, ("pending",), "captured", amount_authorised=amount,
                 amount_captured=amount, authorised_at=now, captured_at=now,
                 received_by_id=staff.id, received_reference=reference.strip()[:64] or None):
        raise PaymentError("This transfer was already recorded.")
    ledger.transfer_received(session, order, amount)
    audit.record(session, staff, "order.transfer_received", order, None, number=order.number,
                 amount=amount, reference=reference.strip()[:64] or None)
    order_paid(session, order, staff, now=now)
    return payment


@register
class BankTransfer(PaymentMethod):
    name = "bank_transfer"
    label = "Corporate bank transfer"
    short_label = "Bank transfer"
    partial = "checkout/methods/bank_transfer.html"
    instructions_partial = "orders/payment_methods/bank_transfer.html"
    status_labels = {"pending": "Awaiting transfer", "captured": "Transfer received"}
    position = 20
    begins_at_checkout = True  # the order shows the account and reference at once
    begun_message = "Transfer the amount due with the payment reference shown below."

    def begin(self, session: Session, order: Order, **kwargs) -> Payment:
        return begin_bank_transfer(session, order)

    def confirm(self, session: Session, payment: Payment, staff: User | None = None,
                amount: int = 0, reference: str = "", **kwargs) -> Payment:
        return mark_transfer_received(session, payment.order, staff, amount, reference)

    def cancel(self, session: Session, payment: Payment) -> None:
        _move(session, payment, ("pending", "requires_action"), "canceled")

    def follow_order(self, session: Session, payment: Payment, keep_cash: int,
                     gw=None) -> list[str]:
        if payment.status == "pending" and _move(session, payment, ("pending",), "canceled"):
            return ["transfer_cancelled"]
        if payment.status == "captured":
            excess = payment.amount_captured - payment.amount_refunded - keep_cash
            if excess > 0:
                refund_payment(session, payment, excess, None,
                               "Returned by bank transfer after the order closed")
                return ["transfer_refund"]
        return []
