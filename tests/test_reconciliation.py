"""Reconciliation with Stripe: a clean month reports nothing; each deliberately injected
difference (our captured amount changed in the database, a refund made directly at Stripe,
an intent nobody recorded, an intent id Stripe does not know) is found and named.

Each test gets its own fresh localstripe process (an empty "Stripe account"), because the
shared one holds the intents of every other test, whose database rows are long gone."""

import os
import socket
import subprocess
import sys
import time

import order_support as osup
import pytest
import settlement_support as ss
from sqlalchemy import update
from stripe_fixtures import ROOT, SECRET_KEY, free_port

from orders import payments, reconciliation, services, settlement
from orders.models import Payment
from orders.stripe_gateway import StripeGateway


@pytest.fixture
def stripe_account(app):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "localstripe_server.py"), "--port", str(port),
         "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    saved = {key: app.config.get(key) for key in ("STRIPE_API_BASE", "STRIPE_SECRET_KEY")}
    app.config.update(STRIPE_API_BASE=url, STRIPE_SECRET_KEY=SECRET_KEY)
    try:
        yield StripeGateway.from_config(app.config)
    finally:
        app.config.update(saved)
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def card_month(session, stripe_account):
    """Card orders through every money path, and one bank transfer (not Stripe's)."""
    p = osup.parties(session)
    orders = {}
    orders["full"] = ss._paid(session, p, 150000, card=True)
    services.complete(session, orders["full"], p.buyer)
    orders["refunded"] = ss._paid(session, p, 90000, card=True)
    services.complete(session, orders["refunded"], p.buyer)
    payments.staff_refund(session, orders["refunded"], p.staff, 25000, "Late delivery")
    session.commit()
    orders["ruling"] = ss._disputed(session, p, ss._paid(session, p, 200000, card=True),
                                    "partial", 50000)
    orders["held"] = ss._paid(session, p, 40000, card=True)  # in progress (captured at accept)
    orders["bank"] = ss._paid(session, p, 30000)
    services.complete(session, orders["bank"], p.buyer)
    for order in orders.values():
        session.refresh(order)
    return p, orders


def _report(session, gw):
    from marketplace.database import utcnow

    return reconciliation.reconcile(session, settlement.month(f"{utcnow():%Y-%m}"), gw, "CNY")


def _card(order) -> Payment:
    return next(p for p in order.payments if p.method == "card")


def test_a_clean_month_has_no_mismatches(session, card_month, stripe_account):
    _p, orders = card_month
    # Issue 13: captured in full at acceptance, the partial ruling refunded part of it.
    ruling = _card(orders["ruling"])
    assert (ruling.amount_captured, ruling.amount_refunded) == (200000, 50000)
    report = _report(session, stripe_account)
    assert report.payments_checked == 4 and report.intents_listed == 4
    assert report.mismatches == [], [(m.kind, m.ours, m.stripe) for m in report.mismatches]
    assert report.clean


def test_a_captured_amount_changed_in_our_database_is_found(session, card_month,
                                                            stripe_account):
    _p, orders = card_month
    payment = _card(orders["full"])
    session.execute(update(Payment).where(Payment.id == payment.id)
                    .values(amount_captured=140000))
    session.commit()
    report = _report(session, stripe_account)
    assert [(m.kind, m.payment.id, m.ours, m.stripe) for m in report.mismatches] == [
        ("captured", payment.id, "¥1,400.00", "¥1,500.00")]


def test_a_refund_made_directly_at_stripe_is_found(session, card_month, stripe_account):
    _p, orders = card_month
    payment = _card(orders["full"])
    refund = stripe_account._call(stripe_account._client().v1.refunds.create, params={
        "payment_intent": payment.stripe_payment_intent_id, "amount": 7000})
    report = _report(session, stripe_account)
    kinds = {(m.kind, m.payment.id) for m in report.mismatches}
    assert kinds == {("refunded", payment.id), ("unknown_refund", payment.id)}
    refunded = next(m for m in report.mismatches if m.kind == "refunded")
    assert (refunded.ours, refunded.stripe) == ("¥0.00", "¥70.00")
    unknown = next(m for m in report.mismatches if m.kind == "unknown_refund")
    assert unknown.stripe == refund["id"]


def test_intents_missing_on_either_side_and_status_differences_are_found(
        session, card_month, stripe_account):
    _p, orders = card_month
    stray = stripe_account.create_intent(amount=12345, currency="CNY", payment_method=None,
                                         metadata={"order_number": "T-GHOST"})
    lost = _card(orders["held"])
    lost_intent = lost.stripe_payment_intent_id
    session.execute(update(Payment).where(Payment.id == lost.id)
                    .values(stripe_payment_intent_id="pi_doesnotexist"))
    # Our records say captured while Stripe still holds the money.
    ruling = _card(orders["full"])
    session.execute(update(Payment).where(Payment.id == ruling.id).values(status="released"))
    session.commit()
    report = _report(session, stripe_account)
    found = {(m.kind, m.intent_id) for m in report.mismatches}
    assert ("missing_here", stray["id"]) in found
    assert ("missing_at_stripe", "pi_doesnotexist") in found
    assert ("status", ruling.stripe_payment_intent_id) in found
    # The intent we lost track of is also Stripe's extra one.
    assert ("missing_here", lost_intent) in found
    ghost = next(m for m in report.mismatches if m.intent_id == stray["id"])
    assert "T-GHOST" in ghost.detail
    # Staff read both sides' states in words, not Stripe's or our column values.
    status = next(m for m in report.mismatches if m.kind == "status")
    assert (status.ours, status.stripe) == ("Hold released", "Captured")
    assert report.counts()["missing_here"] == 2


def test_lists_are_paged_not_fetched_per_payment(session, stripe_account, monkeypatch):
    """More intents than one page (100): the listing follows has_more / starting_after."""
    created = [stripe_account.create_intent(amount=100 + i, currency="CNY",
                                            payment_method=None, metadata={})
               for i in range(105)]
    calls = []
    original = stripe_account._call

    def counting(method, *args, **kwargs):
        calls.append(kwargs.get("params", {}).get("starting_after"))
        return original(method, *args, **kwargs)

    monkeypatch.setattr(stripe_account, "_call", counting)
    report = _report(session, stripe_account)
    assert report.intents_listed == 105 and report.counts() == {"missing_here": 105}
    assert len(calls) == 3  # two pages of intents, one of refunds
    assert calls[1] == created[99]["id"]


def test_reconciliation_page_shows_mismatches_to_staff(client, session, card_month,
                                                       stripe_account):
    p, orders = card_month
    payment = _card(orders["full"])
    session.execute(update(Payment).where(Payment.id == payment.id)
                    .values(amount_captured=140000))
    session.commit()
    osup.login(client, p.staff)
    page = client.get("/staff/reconciliation")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Captured amount differs" in html
    assert orders["full"].number in html and 'data-testid="console-nav"' in html
    bad = client.get("/staff/reconciliation?month=2026-99")
    assert bad.status_code == 302
