"""The payment-method registry: one module per method, and every list of methods (forms,
the database's CHECK values, the checkout page) derived from it."""

from orders import payments
from orders.models import CHECKOUT_PAYMENT_METHODS, PAYMENT_METHODS


def test_the_registry_knows_each_method_once_in_checkout_order():
    assert [m.name for m in payments.all_methods()] == ["card", "bank_transfer", "voucher"]
    assert payments.choices() == [("card", "Card (funds held until you accept the work)"),
                                  ("bank_transfer", "Corporate bank transfer")]
    assert payments.names(holds_money=True) == ["card"]
    assert payments.label("bank_transfer") == "Bank transfer"


def test_the_database_accepts_every_registered_method():
    assert {m.name for m in payments.all_methods()} <= set(PAYMENT_METHODS)
    assert set(CHECKOUT_PAYMENT_METHODS) == {name for name, _label in payments.choices()}


def test_every_method_has_its_own_partial(app):
    for method in payments.all_methods():
        assert app.jinja_env.get_template(method.partial)
        if method.instructions_partial:
            assert app.jinja_env.get_template(method.instructions_partial)


def test_the_checkout_and_pay_pages_render_each_methods_partial(client, session):
    import factories
    import order_support as osup

    from orders import cart

    p = osup.parties(session)
    product = factories.product(session, p.provider_org, prices=(100_000,))
    cart.add(session, p.buyer, product.packages[0].id)
    order = osup.order(session, p, price=100_000)
    session.commit()
    osup.login(client, p.buyer)
    for path in ("/checkout", f"/orders/{order.id}/pay"):
        html = client.get(path).get_data(as_text=True)
        for name, label in payments.choices():
            assert f'data-testid="method-{name}"' in html and label in html
            assert f'data-show-for="{name}"' in html
        assert 'data-show-for="voucher"' not in html  # not a way to pay what is due
