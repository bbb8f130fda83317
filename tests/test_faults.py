"""The site during a database outage (issue 16): every page answers 503 with the site's own
page, rendered without a query (not even loading the logged-in user), and the next request
after the database is back is served normally."""

import factories
from conftest import post_form
from sqlalchemy import create_engine

from marketplace.database import db


def _database_gone(tmp_path):
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")
    good = db.engine
    db.session.remove()
    db.session.configure(bind=unreachable)
    db.engine = unreachable

    def back():
        db.session.remove()
        db.session.configure(bind=good)
        db.engine = good
        unreachable.dispose()

    return back


def test_database_outage_answers_503_with_the_sites_own_page(app, client, tmp_path):
    with app.app_context():
        member = factories.user(db.session, factories.enterprise(db.session))
        product = factories.product(db.session)
        db.session.commit()
        product_id = product.id
    post_form(client, "/login", {"email": member.email, "password": factories.PASSWORD})
    visitor = app.test_client()
    assert client.get("/account").status_code == 200

    back = _database_gone(tmp_path)
    try:
        for who, path in ((visitor, "/"), (visitor, f"/products/{product_id}"),
                          (visitor, "/search?q=patent"), (client, "/account"),
                          (client, "/orders")):
            response = who.get(path)
            assert response.status_code == 503, path
            page = response.get_data(as_text=True)
            assert 'data-testid="error-page"' in page  # the site's page, not a bare one
            assert "cannot reach its database" in page
            assert response.headers["Retry-After"] == "5"
        assert visitor.get("/healthz").status_code == 503
    finally:
        back()
    assert visitor.get("/").status_code == 200
    assert client.get("/account").status_code == 200  # still logged in
