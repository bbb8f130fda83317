"""A month of orders for the settlement tests, built through the real order and payment
services (bank transfers, a card payment through localstripe, vouchers, refunds, rulings).

Hand computation of every figure (amounts in fen; fee = commission rounded half up to the fen
on what the order kept; vouchers cover at most the programme's share, rounded down):

Provider A, contract rate 10% (1000 bp)
  A1  ¥1,000.00 bank transfer, completed
        gross 100000, refunds 0, voucher 0, fee 10000, net 90000
  A2  ¥800.00, voucher programme P1 (30%): voucher 24000, transfer 56000; completed, then a
      staff refund of ¥100.01 after completion, split in proportion to the voucher's share
      (voucher part rounded up): voucher ceil(10001 * 30%) = ceil(3000.3) = 3001, cash 7000.
      Kept 80000 - 10001 = 69999; fee on it 6999.9 -> 7000 (the fee goes back
      8000 - 7000 = 1000, the institution bears 9001)
        gross 80000, refunds 10001, voucher 20999, fee 7000, net 72000 - 9001 = 62999
  A3  ¥500.00 bank transfer, disputed, ruling "no refund"
        gross 50000, refunds 0, voucher 0, fee 5000, net 45000
  A total: gross 230000, refunds 10001, voucher 20999, fee 22000, net 197999
           (230000 - 10001 = 219999 = 22000 + 197999)

Provider B, contract rate 12.5% (1250 bp)
  B1  ¥333.33, voucher programme P2 (50%): 33333 * 50% = 16666.5 -> 16666, transfer 16667;
      disputed, partial ruling ¥200.00 back, split in proportion: voucher
      ceil(20000 * 16666 / 33333) = ceil(9999.69...) = 10000, cash 10000. Kept
      33333 - 20000 = 13333 (cash 6667, voucher 6666); fee 1666.625 -> 1667, net 11666
        gross 33333, refunds 20000, voucher 6666, fee 1667, net 11666
  B2  ¥1,200.00 bank transfer, disputed, ruling "full refund"
        gross 120000, refunds 120000, voucher 0, fee 0, net 0
  B3  ¥2,000.00 card (localstripe), disputed, partial ruling ¥500.00: 150000 captured,
      50000 of the hold released; fee 18750, net 131250
        gross 200000, refunds 50000, voucher 0, fee 18750, net 131250
  B total: gross 353333, refunds 190000, voucher 6666, fee 20417, net 142916
           (353333 - 190000 = 163333 = 20417 + 142916)

Batch: 6 orders, gross 583333, refunds 200001, voucher 27665, fee 42417, net 340915.

Not in the batch: X1 completed last month, X2 still in progress, X3 cancelled, and X4
completed this month but with its money still in escrow (waiting).
"""

from dataclasses import dataclass, replace
from datetime import timedelta

import factories
import order_support as osup
from sqlalchemy import update

from marketplace.database import utcnow
from marketplace.i18n import local_today
from orders import commission, ledger, payments, services, settlement, vouchers
from orders.models import Order

EXPECTED = {
    "A": {"gross": 230000, "refunds": 10001, "voucher": 20999, "fee": 22000, "net": 197999},
    "B": {"gross": 353333, "refunds": 190000, "voucher": 6666, "fee": 20417, "net": 142916},
    "batch": {"gross": 583333, "refunds": 200001, "voucher": 27665, "fee": 42417,
              "net": 340915},
    "A1": {"gross": 100000, "refunds": 0, "voucher": 0, "fee": 10000, "net": 90000},
    "A2": {"gross": 80000, "refunds": 10001, "voucher": 20999, "fee": 7000, "net": 62999},
    "A3": {"gross": 50000, "refunds": 0, "voucher": 0, "fee": 5000, "net": 45000},
    "B1": {"gross": 33333, "refunds": 20000, "voucher": 6666, "fee": 1667, "net": 11666},
    "B2": {"gross": 120000, "refunds": 120000, "voucher": 0, "fee": 0, "net": 0},
    "B3": {"gross": 200000, "refunds": 50000, "voucher": 0, "fee": 18750, "net": 131250},
}
CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


@dataclass
class Month:
    period: settlement.Period
    a: osup.Parties
    b: osup.Parties
    orders: dict[str, Order]
    programmes: dict


def _paid(session, p: osup.Parties, price: int, voucher=None, card: bool = False) -> Order:
    product = factories.product(session, p.provider_org, voucher_eligible=True, prices=(price,))
    order = osup.order(session, p, price=price, product=product,
                       commission_bp=commission.rate_for(session, p.provider_org.id,
                                                         product.category_id))
    if voucher is not None:
        vouchers.apply_to_order(session, voucher, order)
    if card:
        payment = payments.begin_card_payment(session, order)
        session.commit()
        payments.pay_with_test_card(session, payment, CARD)
    else:
        payment = payments.begin_bank_transfer(session, order)
        payments.mark_transfer_received(session, order, p.staff, payment.amount, "TRX")
    session.commit()
    services.accept(session, order, p.provider)
    services.deliver(session, order, p.provider, "Report delivered")
    return order


def _disputed(session, p, order, ruling, refund=None):
    services.dispute(session, order, p.buyer, "Not what we agreed")
    services.resolve(session, order, p.staff, ruling, refund, "Ruling after review")
    return order


def build_month(session) -> Month:
    a = osup.parties(session)
    provider_b = factories.provider(session)
    b = replace(a, provider_org=provider_b, provider=factories.user(session, provider_b))
    commission.set_provider_rate(session, a.provider_org.id, 1000, "Contract A")
    commission.set_provider_rate(session, b.provider_org.id, 1250, "Contract B")
    today = local_today()
    programmes = {}
    for key, share in (("P1", 3000), ("P2", 5000)):
        programmes[key] = vouchers.create_programme(session, a.staff, vouchers.ProgrammeInput(
            name=f"Innovation vouchers {key} 创新券", funder=f"Science bureau {key}",
            budget=10_000_000, valid_from=today - timedelta(days=40),
            valid_until=today + timedelta(days=300), max_share_bp=share,
            eligible_category_ids=[]))
    v1 = vouchers.grant(session, a.staff, programmes["P1"], a.buyer_org, 100_000)
    v2 = vouchers.grant(session, a.staff, programmes["P2"], a.buyer_org, 100_000)
    session.commit()

    orders = {}
    orders["A1"] = _paid(session, a, 100000)
    services.complete(session, orders["A1"], a.buyer)
    orders["A2"] = _paid(session, a, 80000, voucher=v1)
    services.complete(session, orders["A2"], a.buyer)
    payments.staff_refund(session, orders["A2"], a.staff, 10001, "Report late by a week")
    session.commit()
    orders["A3"] = _disputed(session, a, _paid(session, a, 50000), "none")
    orders["B1"] = _disputed(session, b, _paid(session, b, 33333, voucher=v2), "partial", 20000)
    orders["B2"] = _disputed(session, b, _paid(session, b, 120000), "full")
    orders["B3"] = _disputed(session, b, _paid(session, b, 200000, card=True), "partial", 50000)

    # Outside the batch.
    orders["X1"] = _paid(session, a, 70000)
    services.complete(session, orders["X1"], a.buyer)
    last_month = today.replace(day=1) - timedelta(days=3)
    session.execute(update(Order).where(Order.id == orders["X1"].id).values(
        completed_at=utcnow().replace(year=last_month.year, month=last_month.month, day=10)))
    orders["X2"] = _paid(session, b, 60000)
    orders["X3"] = osup.order(session, a, price=40000)
    services.cancel(session, orders["X3"], a.buyer, "Changed our mind")
    orders["X4"] = osup.order(session, a, price=45000)
    ledger.transfer_received(session, orders["X4"], 45000)
    osup.set_status(session, orders["X4"], "completed")
    session.execute(update(Order).where(Order.id == orders["X4"].id)
                    .values(completed_at=utcnow()))
    session.commit()
    for order in orders.values():
        session.refresh(order)
    return Month(settlement.month(f"{today:%Y-%m}"), a, b, orders, programmes)


def figures(holder) -> dict[str, int]:
    return {name: getattr(holder, name) for name in settlement.FIGURES}
