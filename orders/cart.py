"""The shopping cart: packages of packaged listings, per enterprise user, in the database
(so it survives logging out and follows the user to another browser)."""

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, joinedload

from catalog.models import Package, Product
from catalog.services import visible_products_condition
from marketplace import permissions
from marketplace.models import Organisation, User
from orders.models import Cart, CartLine

MAX_QUANTITY = 99


class CartError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _require_buyer(user: User) -> None:
    if not permissions.is_buyer_account(user):
        raise CartError(_("Only enterprise accounts can buy services."), status=403)


def get_cart(session: Session, user: User, create: bool = False) -> Cart | None:
    cart = session.scalar(select(Cart).where(Cart.user_id == user.id))
    if cart is None and create:
        cart = Cart(user_id=user.id)
        session.add(cart)
        session.flush()
    return cart


def visible_product_ids(session: Session, product_ids: list[int]) -> set[int]:
    if not product_ids:
        return set()
    return set(session.scalars(select(Product.id).where(Product.id.in_(product_ids),
                                                        visible_products_condition())))


def add(session: Session, user: User, package_id: int, quantity: int = 1) -> CartLine:
    _require_buyer(user)
    package = session.get(Package, package_id)
    if package is None:
        raise CartError(_("That package no longer exists."), status=404)
    product = package.product
    if product.pricing_mode != "packaged":
        raise CartError(_("This service is priced by quotation or application, not bought from "
                          "the cart."))
    if product.id not in visible_product_ids(session, [product.id]):
        raise CartError(_("This service is not available right now."), status=404)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise CartError(_("Choose a quantity from 1 to %(max)d.", max=MAX_QUANTITY))
    cart = get_cart(session, user, create=True)
    line = session.scalar(select(CartLine).where(CartLine.cart_id == cart.id,
                                                 CartLine.package_id == package.id))
    if line is None:
        line = CartLine(cart_id=cart.id, product_id=product.id, package_id=package.id,
                        quantity=quantity)
        session.add(line)
    else:
        line.quantity = min(MAX_QUANTITY, line.quantity + quantity)
    session.flush()
    return line


def _own_line(session: Session, user: User, line_id: int) -> CartLine:
    line = session.scalar(select(CartLine).join(Cart).where(CartLine.id == line_id,
                                                            Cart.user_id == user.id))
    if line is None:
        raise CartError(_("That item is not in your cart."), status=404)
    return line


def set_quantity(session: Session, user: User, line_id: int, quantity: int) -> CartLine | None:
    line = _own_line(session, user, line_id)
    if quantity <= 0:
        session.delete(line)
        session.flush()
        return None
    if quantity > MAX_QUANTITY:
        raise CartError(_("Choose a quantity from 1 to %(max)d.", max=MAX_QUANTITY))
    line.quantity = quantity
    session.flush()
    return line


def remove(session: Session, user: User, line_id: int) -> None:
    session.delete(_own_line(session, user, line_id))
    session.flush()


def clear(session: Session, user: User) -> None:
    cart = get_cart(session, user)
    if cart is not None:
        session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))


def line_count(session: Session, user: User) -> int:
    """Items in the user's cart (the navbar badge on every page: one query)."""
    return int(session.scalar(
        select(func.coalesce(func.sum(CartLine.quantity), 0))
        .join(Cart, Cart.id == CartLine.cart_id).where(Cart.user_id == user.id)) or 0)


@dataclass
class CartGroup:
    """The lines of one provider: they become one order at checkout."""

    provider: Organisation
    lines: list[CartLine] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # line id -> why it cannot be bought

    @property
    def subtotal(self) -> int:
        return sum(line.package.price * line.quantity for line in self.lines
                   if line.id not in self.problems)

    @property
    def currency(self) -> str:
        return self.lines[0].product.currency if self.lines else "CNY"


@dataclass
class CartView:
    groups: list[CartGroup]

    @property
    def lines(self) -> list[CartLine]:
        return [line for group in self.groups for line in group.lines]

    @property
    def problems(self) -> dict[int, str]:
        return {k: v for group in self.groups for k, v in group.problems.items()}

    @property
    def total(self) -> int:
        return sum(group.subtotal for group in self.groups)

    @property
    def empty(self) -> bool:
        return not self.groups

    @property
    def currencies(self) -> set[str]:
        return {group.currency for group in self.groups}


def lines_for(session: Session, cart_id: int) -> list[CartLine]:
    return list(session.scalars(
        select(CartLine).where(CartLine.cart_id == cart_id)
        .options(joinedload(CartLine.product).joinedload(Product.provider),
                 joinedload(CartLine.product).joinedload(Product.category),
                 joinedload(CartLine.package))
        .order_by(CartLine.id)
    ).unique())


def view(session: Session, user: User) -> CartView:
    """The cart grouped by provider, with a reason for each line that cannot be bought."""
    cart = get_cart(session, user)
    if cart is None:
        return CartView(groups=[])
    lines = lines_for(session, cart.id)
    return group_lines(session, lines)


def group_lines(session: Session, lines: list[CartLine]) -> CartView:
    visible = visible_product_ids(session, [line.product_id for line in lines])
    groups: dict[int, CartGroup] = {}
    for line in lines:
        group = groups.setdefault(line.product.provider_id, CartGroup(provider=line.product.provider))
        group.lines.append(line)
        problem = problem_with(line, visible)
        if problem:
            group.problems[line.id] = problem
    return CartView(groups=list(groups.values()))


def problem_with(line: CartLine, visible_ids: set[int]) -> str | None:
    product = line.product
    if line.package is None or line.package.product_id != product.id:
        return _("This package was withdrawn by the institution.")
    if product.id not in visible_ids:
        if product.status == "suspended" or product.provider.suspended:
            return _("This service is suspended and cannot be bought.")
        return _("This service is no longer published and cannot be bought.")
    if product.pricing_mode != "packaged":
        return _("This service is now priced by quotation.")
    return None
