"""Innovation vouchers: programmes (admin), grants (staff), limits at checkout, value given
back, and a budget that cannot be overspent by concurrent checkouts (PostgreSQL too)."""

import threading
from datetime import date, timedelta

import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import db
from marketplace.models import Notification, User
from orders import cart, checkout, ledger, payments, services, vouchers
from orders.models import Order, Voucher, VoucherProgramme, VoucherRedemption


def programme(session, staff, budget=1_000_000, share=5000, categories=()):
    today = date.today()
    return vouchers.create_programme(session, staff, vouchers.ProgrammeInput(
        name="SIP innovation vouchers", funder="SIP Science and Technology Bureau",
        budget=budget, valid_from=today - timedelta(days=1),
        valid_until=today + timedelta(days=90), max_share_bp=share,
        eligible_category_ids=list(categories)))


def test_admin_creates_a_programme_and_staff_grant_vouchers(client, session):
    admin = factories.user(session, role="admin")
    staff = factories.user(session, role="staff")
    enterprise = factories.enterprise(session, name="Suzhou Nano Materials Co., Ltd.")
    member = factories.user(session, enterprise)
    session.commit()
    osup.login(client, staff)
    refused = post_form(client, "/staff/vouchers", {"name": "X", "funder": "Y", "budget": "1"})
    assert refused.status_code == 403
    osup.logout(client)

    osup.login(client, admin)
    ip = factories.category(session, "ip")
    response = post_form(client, "/staff/vouchers", {
        "name": "2026 SME innovation vouchers", "funder": "Suzhou Science Bureau",
        "budget": "500,000.00", "valid_from": date.today().isoformat(),
        "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        "max_share": "50", "categories": [str(ip.id)]})
    assert response.status_code == 302, response.get_data(as_text=True)
    created = session.scalar(select(VoucherProgramme))
    assert created.budget == created.remaining == 50_000_000
    assert created.max_share_bp == 5000 and created.eligible_category_ids == [ip.id]
    osup.logout(client)

    osup.login(client, staff)
    # Staff find the enterprise by its code, then pick it from the list (issue 16).
    found = client.get(f"/staff/vouchers/{created.id}?q={enterprise.credit_code}")
    assert f'value="{enterprise.id}"' in found.get_data(as_text=True)
    response = post_form(client, f"/staff/vouchers/{created.id}", {
        "organisation_id": str(enterprise.id), "amount": "20,000", "note": "Batch 1"})
    assert response.status_code == 302
    voucher = session.scalar(select(Voucher))
    assert voucher.organisation_id == enterprise.id and voucher.balance == 2_000_000
    assert session.scalar(select(Notification).where(Notification.user_id == member.id)
                          ).kind == "voucher_granted"
    osup.logout(client)
    osup.login(client, member)
    assert "¥20,000.00" in client.get("/vouchers").get_data(as_text=True)


def test_a_voucher_covers_only_eligible_services_up_to_the_share(session):
    staff = factories.user(session, role="staff")
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org)
    ip = factories.category(session, "ip")
    scheme = programme(session, staff, budget=10_000_000, share=3000, categories=[ip.id])
    voucher = vouchers.grant(session, staff, scheme, buyer_org, 5_000_000)
    patent = factories.product(session, prices=(1_000_000,), voucher_eligible=True)
    lab = factories.product(session, category_slug="testing", prices=(1_000_000,),
                            voucher_eligible=True)  # eligible listing, wrong category
    not_eligible = factories.product(session, prices=(1_000_000,))
    for product in (patent, lab, not_eligible):
        cart.add(session, buyer, product.packages[0].id)
    plan = checkout.preview(session, buyer, voucher.id, date.today())
    covers = sorted(item.voucher for item in plan.orders)
    assert covers == [0, 0, 300_000]  # 30% of the patent package only


def test_cancelling_a_paid_order_gives_the_voucher_value_back(session):
    staff = factories.user(session, role="staff")
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org)
    scheme = programme(session, staff, budget=400_000, share=10_000)
    voucher = vouchers.grant(session, staff, scheme, buyer_org, 400_000)
    product = factories.product(session, prices=(300_000,), voucher_eligible=True)
    cart.add(session, buyer, product.packages[0].id)
    result = checkout.place_orders(session, buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card", voucher_id=voucher.id))
    session.commit()
    order = result.checkout.orders[0]
    assert order.amount_due == 0 and order.status == "paid"  # fully covered
    session.refresh(scheme)
    assert scheme.remaining == 100_000
    services.cancel(session, order, buyer, "Plans changed")
    session.refresh(scheme)
    session.refresh(voucher)
    assert scheme.remaining == 400_000 and voucher.balance == 400_000
    assert session.scalar(select(VoucherRedemption)).returned == 300_000


def test_refund_after_completion_returns_the_voucher_share_in_a_ruling(session):
    p = osup.parties(session)
    scheme = programme(session, p.staff, budget=1_000_000, share=5000)
    voucher = vouchers.grant(session, p.staff, scheme, p.buyer_org, 1_000_000)
    product = factories.product(session, p.provider_org, prices=(400_000,),
                                voucher_eligible=True)
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer",
        voucher_id=voucher.id)).checkout.orders[0]
    session.commit()
    assert order.voucher_amount == 200_000 and order.amount_due == 200_000
    payments.mark_transfer_received(session, order, p.staff, 200_000, "T1")
    services.accept(session, order, p.provider)
    services.dispute(session, order, p.buyer, "Nothing delivered")
    services.resolve(session, order, p.staff, "full", None, "Refund everything")
    session.refresh(voucher)
    session.refresh(scheme)
    assert voucher.balance == 1_000_000 and scheme.remaining == 1_000_000
    assert order.payments[0].amount_refunded == 200_000


def _spend(app, user_ids, voucher_ids, package_ids):
    """Each enterprise checks out with its own voucher at the same moment."""
    barrier = threading.Barrier(len(user_ids))
    outcomes = [None] * len(user_ids)

    def run(index):
        with app.app_context():
            user = db.session.get(User, user_ids[index])
            cart.add(db.session, user, package_ids[index])
            db.session.commit()
            barrier.wait()
            try:
                checkout.place_orders(db.session, user, checkout.CheckoutInput(
                    token=checkout.new_token(), payment_method="bank_transfer",
                    voucher_id=voucher_ids[index]))
                db.session.commit()
                outcomes[index] = "ok"
            except checkout.CheckoutError as exc:
                db.session.rollback()
                outcomes[index] = exc.message
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(user_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_two_enterprises_spending_the_last_of_the_budget_cannot_overspend_it(app, session):
    staff = factories.user(session, role="staff")
    scheme = programme(session, staff, budget=150_000, share=10_000)
    users, voucher_ids, package_ids = [], [], []
    for _ in range(2):
        org = factories.enterprise(session)
        users.append(factories.user(session, org).id)
        # Each voucher alone fits the budget; together they would overspend it.
        voucher_ids.append(vouchers.grant(session, staff, scheme, org, 100_000).id)
        package_ids.append(factories.product(session, prices=(100_000,),
                                             voucher_eligible=True).packages[0].id)
    session.commit()
    outcomes = _spend(app, users, voucher_ids, package_ids)
    session.expire_all()
    remaining = session.get(VoucherProgramme, scheme.id).remaining
    spent = session.scalar(select(func.coalesce(func.sum(VoucherRedemption.amount), 0)))
    assert remaining >= 0 and remaining + spent == 150_000
    assert outcomes.count("ok") >= 1
    # Either the second checkout got only what was left, or it was refused cleanly.
    for outcome in outcomes:
        assert outcome == "ok" or "budget" in outcome or "voucher" in outcome.lower()
    assert session.scalar(select(func.count(Order.id))) == outcomes.count("ok")


def test_many_concurrent_checkouts_never_drive_the_budget_negative(app, session):
    staff = factories.user(session, role="staff")
    scheme = programme(session, staff, budget=250_000, share=10_000)
    users, voucher_ids, package_ids = [], [], []
    for _ in range(5):
        org = factories.enterprise(session)
        users.append(factories.user(session, org).id)
        voucher_ids.append(vouchers.grant(session, staff, scheme, org, 100_000).id)
        package_ids.append(factories.product(session, prices=(100_000,),
                                             voucher_eligible=True).packages[0].id)
    session.commit()
    _spend(app, users, voucher_ids, package_ids)
    session.expire_all()
    scheme = session.get(VoucherProgramme, scheme.id)
    spent = session.scalar(select(func.coalesce(func.sum(VoucherRedemption.amount), 0)))
    assert scheme.remaining >= 0 and spent <= 250_000 and scheme.remaining + spent == 250_000


@pytest.mark.parametrize("field,value,message", [
    ("budget", 0, "budget"), ("max_share_bp", 0, "share"), ("valid_until", -5, "end"),
])
def test_programmes_are_validated(session, field, value, message):
    staff = factories.user(session, role="admin")
    today = date.today()
    data = dict(name="P", funder="F", budget=100, valid_from=today,
                valid_until=today + timedelta(days=1), max_share_bp=5000, eligible_category_ids=[])
    data[field] = today + timedelta(days=value) if field == "valid_until" else value
    with pytest.raises(vouchers.VoucherError, match=message):
        vouchers.create_programme(session, staff, vouchers.ProgrammeInput(**data))


OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


@pytest.fixture
def half_voucher_order(session, localstripe):  # noqa: F811 - pytest fixture
    """A 4,000.00 order, half paid by an innovation voucher (2,000.00) and half by card
    (captured at localstripe when the institution accepted), delivered."""
    return _half_voucher_order(session)


def _half_voucher_order(session, accept: bool = True):
    p = osup.parties(session)
    scheme = programme(session, p.staff, budget=1_000_000, share=5000)
    voucher = vouchers.grant(session, p.staff, scheme, p.buyer_org, 1_000_000)
    product = factories.product(session, p.provider_org, prices=(400_000,),
                                voucher_eligible=True)
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card",
        voucher_id=voucher.id)).checkout.orders[0]
    session.commit()
    assert order.voucher_amount == 200_000 and order.amount_due == 200_000
    payment = payments.begin_card_payment(session, order)
    session.commit()
    payments.pay_with_test_card(session, payment, OK_CARD)
    if accept:
        services.accept(session, order, p.provider)
        services.deliver(session, order, p.provider, "Report delivered")
        session.commit()
    return p, order, voucher, scheme


def _voucher_kept(session, order):
    return vouchers.redemption_for(session, order.id).net


def test_a_partial_ruling_gives_back_cash_and_voucher_in_proportion(session,
                                                                    half_voucher_order):
    """4,000 order, voucher 2,000 (50%), 3,000 back: the 1,000 kept is paid half by the
    buyer and half by the voucher, not all by the voucher."""
    p, order, voucher, scheme = half_voucher_order
    services.dispute(session, order, p.buyer, "Three quarters missing")
    services.resolve(session, order, p.staff, "partial", 300_000, "A quarter delivered")
    session.refresh(voucher)
    payment = order.payments[-1]
    assert order.status == "resolved" and payment.status == "captured"
    # Issue 13: captured in full at acceptance; the ruling refunds the cash part.
    assert (payment.amount_captured, payment.amount_refunded) == (200_000, 150_000)
    assert _voucher_kept(session, order) == 50_000
    assert voucher.balance == 1_000_000 - 50_000
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["escrow"] == 0
    assert balances["voucher_receivable"] == 50_000 and balances["platform_cash"] == 50_000
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 100_000


def test_a_staff_refund_after_completion_gives_back_cash_and_voucher_in_proportion(
        session, half_voucher_order):
    p, order, voucher, scheme = half_voucher_order
    services.complete(session, order, p.buyer)
    payment = order.payments[-1]
    assert payment.amount_captured == 200_000
    done = payments.staff_refund(session, order, p.staff, 300_000, "Three quarters missing")
    session.commit()
    assert done.cash == 150_000 and done.voucher == 150_000
    session.refresh(payment)
    session.refresh(voucher)
    assert payment.amount_refunded == 150_000 and _voucher_kept(session, order) == 50_000
    assert voucher.balance == 1_000_000 - 50_000
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["voucher_receivable"] == 50_000
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 100_000

    with pytest.raises(payments.PaymentError, match="at most ¥1,000.00"):
        payments.staff_refund(session, order, p.staff, 100_001, "Too much")
    session.rollback()
    payments.staff_refund(session, order, p.staff, 100_000, "The rest")
    session.commit()
    session.refresh(voucher)
    session.refresh(scheme)
    assert voucher.balance == 1_000_000 and scheme.remaining == 1_000_000
    balances = ledger.balances(session, order.id)
    assert all(value == 0 for value in balances.values()), balances


def test_a_staff_refund_on_an_order_paid_entirely_by_voucher_gives_the_voucher_back(session):
    from orders.models import Refund

    p = osup.parties(session)
    scheme = programme(session, p.staff, budget=400_000, share=10_000)
    voucher = vouchers.grant(session, p.staff, scheme, p.buyer_org, 400_000)
    product = factories.product(session, p.provider_org, prices=(300_000,),
                                voucher_eligible=True)
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card",
        voucher_id=voucher.id)).checkout.orders[0]
    session.commit()
    assert order.amount_due == 0 and order.status == "paid"
    services.accept(session, order, p.provider)
    services.deliver(session, order, p.provider, "Done")
    session.commit()
    services.complete(session, order, p.buyer)
    done = payments.staff_refund(session, order, p.staff, 100_000, "A third was late",
                                 form_token="tok-voucher-only")
    session.commit()
    assert (done.cash, done.voucher) == (0, 100_000)
    row = session.scalar(select(Refund))
    assert row.payment_id is None and row.amount == 0 and row.voucher_amount == 100_000
    session.refresh(voucher)
    assert voucher.balance == 400_000 - 200_000
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["voucher_receivable"] == 200_000
    with pytest.raises(payments.PaymentError, match="already submitted"):
        payments.staff_refund(session, order, p.staff, 100_000, "A third was late",
                              form_token="tok-voucher-only")
    session.rollback()
    session.refresh(voucher)
    assert voucher.balance == 200_000


def test_paying_again_after_a_released_hold_books_the_voucher_share_once(
        session, localstripe):  # noqa: F811
    # Issue 13: a hold exists only before acceptance (the card is captured when the
    # institution accepts), so the bank releases it while the order is paid.
    p, order, voucher, scheme = _half_voucher_order(session, accept=False)
    held = order.payments[-1]
    payments.gateway().cancel_intent(held.stripe_payment_intent_id)  # Stripe's 7-day expiry
    payments.refresh_from_stripe(session, held)
    session.commit()
    assert order.status == "pending_payment" and held.status == "released"
    balances = ledger.balances(session, order.id)
    assert balances["buyer_funds_held"] == 0 and balances["voucher_receivable"] == 200_000
    again = payments.begin_card_payment(session, order)
    session.commit()
    payments.pay_with_test_card(session, again, OK_CARD)
    assert order.status == "paid" and again.amount == 200_000
    assert ledger.balances(session, order.id)["voucher_receivable"] == 200_000
    services.accept(session, order, p.provider)
    services.deliver(session, order, p.provider, "Report delivered")
    session.commit()
    services.complete(session, order, p.buyer)
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["escrow"] == 0
    assert balances["platform_cash"] == 200_000 and balances["voucher_receivable"] == 200_000
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 400_000


def test_a_quote_order_gets_what_is_left_of_the_budget_when_it_is_less_than_the_share(
        client, session):
    """At checkout a voucher pays min(share, balance, budget left); the pay page of a quote or
    application order applies the same cap (vouchers.allowance), not a refusal."""
    p = osup.parties(session)
    scheme = programme(session, p.staff, budget=1_000_000, share=5000)
    other_org = factories.enterprise(session, name="Kunshan Photonics Co., Ltd.")
    other = factories.user(session, other_org)
    theirs = vouchers.grant(session, p.staff, scheme, other_org, 800_000)
    ours = vouchers.grant(session, p.staff, scheme, p.buyer_org, 1_000_000)
    product = factories.product(session, p.provider_org, prices=(1_400_000,),
                                voucher_eligible=True)
    cart.add(session, other, product.packages[0].id)
    checkout.place_orders(session, other, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer", voucher_id=theirs.id))
    session.commit()
    session.refresh(scheme)
    assert scheme.remaining == 300_000  # 700,000 of the budget spent by the other enterprise

    quoted = osup.order(session, p, price=1_000_000, kind="quote",
                        product=factories.product(session, p.provider_org, mode="quote",
                                                  voucher_eligible=True))
    session.commit()
    osup.login(client, p.buyer)
    response = post_form(client, f"/orders/{quoted.id}/pay", {
        "payment_method": "bank_transfer", "voucher_id": str(ours.id)})
    assert response.status_code == 302
    session.expire_all()
    quoted = session.get(Order, quoted.id)
    # The share would be 500,000; 300,000 is what the budget has left, so that is applied.
    assert quoted.voucher_amount == 300_000 and quoted.amount_due == 700_000
    assert session.get(VoucherProgramme, scheme.id).remaining == 0
    assert session.get(Voucher, ours.id).balance == 700_000


def test_applying_a_voucher_caps_it_at_the_budget_left_now_not_when_it_was_loaded(session):
    """The cap is computed from the programme's budget as it is when the voucher is applied:
    another enterprise spending the budget after this session loaded the programme (another
    request, or a long-running job) leaves less than the share, and that remainder is
    applied instead of refusing with "budget has run out"."""
    p = osup.parties(session)
    scheme = programme(session, p.staff, budget=1_000_000, share=5000)
    other_org = factories.enterprise(session, name="Kunshan Photonics Co., Ltd.")
    theirs = vouchers.grant(session, p.staff, scheme, other_org, 800_000)
    ours = vouchers.grant(session, p.staff, scheme, p.buyer_org, 1_000_000)
    product = factories.product(session, p.provider_org, mode="quote", voucher_eligible=True)
    quoted = osup.order(session, p, price=1_000_000, kind="quote", product=product)
    their_order = osup.order(session, p, price=1_400_000, kind="quote", product=product)
    session.commit()
    assert ours.programme.remaining == 1_000_000  # this session has read the programme

    with Session(db.engine) as other:  # meanwhile another request spends 700,000
        vouchers.redeem(other, other.get(Voucher, theirs.id), other.get(Order, their_order.id),
                        700_000)
        other.commit()

    redemption = vouchers.apply_to_order(session, ours, quoted)
    session.commit()
    assert redemption.amount == 300_000 and quoted.amount_due == 700_000
    assert session.get(VoucherProgramme, scheme.id).remaining == 0
