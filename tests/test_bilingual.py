"""Bilingual content: a listing's second-language title and summary are shown to readers of
that language first, and the page falls back to the listing's own text."""

import factories
from flask_babel import refresh


def test_listing_shows_the_viewers_language_first(app, session):
    org = factories.provider(session)
    product = factories.product(session, org, title="发明专利申请代理", summary="从检索到授权。")
    product.title_alt, product.summary_alt = "Invention patent filing", "From search to grant."
    # The session fixture's app context is shared: forget the locale chosen before.
    with app.test_request_context(headers={"Cookie": "lang=zh_Hans_CN"}):
        refresh()
        assert (product.local_title, product.local_summary) == ("发明专利申请代理", "从检索到授权。")
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        refresh()
        assert (product.local_title, product.local_summary) == (
            "Invention patent filing", "From search to grant.")


def test_a_listing_in_one_language_shows_it_to_everyone(app, session):
    org = factories.provider(session)
    product = factories.product(session, org, title="Trademark registration")
    with app.test_request_context(headers={"Cookie": "lang=zh_Hans_CN"}):
        refresh()
        assert product.local_title == "Trademark registration"
