"""Issue 13's one-off step, `flask --app marketplace capture-accepted-holds`, on a copy of the
demo database (load-demo + load-demo-activity): orders accepted before the card was captured
at acceptance have their hold captured into escrow; one whose hold the bank already released
is marked for the buyer to pay again (told once); nothing else in the demo changes; a second
run does nothing."""

from datetime import timedelta

from sqlalchemy import func, select
from stripe_fixtures import localstripe  # noqa: F401
from test_demo_activity import _play, _small_demo

from marketplace.database import db, utcnow
from marketplace.models import Notification
from orders import ledger, payments, workflow
from orders.models import LedgerEntry, Order, OrderEvent, Payment

OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


def _ledger_by_order(session):
    return dict(session.execute(select(LedgerEntry.order_id, func.count(LedgerEntry.id))
                                .group_by(LedgerEntry.order_id)).all())


def test_capture_accepted_holds_on_the_demo_database(app, localstripe):  # noqa: F811
    with app.app_context():
        _small_demo(app, db.session)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    assert _play(app, now).exit_code == 0
    with app.app_context():
        s = db.session
        waiting = s.scalars(select(Order).where(Order.status == "pending_payment")
                            .order_by(Order.id)).all()
        assert len(waiting) >= 3, "the demo has orders awaiting payment"
        legacy = waiting[:3]
        for order in legacy:  # paid by card, accepted the old way: the card still held
            payment = payments.begin_card_payment(s, order)
            s.commit()
            payments.pay_with_test_card(s, payment, OK_CARD)
            assert order.status == "paid"
            workflow.transition(s, order, "accept", _provider(s, order),
                                changes={"due_at": now + timedelta(days=30)})
            s.commit()
        gone = legacy[2].live_payment
        localstripe.client.payment_intents.cancel(gone.stripe_payment_intent_id)
        numbers = [o.number for o in legacy]
        before = _ledger_by_order(s)
        others_before = {k: v for k, v in before.items() if k not in {o.id for o in legacy}}

    result = app.test_cli_runner().invoke(args=["capture-accepted-holds"])
    assert result.exit_code == 0, result.output
    assert "2 card holds captured into escrow, 1 orders whose hold was already gone" \
        in result.output, result.output

    with app.app_context():
        s = db.session
        for number in numbers[:2]:
            order = s.scalar(select(Order).where(Order.number == number))
            payment = s.scalar(select(Payment).where(Payment.order_id == order.id,
                                                     Payment.method == "card"))
            assert order.status == "accepted" and payment.status == "captured"
            assert localstripe.intent(payment.stripe_payment_intent_id)["status"] == \
                "succeeded"
            balances = ledger.balances(s, order.id)
            assert ledger.held_by_platform(balances) == payment.amount
            assert sum(balances.values()) == 0
        order = s.scalar(select(Order).where(Order.number == numbers[2]))
        assert order.status == "accepted"  # no lapse after acceptance
        assert s.get(Payment, gone.id).status == "released"
        assert [e.name for e in order.events].count("repay_needed") == 1
        buyer_told = s.scalar(select(func.count(Notification.id)).where(
            Notification.kind == "order_repay_needed"))
        assert buyer_told >= 2  # the buyer's members and the staff
        after = _ledger_by_order(s)
        assert {k: v for k, v in after.items() if k in others_before} == others_before
        events = s.scalar(select(func.count(OrderEvent.id)))

    again = app.test_cli_runner().invoke(args=["capture-accepted-holds"])
    assert again.exit_code == 0, again.output
    assert "0 card holds captured into escrow, 0 orders" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count(OrderEvent.id))) == events
        assert db.session.scalar(select(func.count(Notification.id)).where(
            Notification.kind == "order_repay_needed")) == buyer_told


def _provider(session, order):
    from marketplace.models import User

    return session.scalar(select(User).where(User.organisation_id == order.provider_org_id)
                          .order_by(User.id))
