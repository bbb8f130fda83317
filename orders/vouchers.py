"""Innovation vouchers: programmes (admin), grants to enterprises (staff), redemption at
checkout and value given back on cancellation or refund.

A redemption takes value from two places at once, the voucher's balance and the programme's
remaining budget, each with a conditional UPDATE (``... WHERE balance >= :amount``) whose row
count is checked. Two enterprises spending the last of a budget at the same moment cannot
both succeed, on SQLite or PostgreSQL; the CHECK constraints are the last line of defence.
"""

import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from catalog.models import Category, Product
from marketplace.audit import record as audit_record
from marketplace.models import Organisation, User
from marketplace.notifications import notify_organisation
from orders.models import Order, Voucher, VoucherProgramme, VoucherRedemption
from orders.money import format_amount, voucher_cover

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class VoucherError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class ProgrammeInput:
    name: str
    funder: str
    budget: int
    valid_from: date
    valid_until: date
    max_share_bp: int
    eligible_category_ids: list[int]
    currency: str = "CNY"


def create_programme(session: Session, admin: User, data: ProgrammeInput) -> VoucherProgramme:
    if not data.name.strip():
        raise VoucherError("Give the programme a name.", "name")
    if not data.funder.strip():
        raise VoucherError("Say who funds the programme.", "funder")
    if data.budget <= 0:
        raise VoucherError("The budget must be more than zero.", "budget")
    if data.valid_until < data.valid_from:
        raise VoucherError("The programme must end after it starts.", "valid_until")
    if not 0 < data.max_share_bp <= 10_000:
        raise VoucherError("The maximum share is between 0% and 100%.", "max_share")
    known = set(session.scalars(select(Category.id)
                                .where(Category.id.in_(data.eligible_category_ids or [0]))))
    if set(data.eligible_category_ids) - known:
        raise VoucherError("Unknown category.", "categories")
    programme = VoucherProgramme(
        name=data.name.strip(), funder=data.funder.strip(), currency=data.currency,
        budget=data.budget, remaining=data.budget, valid_from=data.valid_from,
        valid_until=data.valid_until, max_share_bp=data.max_share_bp,
        eligible_category_ids=sorted(known), created_by_id=admin.id)
    session.add(programme)
    session.flush()
    audit_record(session, admin, "voucher_programme.create", programme,
                 budget=data.budget, funder=programme.funder)
    return programme


def new_code() -> str:
    return "CV-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def grant(session: Session, staff: User, programme: VoucherProgramme,
          organisation: Organisation, amount: int, note: str = "") -> Voucher:
    if organisation.kind != "enterprise":
        raise VoucherError("Vouchers are granted to enterprises.", "organisation")
    if not programme.active:
        raise VoucherError("This programme is closed.")
    if amount <= 0:
        raise VoucherError("The voucher amount must be more than zero.", "amount")
    if amount > programme.budget:
        raise VoucherError("A voucher cannot be larger than the programme's whole budget.",
                           "amount")
    voucher = Voucher(programme_id=programme.id, organisation_id=organisation.id, code=new_code(),
                      amount=amount, balance=amount, note=note.strip(), granted_by_id=staff.id)
    session.add(voucher)
    session.flush()
    audit_record(session, staff, "voucher.grant", organisation,
                 voucher=voucher.code, amount=amount, programme=programme.id)
    notify_organisation(
        session, organisation, "voucher_granted",
        f"Innovation voucher granted: {format_amount(amount, programme.currency)}",
        f"{programme.funder} granted your enterprise an innovation voucher ({voucher.code}) "
        f"under “{programme.name}”. It can pay up to {programme.max_share_bp / 100:g}% of "
        f"eligible services until {programme.valid_until.isoformat()}.",
        "/vouchers")
    return voucher


def is_valid_on(voucher: Voucher, today: date) -> bool:
    programme = voucher.programme
    return (programme.active and programme.valid_from <= today <= programme.valid_until
            and voucher.balance > 0)


def usable_vouchers(session: Session, organisation_id: int, today: date) -> list[Voucher]:
    vouchers = session.scalars(
        select(Voucher).where(Voucher.organisation_id == organisation_id, Voucher.balance > 0)
        .options(joinedload(Voucher.programme)).order_by(Voucher.granted_at)
    ).unique()
    return [v for v in vouchers if is_valid_on(v, today)]


def organisation_vouchers(session: Session, organisation_id: int) -> list[Voucher]:
    return list(session.scalars(
        select(Voucher).where(Voucher.organisation_id == organisation_id)
        .options(joinedload(Voucher.programme)).order_by(Voucher.granted_at.desc())
    ).unique())


def product_eligible(programme: VoucherProgramme, product: Product) -> bool:
    if not product.voucher_eligible:
        return False
    if not programme.eligible_category_ids:
        return True
    category = product.category
    ids = {category.id} | ({category.parent_id} if category.parent_id else set())
    return bool(ids & set(programme.eligible_category_ids))


def allowance(voucher: Voucher, eligible_amount: int, balance_left: int | None = None,
              budget_left: int | None = None) -> int:
    """The voucher cap, the one rule for checkout (orders.checkout.plan, spreading one
    voucher over several orders: pass what is left after the earlier ones) and for paying a
    quote or application order (apply_to_order): how much the voucher may pay of
    ``eligible_amount`` (the voucher-eligible part of an order), at most the programme's
    share of it, the voucher's balance and the programme's budget left; what the budget has
    left is applied when it is less than the share."""
    programme = voucher.programme
    balance = voucher.balance if balance_left is None else balance_left
    budget = programme.remaining if budget_left is None else budget_left
    return voucher_cover(eligible_amount, programme.max_share_bp, balance, budget)


def read_current(session: Session, voucher: Voucher) -> Voucher:
    """Re-read the voucher's balance and its programme's budget before the cap is computed:
    a copy loaded earlier in this session (another request or a job spent budget since)
    would give a cap larger than what is left, and the redemption would then be refused."""
    session.refresh(voucher)
    session.refresh(voucher.programme)
    return voucher


def redeem(session: Session, voucher: Voucher, order: Order, amount: int) -> VoucherRedemption:
    """Take ``amount`` from the voucher and its programme for ``order``, atomically.

    Raises VoucherError (and changes nothing) when the balance or the budget no longer
    covers it, for instance because another checkout spent it a moment ago.
    """
    if amount <= 0:
        raise VoucherError("Nothing to redeem.")
    session.flush()
    taken = session.execute(
        update(Voucher).where(Voucher.id == voucher.id, Voucher.balance >= amount)
        .values(balance=Voucher.balance - amount)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise VoucherError("Your voucher balance changed while you were checking out. "
                           "Review the amounts and try again.")
    funded = session.execute(
        update(VoucherProgramme)
        .where(VoucherProgramme.id == voucher.programme_id, VoucherProgramme.remaining >= amount)
        .values(remaining=VoucherProgramme.remaining - amount)
        .execution_options(synchronize_session=False))
    if funded.rowcount != 1:
        raise VoucherError("The voucher programme's budget has run out for this amount. "
                           "Check out without the voucher or try again later.")
    redemption = VoucherRedemption(voucher_id=voucher.id, order_id=order.id, amount=amount)
    session.add(redemption)
    order.voucher_amount = amount
    session.flush()
    session.refresh(voucher)
    session.refresh(voucher.programme)
    return redemption


def give_back(session: Session, redemption: VoucherRedemption, amount: int) -> int:
    """Return up to ``amount`` of a redemption to the voucher and the programme budget.
    Returns what was actually given back (never more than is still out)."""
    session.refresh(redemption)
    amount = min(amount, redemption.amount - redemption.returned)
    if amount <= 0:
        return 0
    moved = session.execute(
        update(VoucherRedemption)
        .where(VoucherRedemption.id == redemption.id,
               VoucherRedemption.returned + amount <= VoucherRedemption.amount)
        .values(returned=VoucherRedemption.returned + amount)
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        return 0
    session.execute(update(Voucher).where(Voucher.id == redemption.voucher_id)
                    .values(balance=Voucher.balance + amount)
                    .execution_options(synchronize_session=False))
    voucher = session.get(Voucher, redemption.voucher_id)
    session.execute(update(VoucherProgramme).where(VoucherProgramme.id == voucher.programme_id)
                    .values(remaining=VoucherProgramme.remaining + amount)
                    .execution_options(synchronize_session=False))
    session.flush()
    session.refresh(redemption)
    session.refresh(voucher)
    session.refresh(voucher.programme)
    return amount


def redemption_for(session: Session, order_id: int) -> VoucherRedemption | None:
    return session.scalar(select(VoucherRedemption).where(VoucherRedemption.order_id == order_id))


def programme_report(session: Session, programme: VoucherProgramme) -> list[VoucherRedemption]:
    """Redemptions of a programme, for reporting to the funder."""
    return list(session.scalars(
        select(VoucherRedemption).join(Voucher)
        .where(Voucher.programme_id == programme.id)
        .options(joinedload(VoucherRedemption.order), joinedload(VoucherRedemption.voucher))
        .order_by(VoucherRedemption.id)
    ).unique())


def programmes(session: Session) -> list[VoucherProgramme]:
    return list(session.scalars(select(VoucherProgramme).order_by(VoucherProgramme.id.desc())))


def apply_to_order(session: Session, voucher: Voucher, order: Order) -> VoucherRedemption:
    """Apply a voucher to one order awaiting payment (quote and application orders, or a
    retry): up to the programme's share of the order, the balance and the budget left."""
    if order.status != "pending_payment":
        raise VoucherError("A voucher can only be applied before the order is paid.")
    if order.live_payment is not None:
        raise VoucherError("A payment is already under way for this order; finish or cancel "
                           "it before applying a voucher.")
    if redemption_for(session, order.id) is not None:
        raise VoucherError("A voucher is already applied to this order.")
    if voucher.organisation_id != order.buyer_org_id:
        raise VoucherError("That voucher belongs to another enterprise.")
    if order.product is None or not product_eligible(voucher.programme, order.product):
        raise VoucherError("This service is not eligible for that voucher.")
    amount = allowance(read_current(session, voucher), order.subtotal)
    if amount <= 0:
        raise VoucherError("The voucher has nothing left to apply here.")
    return redeem(session, voucher, order, amount)
