"""Stripe down or hung (issue 16): the buyer gets an answer well within the worker timeout,
the payment is a gateway failure (not a card failure), and a retry completes it once.

A small proxy on loopback sits between the app and localstripe; it forwards, or it holds
the connection without answering (before or after passing the request on)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import factories
import pytest
import requests
from conftest import post_form
from sqlalchemy import func, select
from stripe_fixtures import localstripe  # noqa: F401

from orders import cart, checkout, payments
from orders.models import Order, Payment
from orders.stripe_gateway import DEFAULT_TIMEOUT_SECONDS, UNAVAILABLE_CODE, GatewayUnavailable

OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")
TIMEOUT = 1.0  # the tests' Stripe timeout; production's is DEFAULT_TIMEOUT_SECONDS


class StripeProxy:
    """mode: "forward"; "hang" (answer nothing); "hang-after-confirm" (confirm reaches
    Stripe, its answer never comes back)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.mode = "forward"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "hang":
                    time.sleep(TIMEOUT * 4)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.upstream + self.path,
                                          data=body, headers=headers, timeout=10)
                if proxy.mode == "hang-after-confirm" and self.path.endswith("/confirm"):
                    time.sleep(TIMEOUT * 4)
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(app, localstripe):  # noqa: F811 - pytest fixture
    stripe_proxy = StripeProxy(localstripe.url)
    saved = app.config["STRIPE_API_BASE"], app.config.get("STRIPE_TIMEOUT")
    app.config.update(STRIPE_API_BASE=stripe_proxy.url, STRIPE_TIMEOUT=TIMEOUT)
    yield stripe_proxy
    app.config.update(STRIPE_API_BASE=saved[0], STRIPE_TIMEOUT=saved[1])
    stripe_proxy.close()


def test_the_stripe_timeout_is_well_under_the_worker_timeout(app):
    import runpy

    from marketplace.config import ROOT
    from orders.stripe_gateway import StripeGateway

    worker_timeout = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["timeout"]
    gateway = StripeGateway.from_config({"STRIPE_SECRET_KEY": "sk_test_x"})
    assert gateway.timeout == DEFAULT_TIMEOUT_SECONDS <= worker_timeout / 3


def _buyer_with_cart(session, count=1):
    buyer = factories.user(session, factories.enterprise(session))
    for _ in range(count):
        product = factories.product(session, factories.provider(session), prices=(250000,))
        cart.add(session, buyer, product.packages[0].id)
    session.commit()
    return buyer


def test_hung_stripe_answers_quickly_as_a_gateway_failure(client, session, proxy):
    buyer = _buyer_with_cart(session, count=2)
    post_form(client, "/login", {"email": buyer.email, "password": factories.PASSWORD})
    page = client.get("/checkout").get_data(as_text=True)
    token = page.split('name="token" value="')[1].split('"')[0]
    proxy.mode = "hang"
    started = time.monotonic()
    response = post_form(client, "/checkout", {
        "token": token, "payment_method": "card", "card_number": "4242 4242 4242 4242",
        "card_expiry": "12/30", "card_cvc": "123"}, follow_redirects=True)
    elapsed = time.monotonic() - started
    # One order tried (at most one retry-free timeout), not one timeout per order.
    assert elapsed < TIMEOUT * 3
    text = response.get_data(as_text=True)
    assert "The payment service is not answering. Nothing was charged" in text
    assert "card details were not accepted" not in text
    session.expire_all()
    failed = session.scalars(select(Payment)).all()
    assert [p.failure_code for p in failed] == [UNAVAILABLE_CODE]
    assert session.scalar(select(func.count(Order.id)).where(
        Order.status == "pending_payment")) == 2

    # Stripe answers again: paying now works, once.
    proxy.mode = "forward"
    order = session.scalars(select(Order).order_by(Order.id)).first()
    payment = payments.begin_card_payment(session, order)
    session.commit()
    assert payments.pay_with_test_card(session, payment, OK_CARD).status == "held"


def test_confirm_lost_in_a_hung_stripe_completes_exactly_once_on_retry(session, proxy,
                                                                     localstripe):  # noqa: F811
    buyer = _buyer_with_cart(session)
    result = checkout.place_orders(session, buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card"))
    session.commit()
    order = result.checkout.orders[0]
    payment = payments.begin_card_payment(session, order)
    session.commit()
    proxy.mode = "hang-after-confirm"  # Stripe authorises; its answer is lost
    with pytest.raises(GatewayUnavailable):
        payments.pay_with_test_card(session, payment, OK_CARD)
    session.expire_all()
    payment = session.get(Payment, payment.id)
    assert payment.status == "pending" and payment.failure_code == UNAVAILABLE_CODE
    assert localstripe.intent(payment.stripe_payment_intent_id)["status"] == "requires_capture"

    proxy.mode = "forward"
    # The buyer tries again: Stripe is asked first, and the earlier authorisation is used.
    with pytest.raises(payments.PaymentError, match="paid a moment ago"):
        payments.begin_card_payment(session, order)
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "paid"
    held = session.scalars(select(Payment).where(Payment.order_id == order.id,
                                                 Payment.status == "held")).all()
    assert len(held) == 1 and held[0].amount_authorised == order.amount_due
    # One intent at Stripe for this order, held once.
    intent_ids = session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.order_id == order.id, Payment.stripe_payment_intent_id.is_not(None))).all()
    assert [localstripe.intent(i)["status"] for i in intent_ids] == ["requires_capture"]


def test_a_lost_confirm_is_completed_by_the_order_timers_when_nobody_retries(session, proxy):
    from datetime import timedelta

    from marketplace.database import utcnow
    from orders import timers

    buyer = _buyer_with_cart(session)
    order = checkout.place_orders(session, buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card")).checkout.orders[0]
    session.commit()
    payment = payments.begin_card_payment(session, order)
    session.commit()
    proxy.mode = "hang-after-confirm"
    with pytest.raises(GatewayUnavailable):
        payments.pay_with_test_card(session, payment, OK_CARD)
    proxy.mode = "forward"
    session.expire_all()
    assert timers.run(session, utcnow() + timedelta(minutes=1)).repaired == []  # too soon
    report = timers.run(session, utcnow() + timedelta(minutes=5))
    session.expire_all()
    order = session.get(Order, order.id)
    assert report.repaired == [order.number] and order.status == "paid"
    assert session.get(Payment, payment.id).status == "held"
