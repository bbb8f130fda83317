"""Buying pages say what really happens: with a corporate bank transfer nothing is paid or held
when the order is placed (the order is confirmed when the transfer arrives), while a card is
held; an institution that sent a quote reads "Quote sent", the buyer "Quote received"."""

import re
from datetime import date, timedelta

import factories
import order_support as osup

from marketplace.database import db
from orders import cart, quotes


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', html, re.S)
    assert found, testid
    return " ".join(found.group(1).split())


def _hidden(html: str, testid: str) -> bool:
    tag = re.search(rf'<[^>]*data-testid="{testid}"[^>]*>', html).group(0)
    return "d-none" in tag


def test_checkout_says_pay_for_a_card_and_bank_transfer_for_a_transfer(app, client):
    with app.app_context():
        org = factories.enterprise(db.session)
        buyer = factories.user(db.session, org)
        product = factories.product(db.session, factories.provider(db.session),
                                    prices=(231000,))
        cart.add(db.session, buyer, product.packages[0].id)
        db.session.commit()
    osup.login(client, buyer)

    card = client.get("/checkout").get_data(as_text=True)
    assert _text(card, "place-order-card") == "Place order and pay ¥2,310.00"
    assert "is held for each institution" in _text(card, "place-order-note-card")
    assert _hidden(card, "place-order-bank_transfer") and not _hidden(card, "place-order-card")

    transfer = client.get("/checkout?method=bank_transfer").get_data(as_text=True)
    assert _text(transfer, "place-order-bank_transfer") == "Place order · pay by bank transfer"
    note = _text(transfer, "place-order-note-bank_transfer")
    assert note.startswith("Nothing is paid or held yet")
    assert "we confirm the order when your transfer arrives" in note
    assert not _hidden(transfer, "place-order-bank_transfer")
    assert _hidden(transfer, "place-order-card") and _hidden(transfer,
                                                             "place-order-note-card")


def test_the_pay_page_offers_a_card_payment_and_a_bank_transfer_in_their_own_words(app, client):
    with app.app_context():
        p = osup.parties(db.session)
        order = osup.order(db.session, p, price=231000)
        db.session.commit()
        order_id, buyer = order.id, p.buyer
    osup.login(client, buyer)
    html = client.get(f"/orders/{order_id}/pay").get_data(as_text=True)
    assert _text(html, "pay-now-card") == "Pay ¥2,310.00"
    assert _text(html, "pay-now-bank_transfer") == "Pay ¥2,310.00 by bank transfer"


def test_the_institution_reads_quote_sent_and_the_buyer_quote_received(app, client):
    with app.app_context():
        p = osup.parties(db.session)
        product = factories.product(db.session, p.provider_org, mode="quote")
        request = quotes.request_quote(db.session, p.buyer, product,
                                       "Please analyse our battery patent landscape.", None, None)
        quotes.send_quote(db.session, p.provider, request, 100_000,
                          date.today() + timedelta(days=30), "", [], 7)
        db.session.commit()
        request_id, buyer, provider = request.id, p.buyer, p.provider

    osup.login(client, provider)
    mine = client.get(f"/provider/quotes/{request_id}").get_data(as_text=True)
    assert _text(mine, "quote-request-status") == "Quote sent"
    assert re.search(r'badge[^"]*">Quote sent</span>', client.get(
        "/provider/quotes").get_data(as_text=True))
    osup.logout(client)

    osup.login(client, buyer)
    theirs = client.get(f"/quotes/{request_id}").get_data(as_text=True)
    assert _text(theirs, "quote-request-status") == "Quote received"
