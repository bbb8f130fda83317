"""Builders shared by the buying tests: parties of an order, and orders in a given state."""

from dataclasses import dataclass

import factories
from helpers import login, logout, pdf_bytes  # noqa: F401  (shared helpers, re-exported)
from sqlalchemy import update

from marketplace.models import Organisation, User
from orders.models import Order, OrderLine


@dataclass
class Parties:
    buyer_org: Organisation
    buyer: User
    provider_org: Organisation
    provider: User
    staff: User
    outsider: User  # an enterprise member with no business in the order

    def actor(self, role: str):
        return {"buyer": self.buyer, "provider": self.provider, "staff": self.staff,
                "system": None, "outsider": self.outsider}[role]


def parties(session) -> Parties:
    buyer_org = factories.enterprise(session)
    provider_org = factories.provider(session)
    other = factories.enterprise(session)
    return Parties(buyer_org=buyer_org, buyer=factories.user(session, buyer_org),
                   provider_org=provider_org, provider=factories.user(session, provider_org),
                   staff=factories.user(session, role="staff"),
                   outsider=factories.user(session, other))


_numbers = iter(range(1, 10**9))


def order(session, p: Parties, status: str = "pending_payment", price: int = 500000,
          commission_bp: int = 1000, **fields) -> Order:
    """An order as checkout would leave it, then put straight into ``status``."""
    product = fields.pop("product", None) or factories.product(session, p.provider_org)
    package = product.packages[0] if product.packages else None
    created = Order(number=f"T-{next(_numbers):08d}", buyer_org_id=p.buyer_org.id,
                    buyer_user_id=p.buyer.id, provider_org_id=p.provider_org.id,
                    product_id=product.id, category_id=product.category_id,
                    title=fields.pop("title", product.title), currency="CNY", subtotal=price,
                    commission_bp=commission_bp, **fields)
    created.lines.append(OrderLine(product_id=product.id,
                                   package_id=package.id if package else None,
                                   product_title=product.title,
                                   package_name=package.name if package else "Quote",
                                   unit_price=price, quantity=1, delivery_days=10))
    session.add(created)
    session.flush()
    if status != "pending_payment":
        set_status(session, created, status)
    return created


def set_status(session, target: Order, status: str) -> None:
    session.execute(update(Order).where(Order.id == target.id).values(status=status)
                    .execution_options(synchronize_session=False))
    session.flush()
    session.refresh(target)


def drain_credibility(session, now=None):
    """Run the after-commit credibility job now, as the jobs loop would after the commit:
    order transitions only mark both parties in credibility_dirty (marketplace/events.py)."""
    from providers.credibility import drain_dirty

    return drain_dirty(session, now, limit=10**6)


def funded_order(session, p, shares=(3000, 3000, 4000)):
    """An order paid by bank transfer (money in escrow at once), accepted, with milestones
    "Step 1", "Step 2", ... of ``shares`` (basis points)."""
    from orders import payments, services

    placed = order(session, p)
    session.commit()
    payments.begin_bank_transfer(session, placed)
    payments.mark_transfer_received(session, placed, p.staff, placed.amount_due, "BOC 1")
    session.commit()
    services.accept(session, placed, p.provider)
    for number, share in enumerate(shares, start=1):
        services.add_milestone(session, placed, p.provider, f"Step {number}", share, None)
    session.commit()
    session.refresh(placed)
    return placed
