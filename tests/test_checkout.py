"""Checkout: one order per provider, snapshots, bank transfer, exactly-once under double
submits and concurrent requests (run on PostgreSQL too)."""

import threading
from datetime import date, timedelta

import factories
import pytest
from sqlalchemy import func, select

from marketplace.database import db, utcnow
from orders import cart, checkout, ledger, payments, services, vouchers
from orders.models import Checkout, Order, Payment


@pytest.fixture
def shop(session):
    """A buyer and two institutions with one listing each."""
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org)
    provider_a = factories.provider(session, name="Alpha IP Agency")
    provider_b = factories.provider(session, name="Beta Testing Lab")
    alpha_user = factories.user(session, provider_a)
    beta_user = factories.user(session, provider_b)
    product_a = factories.product(session, provider_a, title="Invention patent filing",
                                  prices=(500000, 1200000), voucher_eligible=True)
    product_b = factories.product(session, provider_b, title="EMC pre-compliance test",
                                  category_slug="testing", prices=(300000,))
    staff = factories.user(session, role="staff")
    session.commit()
    return {"buyer": buyer, "buyer_org": buyer_org, "a": product_a, "b": product_b,
            "alpha": alpha_user, "beta": beta_user, "staff": staff}


def fill_cart(session, shop):
    cart.add(session, shop["buyer"], shop["a"].packages[1].id)
    cart.add(session, shop["buyer"], shop["a"].packages[0].id, quantity=2)
    cart.add(session, shop["buyer"], shop["b"].packages[0].id)
    session.commit()


def test_checkout_splits_the_cart_into_one_order_per_provider(session, shop):
    fill_cart(session, shop)
    result = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer",
        requirements={shop["a"].provider_id: "Two inventions: a sensor and a battery pack."}))
    session.commit()
    orders = sorted(result.checkout.orders, key=lambda o: o.subtotal, reverse=True)
    assert [o.provider_org_id for o in orders] == [shop["a"].provider_id, shop["b"].provider_id]
    alpha, beta = orders
    assert alpha.subtotal == 1200000 + 2 * 500000 and beta.subtotal == 300000
    assert [(line.package_name, line.unit_price, line.quantity) for line in alpha.lines] == [
        ("Standard", 1200000, 1), ("Basic", 500000, 2)]
    assert alpha.requirements.startswith("Two inventions") and beta.requirements == ""
    assert all(o.status == "pending_payment" for o in orders)
    assert alpha.number.startswith("SO-") and alpha.number != beta.number
    assert alpha.bank_reference and alpha.bank_reference != beta.bank_reference
    assert cart.view(session, shop["buyer"]).empty
    # Snapshots: a later price change does not touch the order.
    shop["a"].packages[1].price = 9999900
    session.commit()
    session.refresh(alpha)
    assert alpha.lines[0].unit_price == 1200000


def test_bank_transfer_is_paid_when_staff_confirm_the_exact_amount(session, shop):
    cart.add(session, shop["buyer"], shop["b"].packages[0].id)
    result = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer"))
    session.commit()
    order = result.checkout.orders[0]
    with pytest.raises(payments.PaymentError, match="does not match"):
        payments.mark_transfer_received(session, order, shop["staff"], 299999, "BOC-1")
    session.rollback()
    assert order.status == "pending_payment"
    payments.mark_transfer_received(session, order, shop["staff"], 300000, "BOC-1")
    session.commit()
    assert order.status == "paid" and order.accept_by is not None
    assert order.live_payment.amount_captured == 300000
    assert ledger.balances(session, order.id)["platform_cash"] == 300000
    # The whole way to completion: the money is recognised as fee + payable.
    services.accept(session, order, shop["beta"])
    services.deliver(session, order, shop["beta"], "Report attached")
    session.commit()
    services.complete(session, order, shop["buyer"])
    balances = ledger.balances(session, order.id)
    assert balances["escrow"] == 0 and sum(balances.values()) == 0
    fee = -balances["platform_fee_revenue"]
    assert fee == order.commission_bp * 300000 // 10000
    assert -balances["provider_payable"] == 300000 - fee


def test_unavailable_listings_are_refused_at_checkout_with_a_reason(session, shop):
    fill_cart(session, shop)
    shop["b"].status = "suspended"
    session.commit()
    view = cart.view(session, shop["buyer"])
    assert "suspended" in " ".join(view.problems.values())
    with pytest.raises(checkout.CheckoutError, match="suspended"):
        checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
            token=checkout.new_token(), payment_method="card"))
    session.rollback()
    assert session.scalar(select(func.count(Order.id))) == 0
    assert len(cart.view(session, shop["buyer"]).lines) == 3


def test_the_cart_survives_logging_out_because_it_lives_in_the_database(session, shop):
    cart.add(session, shop["buyer"], shop["a"].packages[0].id)
    session.commit()
    db.session.remove()  # a new request, a new session: nothing is kept in memory
    assert [line.package_id for line in cart.view(db.session, shop["buyer"]).lines] == [
        shop["a"].packages[0].id]


def test_re_posting_the_same_checkout_form_gives_back_the_same_orders(session, shop):
    fill_cart(session, shop)
    token = checkout.new_token()
    first = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=token, payment_method="bank_transfer"))
    session.commit()
    again = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=token, payment_method="bank_transfer"))
    assert again.replayed and again.checkout.id == first.checkout.id
    assert session.scalar(select(func.count(Order.id))) == 2
    assert session.scalar(select(func.count(Payment.id))) == 2


def _race(app, count, work):
    """Run ``work(index)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, [None] * count

    def run(index):
        with app.app_context():
            barrier.wait()
            try:
                results[index] = work(index)
            except Exception as exc:  # noqa: BLE001 - reported below
                db.session.rollback()
                errors[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_simultaneous_checkouts_of_the_same_form_create_one_set_of_orders(app, session, shop):
    fill_cart(session, shop)
    token = checkout.new_token()
    buyer_id = shop["buyer"].id

    def submit(_index):
        from marketplace.models import User

        user = db.session.get(User, buyer_id)
        result = checkout.place_orders(db.session, user, checkout.CheckoutInput(
            token=token, payment_method="bank_transfer"))
        db.session.commit()
        return result.replayed

    results, errors = _race(app, 4, submit)
    assert errors == [None] * 4
    assert sorted(results) == [False, True, True, True]
    session.expire_all()
    assert session.scalar(select(func.count(Checkout.id))) == 1
    assert session.scalar(select(func.count(Order.id))) == 2
    assert session.scalar(select(func.count(Payment.id))) == 2


def test_two_tabs_checking_out_the_same_cart_cannot_both_succeed(app, session, shop):
    fill_cart(session, shop)
    buyer_id = shop["buyer"].id

    def submit(_index):
        from marketplace.models import User

        user = db.session.get(User, buyer_id)
        checkout.place_orders(db.session, user, checkout.CheckoutInput(
            token=checkout.new_token(), payment_method="bank_transfer"))
        db.session.commit()
        return "ok"

    results, errors = _race(app, 3, submit)
    assert results.count("ok") == 1
    assert all(isinstance(e, checkout.CheckoutError) for e in errors if e is not None)
    session.expire_all()
    assert session.scalar(select(func.count(Order.id))) == 2


def test_a_voucher_pays_its_share_and_comes_back_on_cancellation(session, shop):
    programme = vouchers.create_programme(session, shop["staff"], vouchers.ProgrammeInput(
        name="SIP innovation vouchers 2026", funder="SIP Science and Technology Bureau",
        budget=10_000_00, valid_from=date.today() - timedelta(days=1),
        valid_until=date.today() + timedelta(days=365), max_share_bp=5000,
        eligible_category_ids=[]))
    voucher = vouchers.grant(session, shop["staff"], programme, shop["buyer_org"], 4_000_00)
    fill_cart(session, shop)
    result = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer", voucher_id=voucher.id))
    session.commit()
    alpha = next(o for o in result.checkout.orders if o.provider_org_id == shop["a"].provider_id)
    beta = next(o for o in result.checkout.orders if o.provider_org_id != shop["a"].provider_id)
    # Alpha's listing is voucher-eligible: half of 22,000 capped by the 4,000 balance.
    assert alpha.voucher_amount == 4_000_00 and alpha.amount_due == 22_000_00 - 4_000_00
    assert beta.voucher_amount == 0  # not voucher-eligible
    session.refresh(voucher)
    session.refresh(programme)
    assert voucher.balance == 0 and programme.remaining == 6_000_00
    services.cancel(session, alpha, shop["buyer"], "Changed our plans")
    session.refresh(voucher)
    session.refresh(programme)
    assert voucher.balance == 4_000_00 and programme.remaining == 10_000_00
    assert alpha.status == "cancelled" and alpha.live_payment is None


def test_pending_orders_only_get_a_payment_reference_when_paid_by_transfer(session, shop):
    cart.add(session, shop["buyer"], shop["b"].packages[0].id)
    result = checkout.place_orders(session, shop["buyer"], checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card"))
    session.commit()
    order = result.checkout.orders[0]
    assert order.bank_reference is None and order.payments == []
    assert order.payment_due_at > utcnow()
