"""Checkout: the cart becomes one order per provider, with an optional innovation voucher,
paid by one of the payment methods a buyer can choose (orders.payments.choices()).

Exactly-once: the checkout page carries a random one-time token in a hidden field. The first
statement of ``place_orders`` inserts a ``Checkout`` row with that token, which is UNIQUE: a
double click, a re-posted form or two simultaneous requests all race for the same row, the
database lets one win, and the others get back the winner's checkout (one set of orders, one
payment). Independently, the cart lines are deleted with a row-count check, so two checkouts
of the same cart with different tokens cannot both succeed either.
"""

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from marketplace import permissions
from marketplace.database import utcnow
from marketplace.i18n import local_today
from marketplace.models import User
from orders import cart as carts
from orders import commission, contracts, payments, timeline, vouchers, workflow
from orders.models import CartLine, Checkout, Order, OrderLine, Voucher

DEFAULT_PAYMENT_WINDOW_DAYS = 3


class CheckoutError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class CheckoutInput:
    token: str
    payment_method: str
    voucher_id: int | None = None
    requirements: dict[int, str] = field(default_factory=dict)  # provider id -> text


@dataclass
class PlannedOrder:
    group: carts.CartGroup
    voucher: int = 0

    @property
    def due(self) -> int:
        return self.group.subtotal - self.voucher


@dataclass
class Plan:
    orders: list[PlannedOrder]
    voucher: Voucher | None

    @property
    def total(self) -> int:
        return sum(p.group.subtotal for p in self.orders)

    @property
    def voucher_total(self) -> int:
        return sum(p.voucher for p in self.orders)

    @property
    def due(self) -> int:
        return self.total - self.voucher_total


def _require_buyer(user: User) -> None:
    if not permissions.is_buyer_account(user):
        raise CheckoutError(_("Only enterprise accounts can buy services."), status=403)


def usable_voucher(session: Session, user: User, voucher_id: int | None,
                   today: date) -> Voucher | None:
    if not voucher_id:
        return None
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or voucher.organisation_id != user.organisation_id:
        raise CheckoutError(_("That voucher does not belong to your enterprise."), status=403)
    vouchers.read_current(session, voucher)
    if not vouchers.is_valid_on(voucher, today):
        raise CheckoutError(_("That voucher is used up, expired or its programme has closed."))
    return voucher


def plan(session: Session, cart_view: carts.CartView, voucher: Voucher | None) -> Plan:
    """How a voucher spreads over the orders: per order up to the programme's share of the
    voucher-eligible lines, while the voucher balance and the programme budget last."""
    planned = [PlannedOrder(group=group) for group in cart_view.groups]
    if voucher is not None:
        balance, remaining = voucher.balance, voucher.programme.remaining
        for item in planned:
            eligible = sum(line.package.price * line.quantity for line in item.group.lines
                           if line.id not in item.group.problems
                           and vouchers.product_eligible(voucher.programme, line.product))
            cover = vouchers.allowance(voucher, eligible, balance, remaining)
            item.voucher = cover
            balance -= cover
            remaining -= cover
    return Plan(orders=planned, voucher=voucher)


def preview(session: Session, user: User, voucher_id: int | None, today: date) -> Plan:
    _require_buyer(user)
    voucher = usable_voucher(session, user, voucher_id, today)
    return plan(session, carts.view(session, user), voucher)


@dataclass
class CheckoutResult:
    checkout: Checkout
    replayed: bool  # True: this token was already used; these are the first request's orders


def find_checkout(session: Session, token: str) -> Checkout | None:
    return session.scalar(select(Checkout).where(Checkout.token == token)
                          .options(selectinload(Checkout.orders)))


def place_orders(session: Session, user: User, data: CheckoutInput,
                 now: datetime | None = None) -> CheckoutResult:
    """Create the orders of a checkout (caller commits, then pays the card orders)."""
    _require_buyer(user)
    if user.organisation is not None and user.organisation.suspended:
        from providers.credibility import suspended_buyer_message

        raise CheckoutError(suspended_buyer_message(user.organisation), status=403)
    now = now or utcnow()
    if data.payment_method not in dict(payments.choices()):
        raise CheckoutError(_("Choose how to pay."))
    if not data.token or len(data.token) > 64:
        raise CheckoutError(_("This checkout form is incomplete. Reload the page and try again."))
    checkout = Checkout(token=data.token, user_id=user.id, buyer_org_id=user.organisation_id,
                        payment_method=data.payment_method, voucher_id=data.voucher_id or None)
    session.add(checkout)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = find_checkout(session, data.token)
        if existing is None or existing.user_id != user.id:
            raise CheckoutError(_("This checkout form was already used. Reload the page.")) from None
        return CheckoutResult(checkout=existing, replayed=True)

    cart = carts.get_cart(session, user)
    lines = carts.lines_for(session, cart.id) if cart else []
    if not lines:
        raise CheckoutError(_("Your cart is empty."))
    cart_view = carts.group_lines(session, lines)
    if cart_view.problems:
        raise CheckoutError(_("Some services in your cart can no longer be bought: %(reasons)s "
                              "Remove them from the cart and try again.",
                              reasons="; ".join(sorted(set(cart_view.problems.values())))))
    if len(cart_view.currencies) > 1:
        raise CheckoutError(
            _("Services priced in different currencies must be bought separately."))
    # Claim the cart: if another checkout took these lines a moment ago, stop here.
    claimed = session.execute(delete(CartLine).where(CartLine.id.in_([ln.id for ln in lines]))
                              .execution_options(synchronize_session=False))
    if claimed.rowcount != len(lines):
        raise CheckoutError(_("Your cart changed while you were checking out "
                              "(perhaps in another tab). Review it and try again."), status=409)

    voucher = usable_voucher(session, user, data.voucher_id, local_today(now))
    the_plan = plan(session, cart_view, voucher)
    window = _setting("PAYMENT_WINDOW_DAYS", DEFAULT_PAYMENT_WINDOW_DAYS)
    for item in the_plan.orders:
        order = _create_order(session, user, item.group, data, checkout, now, window)
        if voucher is not None and item.voucher > 0:
            try:
                vouchers.redeem(session, voucher, order, item.voucher)
            except vouchers.VoucherError as exc:
                raise CheckoutError(exc.message, status=409) from None
        if order.amount_due == 0:
            payments.voucher.paid_in_full(session, order, workflow.SYSTEM, now=now)
        elif payments.get(data.payment_method).begins_at_checkout:
            payments.get(data.payment_method).begin(session, order)
    session.flush()
    session.refresh(checkout)
    return CheckoutResult(checkout=checkout, replayed=False)


def _setting(name: str, default: int) -> int:
    try:
        return int(current_app.config.get(name, default))
    except RuntimeError:
        return default


def _create_order(session: Session, user: User, group: carts.CartGroup, data: CheckoutInput,
                  checkout: Checkout, now: datetime, window_days: int) -> Order:
    first = group.lines[0].product
    order = Order(
        number=f"tmp-{uuid.uuid4().hex[:24]}", kind="package", checkout_id=checkout.id,
        buyer_org_id=user.organisation_id, buyer_user_id=user.id,
        provider_org_id=group.provider.id, product_id=first.id, category_id=first.category_id,
        title=_title(group), currency=group.currency, subtotal=group.subtotal,
        commission_bp=commission.rate_for(session, group.provider.id, first.category_id),
        requirements=(data.requirements.get(group.provider.id) or "").strip()[:10_000],
        payment_method=data.payment_method, payment_due_at=now + timedelta(days=window_days),
        created_at=now)
    for line in group.lines:
        order.lines.append(OrderLine(
            product_id=line.product_id, package_id=line.package_id,
            product_title=line.product.title, package_name=line.package.name,
            unit_price=line.package.price, quantity=line.quantity,
            delivery_days=line.package.delivery_days, deliverables=line.package.deliverables))
    session.add(order)
    session.flush()
    order.number = order_number(order, now)
    items = len(group.lines)
    workflow.record_event(session, order, "placed", user, note=timeline.note(
        "placed_one" if items == 1 else "placed_many", count=items))
    session.flush()
    contracts.ensure_for_order(session, order, user, now)  # large packages carry a 合同
    return order


def order_number(order: Order, now: datetime) -> str:
    return f"SO-{now:%y%m%d}-{order.id:06d}"


def _title(group: carts.CartGroup) -> str:
    first = group.lines[0]
    title = f"{first.product.title} · {first.package.name}"
    if len(group.lines) > 1:
        title += f" + {len(group.lines) - 1} more"
    return title[:200]
