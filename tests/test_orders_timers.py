"""Order timers with a frozen clock: auto-decline of paid orders not accepted in time,
auto-complete of delivered orders the buyer did not answer, cancellation of unpaid orders,
and the `run-order-timers` command."""

from datetime import timedelta

import factories
import order_support as osup
from sqlalchemy import select
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import utcnow
from orders import cart, checkout, ledger, payments, services, timers
from orders.models import Order, QuoteRequest

CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


def card_order(session, p, price=200_000):
    product = factories.product(session, p.provider_org, prices=(price,))
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card")).checkout.orders[0]
    session.commit()
    payment = payments.begin_card_payment(session, order)
    session.commit()
    payments.pay_with_test_card(session, payment, CARD)
    return order


def test_paid_orders_not_accepted_in_time_are_declined_and_released(session, localstripe,  # noqa: F811
                                                                    app):
    p = osup.parties(session)
    order = card_order(session, p)
    deadline = order.accept_by
    assert deadline is not None
    early = timers.run(session, deadline - timedelta(minutes=1))
    assert early.declined == [] and session.get(Order, order.id).status == "paid"
    report = timers.run(session, deadline + timedelta(minutes=1))
    assert report.declined == [order.number] and report.errors == []
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "declined" and order.events[-1].actor_role == "system"
    payment = order.payments[0]
    assert payment.status == "released"
    assert localstripe.intent(payment.stripe_payment_intent_id)["status"] == "canceled"
    assert all(value == 0 for value in ledger.balances(session, order.id).values())


def test_delivered_orders_complete_by_themselves_after_n_days(session, localstripe):  # noqa: F811
    p = osup.parties(session)
    order = card_order(session, p)
    services.accept(session, order, p.provider)
    services.deliver(session, order, p.provider, "Report attached")
    session.commit()
    delivered = order.delivered_at
    assert timers.run(session, delivered + timedelta(days=6, hours=23),
                      auto_complete_days=7).completed == []
    report = timers.run(session, delivered + timedelta(days=7, minutes=1), auto_complete_days=7)
    assert report.completed == [order.number]
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "completed" and order.payments[0].status == "captured"
    assert localstripe.intent(order.payments[0].stripe_payment_intent_id)["status"] == "succeeded"


def test_unpaid_orders_are_cancelled_after_the_payment_window(session):
    p = osup.parties(session)
    product = factories.product(session, p.provider_org)
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer")).checkout.orders[0]
    session.commit()
    report = timers.run(session, order.payment_due_at + timedelta(seconds=1))
    assert report.cancelled == [order.number]
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "cancelled" and order.payments[0].status == "canceled"


def test_timers_are_idempotent_and_leave_fresh_orders_alone(session):
    p = osup.parties(session)
    fresh = osup.order(session, p, status="paid", accept_by=utcnow() + timedelta(hours=5))
    session.commit()
    for _ in range(2):
        report = timers.run(session, utcnow())
        assert report.declined == report.completed == report.cancelled == []
    assert session.get(Order, fresh.id).status == "paid"


def test_the_cli_command_runs_the_timers_at_a_given_time(app, session):
    p = osup.parties(session)
    product = factories.product(session, p.provider_org, mode="quote")
    now = utcnow()
    stale = QuoteRequest(product_id=product.id, buyer_org_id=p.buyer_org.id,
                         provider_org_id=p.provider_org.id, need="Old need",
                         expires_at=now - timedelta(days=1))
    session.add(stale)
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["run-order-timers", "--now", (now + timedelta(days=1)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 quote requests" in result.output
    session.expire_all()
    assert session.scalar(select(QuoteRequest.status)) == "expired"
    bad = runner.invoke(args=["run-order-timers", "--now", "yesterday"])
    assert bad.exit_code != 0
