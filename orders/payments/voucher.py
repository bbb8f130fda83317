"""Innovation voucher as a payment component: it pays up to its programme's share of an
order (orders.vouchers.allowance, the one cap), and an order it covers entirely is paid with
no other method. The programme and grant rules (budgets, eligibility, giving value back)
stay in orders/vouchers.py; the ledger postings in orders/payments/core.py."""

from sqlalchemy.orm import Session

from orders import vouchers, workflow
from orders.models import Order, Voucher, VoucherRedemption
from orders.payments.base import PaymentMethod, register
from orders.payments.core import order_paid


def apply(session: Session, voucher: Voucher, order: Order,
          actor=workflow.SYSTEM) -> VoucherRedemption:
    """Apply ``voucher`` to an order awaiting payment; an order it covers entirely is paid
    now. Raises vouchers.VoucherError (nothing changes) when it cannot be used."""
    redemption = vouchers.apply_to_order(session, voucher, order)
    paid_in_full(session, order, actor)
    return redemption


def paid_in_full(session: Session, order: Order, actor=workflow.SYSTEM, now=None) -> bool:
    """Nothing is left to pay (a voucher covers it, or the price is zero): the order is paid
    with the voucher method. True if it became paid now."""
    if order.amount_due != 0:
        return False
    order.payment_method = InnovationVoucher.name
    return order_paid(session, order, actor, now=now)


@register
class InnovationVoucher(PaymentMethod):
    name = "voucher"
    label = "Innovation voucher"
    short_label = "Voucher only"
    position = 90
    selectable = False  # pays a share next to another method, or all of a zero balance
    partial = "checkout/methods/voucher.html"

    def begin(self, session: Session, order: Order, voucher: Voucher | None = None,
              **kwargs):
        return apply(session, voucher, order)
