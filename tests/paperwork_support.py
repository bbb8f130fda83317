"""Builders for the contract and 发票 tests: a quote accepted into an order (which carries a
contract), payments recorded straight into the payment table, invoice files."""

import io
import zipfile
from datetime import date, timedelta

import factories
import order_support as osup

from marketplace.database import utcnow
from orders import quotes
from orders.models import Order, Payment


def quote_order(session, p: osup.Parties, price: int = 6_000_000,
                category_slug: str = "ip-strategy") -> Order:
    """The buyer accepts a quote with two milestones: an order awaiting payment."""
    product = factories.product(session, p.provider_org, mode="quote",
                                title="Freedom-to-operate analysis",
                                category_slug=category_slug)
    request = quotes.request_quote(session, p.buyer, product,
                                   "FTO for a solid-state battery, 12 patents to review.",
                                   budget=None, deadline=None)
    today = date.today()
    quote = quotes.send_quote(session, p.provider, request, price, today + timedelta(days=45),
                              "Two calls included.",
                              [{"title": "Search", "share_bp": 4000,
                                "due_date": (today + timedelta(days=20)).isoformat()},
                               {"title": "Opinion", "share_bp": 6000,
                                "due_date": (today + timedelta(days=45)).isoformat()}],
                              valid_days=14)
    order = quotes.decide(session, p.buyer, quote, True)
    session.flush()
    return order


def paid(session, order: Order, amount: int | None = None, refunded: int = 0,
         status: str = "accepted") -> Payment:
    """Record that the buyer paid (a received bank transfer) and put the order in
    ``status``; ``refunded`` of it came back."""
    amount = order.amount_due if amount is None else amount
    payment = Payment(order_id=order.id, method="bank_transfer", status="captured",
                      currency=order.currency, amount=amount, amount_authorised=amount,
                      amount_captured=amount, amount_refunded=refunded, captured_at=utcnow())
    session.add(payment)
    session.flush()
    osup.set_status(session, order, status)
    return payment


def ofd_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("OFD.xml", '<?xml version="1.0" encoding="UTF-8"?>'
                                    '<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" '
                                    'Version="1.0"><ofd:DocBody/></ofd:OFD>')
        archive.writestr("Doc_0/Document.xml", "<ofd:Document/>")
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not an invoice")
    return buffer.getvalue()
