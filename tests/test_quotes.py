"""Quotes (request → quote with milestones → accept → order to pay; decline; expiry) and
applications for financial products (approve / decline, with or without a fee)."""

import io
from datetime import date, timedelta

import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import select
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import utcnow
from orders import payments, quotes, services
from orders.models import Order, Quote, QuoteRequest


@pytest.fixture
def parties(session, app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    p = osup.parties(session)
    p.quote_product = factories.product(session, p.provider_org, mode="quote",
                                        title="Freedom-to-operate analysis",
                                        category_slug="ip-strategy", voucher_eligible=True)
    p.loan = factories.product(session, p.provider_org, mode="financial",
                               title="Tech-SME credit loan", category_slug="credit-loans")
    session.commit()
    return p


def test_request_quote_accept_and_pay(client, session, parties, localstripe):  # noqa: F811
    p = parties
    osup.login(client, p.buyer)
    html = client.get(f"/products/{p.quote_product.id}").get_data(as_text=True)
    assert 'data-testid="request-quote"' in html
    response = post_form(client, f"/products/{p.quote_product.id}/quote", {
        "need": "FTO for a solid-state battery in the EU and US markets, 12 patents to review.",
        "budget": "60,000", "deadline": (date.today() + timedelta(days=60)).isoformat(),
        "files": (io.BytesIO(osup.pdf_bytes("spec")), "spec.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    request = session.scalar(select(QuoteRequest))
    assert request.budget == 6_000_000 and len(request.files) == 1
    osup.logout(client)

    osup.login(client, p.provider)
    assert "Freedom-to-operate" in client.get("/provider/quotes").get_data(as_text=True)
    due = date.today() + timedelta(days=45)
    response = post_form(client, f"/provider/quotes/{request.id}", {
        "price": "55,000", "due_date": due.isoformat(), "note": "Includes two calls.",
        "milestones": f"Search | 40 | {(date.today() + timedelta(days=20)).isoformat()}\n"
                      f"Opinion | 60 | {due.isoformat()}", "valid_days": "14"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert client.get(f"/quotes/{request.id}/files/{request.files[0].id}").status_code == 200
    osup.logout(client)

    osup.login(client, p.buyer)
    quote = session.scalar(select(Quote))
    assert "¥55,000.00" in client.get(f"/quotes/{request.id}").get_data(as_text=True)
    response = post_form(client, f"/quotes/{request.id}/quotes/{quote.id}/accept", {})
    assert response.status_code == 302 and "/pay" in response.headers["Location"]
    order = session.scalar(select(Order))
    assert order.kind == "quote" and order.subtotal == 5_500_000
    assert [m.share_bp for m in order.milestones] == [4000, 6000]
    assert order.status == "pending_payment" and order.due_at.date() == due
    response = post_form(client, f"/orders/{order.id}/pay", {
        "payment_method": "card", "card_number": "4242424242424242", "card_expiry": "12/30",
        "card_cvc": "123"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).status == "paid"
    # A decided quote cannot be decided again.
    again = post_form(client, f"/quotes/{request.id}/quotes/{quote.id}/decline", {})
    assert again.status_code == 409


def test_a_new_quote_supersedes_the_old_and_declining_closes_the_request(session, parties):
    p = parties
    request = quotes.request_quote(session, p.buyer, p.quote_product,
                                   "Please analyse our battery patent landscape.", None, None)
    due = date.today() + timedelta(days=30)
    first = quotes.send_quote(session, p.provider, request, 100_000, due, "", [], 7)
    second = quotes.send_quote(session, p.provider, request, 90_000, due, "Discount", [], 7)
    session.commit()
    assert first.status == "superseded"
    with pytest.raises(quotes.QuoteError):
        quotes.decide(session, p.buyer, session.get(Quote, first.id), accept=True)
    session.rollback()
    assert quotes.decide(session, p.buyer, second, accept=False) is None
    assert request.status == "declined"
    with pytest.raises(quotes.QuoteError, match="closed"):
        quotes.send_quote(session, p.provider, request, 80_000, due, "", [], 7)


def test_only_the_right_parties_act_on_quotes(session, parties):
    p = parties
    request = quotes.request_quote(session, p.buyer, p.quote_product, "Need an FTO opinion.",
                                   None, None)
    session.commit()
    with pytest.raises(quotes.QuoteError) as raised:
        quotes.send_quote(session, factories.user(session, factories.provider(session)), request,
                          1000, date.today() + timedelta(days=3), "", [], 7)
    assert raised.value.status == 403
    quote = quotes.send_quote(session, p.provider, request, 1000,
                              date.today() + timedelta(days=3), "", [], 7)
    with pytest.raises(quotes.QuoteError) as raised:
        quotes.decide(session, p.outsider, quote, accept=True)
    assert raised.value.status == 403


def test_quotes_and_requests_expire(session, parties):
    p = parties
    now = utcnow()
    open_request = quotes.request_quote(session, p.buyer, p.quote_product, "Unanswered need.",
                                        None, None, now=now)
    answered = quotes.request_quote(session, p.buyer, p.quote_product, "Answered need.",
                                    None, None, now=now)
    quote = quotes.send_quote(session, p.provider, answered, 5000,
                              (now + timedelta(days=60)).date(), "", [], 3, now=now)
    session.commit()
    result = quotes.expire(session, now + timedelta(days=4))
    assert result.quotes == 1
    session.expire_all()
    assert session.get(Quote, quote.id).status == "expired"
    assert session.get(QuoteRequest, answered.id).status == "expired"
    assert session.get(QuoteRequest, open_request.id).status == "open"
    with pytest.raises(quotes.QuoteError, match="expired|no longer"):
        quotes.decide(session, p.buyer, session.get(Quote, quote.id), accept=True)
    session.rollback()
    quotes.expire(session, now + timedelta(days=15))
    assert session.get(QuoteRequest, open_request.id).status == "expired"


def test_free_application_goes_straight_to_the_institution_which_approves(client, session,
                                                                         parties):
    p = parties
    osup.login(client, p.buyer)
    response = post_form(client, f"/products/{p.loan.id}/apply", {
        "amount": "1,000,000", "term_months": "12", "need": "Working capital for a new line."})
    assert response.status_code == 302
    order = session.scalar(select(Order))
    assert order.kind == "application" and order.status == "paid" and order.subtotal == 0
    assert order.application_amount == 100_000_000
    osup.logout(client)
    osup.login(client, p.provider)
    html = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    assert "Approve application" in html
    post_form(client, f"/orders/{order.id}/actions/accept", {})
    session.expire_all()
    assert session.get(Order, order.id).status == "accepted"


def test_application_amount_and_term_must_fit_the_product(session, parties):
    p = parties
    with pytest.raises(quotes.QuoteError, match="smallest"):
        quotes.apply(session, p.buyer, p.loan, 1000, 12, "Too small")
    with pytest.raises(quotes.QuoteError, match="longest"):
        quotes.apply(session, p.buyer, p.loan, 100_000_000, 120, "Too long")


def test_an_application_with_a_fee_is_paid_then_declined_releasing_the_fee(
        session, parties, localstripe):  # noqa: F811
    p = parties
    p.loan.service_fee = 200_000
    session.commit()
    order = quotes.apply(session, p.buyer, p.loan, 100_000_000, 12, "Expansion")
    session.commit()
    assert order.status == "pending_payment" and order.amount_due == 200_000
    payment = payments.begin_card_payment(session, order)
    session.commit()
    payments.pay_with_test_card(session, payment, payments.TestCard("4242424242424242", 12,
                                                                    2030, "123"))
    assert order.status == "paid"
    services.decline(session, order, p.provider, "Credit score too low for this product")
    session.refresh(payment)
    assert order.status == "declined" and payment.status == "released"
    assert localstripe.intent(payment.stripe_payment_intent_id)["status"] == "canceled"


def test_quote_request_lists_are_paged_newest_first(client, session, parties, app,
                                                   monkeypatch):
    """A busy institution and a busy buyer see their requests a page at a time."""
    p = parties
    monkeypatch.setitem(app.config, "PAGE_SIZE", 5)
    for n in range(7):
        listing = factories.product(session, p.provider_org, mode="quote",
                                    title=f"Patent landscape no. {n}")
        quotes.request_quote(session, p.buyer, listing, f"Need number {n}", budget=None,
                             deadline=date.today() + timedelta(days=60),
                             now=utcnow() - timedelta(hours=10 - n))
    session.commit()
    for user, path in ((p.buyer, "/quotes"), (p.provider, "/provider/quotes")):
        osup.login(client, user)
        first = client.get(path).get_data(as_text=True)
        assert first.count('data-testid="quote-request-row"') == 5
        assert "Showing 1–5 of 7 quote requests" in first
        assert "Patent landscape no. 6" in first and "Patent landscape no. 1" not in first
        second = client.get(f"{path}?page=2").get_data(as_text=True)
        assert second.count('data-testid="quote-request-row"') == 2
        assert "Patent landscape no. 1" in second and "Patent landscape no. 0" in second
        osup.logout(client)
