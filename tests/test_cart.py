"""The cart over HTTP: add from the product page, change, remove, survive logging out,
refuse what cannot be bought."""

import re

import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import func, select

from orders.models import CartLine


@pytest.fixture
def shop(session):
    buyer = factories.user(session, factories.enterprise(session))
    product = factories.product(session, title="Trademark registration", prices=(80000, 150000))
    quote_product = factories.product(session, mode="quote", title="FTO analysis")
    session.commit()
    return buyer, product, quote_product


def test_add_from_the_product_page_change_and_remove(client, session, shop):
    buyer, product, _ = shop
    osup.login(client, buyer)
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-testid="add-to-cart"' in html
    standard = product.packages[1]
    response = post_form(client, "/cart/add", {"package_id": standard.id, "quantity": "2"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/cart")
    html = client.get("/cart").get_data(as_text=True)
    assert "Trademark registration" in html and "¥3,000.00" in html
    assert re.search(r'data-testid="cart-count">\s*2', client.get("/").get_data(as_text=True))
    post_form(client, "/cart/add", {"package_id": standard.id})  # same package: quantity adds
    line = session.scalar(select(CartLine))
    assert line.quantity == 3
    post_form(client, f"/cart/lines/{line.id}", {"quantity": "1"})
    session.expire_all()
    assert session.get(CartLine, line.id).quantity == 1
    post_form(client, f"/cart/lines/{line.id}/remove", {})
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)


def test_the_cart_survives_logging_out(client, session, shop):
    buyer, product, _ = shop
    osup.login(client, buyer)
    post_form(client, "/cart/add", {"package_id": product.packages[0].id})
    osup.logout(client)
    assert client.get("/cart").status_code == 302  # logged out: back to the login page
    osup.login(client, buyer)
    assert "Trademark registration" in client.get("/cart").get_data(as_text=True)


def test_quote_listings_and_hidden_listings_cannot_be_added(client, session, shop):
    buyer, product, quote_product = shop
    osup.login(client, buyer)
    html = client.get(f"/products/{quote_product.id}").get_data(as_text=True)
    assert 'data-testid="request-quote"' in html and "add-to-cart" not in html
    product.status = "suspended"
    session.commit()
    response = post_form(client, "/cart/add", {"package_id": product.packages[0].id})
    assert response.status_code == 404
    assert session.scalar(select(func.count(CartLine.id))) == 0


def test_a_listing_suspended_after_it_was_added_is_flagged_and_blocks_checkout(client, session,
                                                                              shop):
    buyer, product, _ = shop
    osup.login(client, buyer)
    post_form(client, "/cart/add", {"package_id": product.packages[0].id})
    product.provider.suspended = True
    session.commit()
    html = client.get("/cart").get_data(as_text=True)
    assert 'data-testid="cart-problem"' in html and "suspended" in html
    assert 'data-testid="go-checkout"' not in html


def test_someone_elses_cart_line_is_not_found(client, session, shop):
    buyer, product, _ = shop
    other = factories.user(session, factories.enterprise(session))
    session.commit()
    osup.login(client, buyer)
    post_form(client, "/cart/add", {"package_id": product.packages[0].id})
    line_id = session.scalar(select(CartLine.id))
    osup.logout(client)
    osup.login(client, other)
    assert post_form(client, f"/cart/lines/{line_id}/remove", {}).status_code == 404
    assert session.scalar(select(func.count(CartLine.id))) == 1


def test_only_enterprises_have_a_cart(client, session, shop):
    _buyer, product, _ = shop
    provider = factories.user(session, product.provider)
    session.commit()
    osup.login(client, provider)
    assert post_form(client, "/cart/add", {"package_id": product.packages[0].id}).status_code == 403
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "Only enterprise accounts can buy services" in html
