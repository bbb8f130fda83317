"""Listing management by institution members: the three pricing modes, parsing of yuan
amounts and rates, tags and categories, live Markdown preview, drafts, changes to published
listings, withdraw, archive, restore and duplicate."""

import re

import factories
import order_support as osup
import provider_support as ps
import pytest
from conftest import csrf_token, post_form
from sqlalchemy import select

from catalog.models import Category, Package, Product, ProductRevision
from marketplace.database import db
from marketplace.models import Organisation
from orders import quotes
from providers import listings


@pytest.fixture
def member(app):
    with app.app_context():
        org = factories.provider(db.session, name="Suzhou Patent House")
        owner = factories.user(db.session, org)
        db.session.commit()
        return org.id, owner


def _category_id(app, slug="patent-application") -> int:
    with app.app_context():
        return db.session.scalar(select(Category.id).where(Category.slug == slug))


def listing_form(app, **changes) -> dict:
    data = {
        "category_id": str(_category_id(app)),
        "title": "Invention patent filing for SMEs",
        "summary": "Prior-art search, drafting and filing with CNIPA, handled by agents.",
        "description": "## What you get\n\n- Prior-art search\n- Drafting and filing",
        "regions": ["suzhou", "jiangsu"],
        "tags": " patent, 专利 ,Patent,, SME ",
        "delivery_days": "",
        "voucher_eligible": "y",
        "pricing_mode": "packaged",
        "packages-0-name": "Basic", "packages-0-price": "5,000.00",
        "packages-0-delivery_days": "20", "packages-0-deliverables": "Search report\nFiling",
        "packages-1-name": "Premium", "packages-1-price": "¥12,000.50",
        "packages-1-delivery_days": "30", "packages-1-deliverables": "Everything in Basic",
    }
    data.update(changes)
    return data


def _create(client, data) -> int:
    response = post_form(client, "/provider/listings/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return int(response.headers["Location"].rstrip("/").split("/")[-2])


def _product(app, product_id) -> Product:
    with app.app_context():
        product = db.session.get(Product, product_id)
        product.packages  # noqa: B018 - load before leaving the session
        db.session.expunge_all()
        return product


def test_packaged_listing_parses_yuan_tags_and_keeps_the_cheapest_price(app, client, member):
    org_id, owner = member
    ps.login(client, owner)
    assert client.get("/provider/listings/new").status_code == 200
    product_id = _create(client, listing_form(app))
    product = _product(app, product_id)
    assert product.status == "draft" and product.provider_id == org_id
    assert [(p.name, p.price, p.delivery_days) for p in product.packages] == [
        ("Basic", 500000, 20), ("Premium", 1200050, 30)]
    assert product.price_from == 500000
    assert product.delivery_days == 20
    assert product.tags == ["patent", "专利", "SME"]
    assert product.regions == ["suzhou", "jiangsu"]
    assert product.voucher_eligible is True
    page = client.get(f"/provider/listings/{product_id}/edit").get_data(as_text=True)
    assert "5,000.00" in page and "12,000.50" in page  # shown back in yuan
    # Drafts are not public.
    assert app.test_client().get(f"/products/{product_id}").status_code == 404


def test_quote_and_financial_modes_have_their_own_fields(app, client, member):
    _org_id, owner = member
    ps.login(client, owner)
    quote_id = _create(client, listing_form(
        app, pricing_mode="quote",
        quote_brief="Describe the technology, the markets you target and your deadline."))
    quote = _product(app, quote_id)
    assert quote.pricing_mode == "quote" and quote.price_from is None
    assert quote.packages == [] and quote.quote_brief.startswith("Describe the technology")

    financial_id = _create(client, listing_form(
        app, category_id=str(_category_id(app, "ip-pledge")), pricing_mode="financial",
        amount_min="500,000", amount_max="5,000,000.00", rate_min="3.45", rate_max="4.8%",
        term_min_months="6", term_max_months="36", service_fee="0"))
    financial = _product(app, financial_id)
    assert (financial.amount_min, financial.amount_max) == (50_000_000, 500_000_000)
    assert (financial.rate_min_bp, financial.rate_max_bp) == (345, 480)
    assert (financial.term_min_months, financial.term_max_months) == (6, 36)
    assert financial.service_fee == 0 and financial.price_from == 0
    assert financial.packages == []

    # Switching a draft to another mode clears the old mode's fields.
    assert post_form(client, f"/provider/listings/{financial_id}/edit", listing_form(
        app, pricing_mode="packaged")).status_code == 302
    switched = _product(app, financial_id)
    assert switched.amount_min is None and switched.rate_max_bp is None
    assert switched.service_fee is None and switched.price_from == 500000


@pytest.mark.parametrize(("changes", "message"), [
    ({"category_id": "top"}, "Choose a sub-category"),
    ({"tags": ",".join(f"tag{i}" for i in range(11))}, "at most 10 tags"),
    ({"packages-0-price": "five thousand"}, "is not an amount"),
    ({"packages-0-price": "5,000.001"}, "at most 2 decimal places"),
    ({"packages-0-delivery_days": ""}, "1 to 730 days"),
    ({"packages-0-name": "", "packages-0-price": "", "packages-0-delivery_days": "",
      "packages-0-deliverables": "", "packages-1-name": "", "packages-1-price": "",
      "packages-1-delivery_days": "", "packages-1-deliverables": ""},
     "Describe at least one package"),
    ({"packages-1-name": "Basic"}, "different name"),
    ({"pricing_mode": "quote", "quote_brief": ""}, "what they must describe"),
    ({"pricing_mode": "financial", "amount_min": "900", "amount_max": "100", "rate_min": "3",
      "rate_max": "4", "term_min_months": "6", "term_max_months": "12", "service_fee": "0"},
     "starts above where it ends"),
    ({"pricing_mode": "financial", "amount_min": "100", "amount_max": "900", "rate_min": "3.456",
      "rate_max": "4", "term_min_months": "6", "term_max_months": "12", "service_fee": "0"},
     "at most two decimals"),
    ({"regions": []}, "Choose at least one region"),
    ({"title": "Hi"}, "between 5 and 200"),
])
def test_listing_form_explains_every_problem_and_saves_nothing(app, client, member, changes,
                                                               message):
    _org_id, owner = member
    ps.login(client, owner)
    if changes.get("category_id") == "top":
        changes = {"category_id": str(_category_id(app, "ip"))}
    response = post_form(client, "/provider/listings/new", listing_form(app, **changes))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert ps.count(db.session, Product) == 0


def test_live_markdown_preview_is_sanitised_and_needs_csrf(app, client, member):
    _org_id, owner = member
    ps.login(client, owner)
    token = csrf_token(client, "/provider/listings/new")
    text = ("## Services\n\n**Fast** filing. <script>alert(1)</script> "
            "[click](javascript:alert(2)) <img src=x onerror=alert(3)>")
    response = client.post("/provider/markdown-preview", data={"description": text},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h2>Services</h2>" in html and "<strong>Fast</strong>" in html
    assert "<script" not in html and "<img" not in html and "href=\"javascript" not in html
    assert "&lt;script&gt;" in html  # shown as text, never run
    assert client.post("/provider/markdown-preview",
                       data={"description": "x"}).status_code == 400  # no CSRF token
    empty = client.post("/provider/markdown-preview", data={"description": ""},
                        headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "Nothing to preview yet" in empty
    # The editor wires the preview with htmx attributes, not inline script.
    page = client.get("/provider/listings/new").get_data(as_text=True)
    assert 'hx-post="/provider/markdown-preview"' in page
    assert "<script>" not in page and "onclick" not in page


def test_unverified_institution_drafts_but_cannot_submit(app, client):
    with app.app_context():
        org = factories.provider(db.session, verified=False)
        owner = factories.user(db.session, org)
        db.session.commit()
    ps.login(client, owner)
    product_id = _create(client, listing_form(app))
    response = post_form(client, f"/provider/listings/{product_id}/submit", {})
    assert response.status_code == 302
    page = client.get(f"/provider/listings/{product_id}/edit").get_data(as_text=True)
    assert "must be verified by platform staff" in page
    assert _product(app, product_id).status == "draft"


def test_draft_edit_submit_withdraw_cycle(app, client, member):
    _org_id, owner = member
    ps.login(client, owner)
    product_id = _create(client, listing_form(app))
    edit = f"/provider/listings/{product_id}/edit"
    assert post_form(client, edit, listing_form(app, title="Patent filing, edited")).status_code == 302
    assert _product(app, product_id).title == "Patent filing, edited"  # drafts edit in place
    with app.app_context():
        assert ps.count(db.session, ProductRevision) == 0

    assert post_form(client, f"/provider/listings/{product_id}/submit", {}).status_code == 302
    assert _product(app, product_id).status == "pending_review"
    locked = post_form(client, edit, listing_form(app, title="Sneaky change"))
    assert locked.status_code == 422 and "Withdraw it to make changes" in locked.get_data(
        as_text=True)
    assert _product(app, product_id).title == "Patent filing, edited"

    assert post_form(client, f"/provider/listings/{product_id}/withdraw", {}).status_code == 302
    assert _product(app, product_id).status == "draft"
    # Save-and-submit in one go.
    response = post_form(client, edit, listing_form(app, title="Patent filing v3", then="submit"))
    assert response.status_code == 302
    product = _product(app, product_id)
    assert (product.title, product.status) == ("Patent filing v3", "pending_review")


def test_editing_a_published_listing_keeps_the_public_version(app, client, member):
    org_id, owner = member
    with app.app_context():
        product = factories.product(db.session, db.session.get(Organisation, org_id),
                                    title="Published patent filing")
        db.session.commit()
        product_id = product.id
    ps.login(client, owner)
    edit = f"/provider/listings/{product_id}/edit"
    form = client.get(edit).get_data(as_text=True)
    assert "Published patent filing" in form and "kept aside as a change" in form

    response = post_form(client, edit, listing_form(app, title="Improved patent filing"))
    assert response.status_code == 302
    assert _product(app, product_id).title == "Published patent filing"
    public = app.test_client().get(f"/products/{product_id}").get_data(as_text=True)
    assert "Published patent filing" in public and "Improved patent filing" not in public
    with app.app_context():
        revision = db.session.scalar(select(ProductRevision))
        assert revision.status == "draft" and revision.data["title"] == "Improved patent filing"
    # The edit page and the preview show the proposed version.
    assert "Improved patent filing" in client.get(edit).get_data(as_text=True)
    preview = client.get(f"/provider/listings/{product_id}/preview").get_data(as_text=True)
    assert "Improved patent filing" in preview and "once the change is approved" in preview

    assert post_form(client, f"/provider/listings/{product_id}/discard", {}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(ProductRevision.status)) == "withdrawn"
    assert "Published patent filing" in client.get(edit).get_data(as_text=True)


def test_duplicate_archive_and_restore(app, client, member):
    org_id, owner = member
    with app.app_context():
        product = factories.product(db.session, db.session.get(Organisation, org_id),
                                    title="Trademark registration")
        db.session.commit()
        product_id = product.id
    ps.login(client, owner)
    response = post_form(client, f"/provider/listings/{product_id}/duplicate", {})
    copy_id = int(response.headers["Location"].split("/")[-2])
    copy = _product(app, copy_id)
    assert copy.title == "Copy of Trademark registration" and copy.status == "draft"
    assert [p.price for p in copy.packages] == [500000, 1200000]

    assert post_form(client, f"/provider/listings/{product_id}/archive", {}).status_code == 302
    assert _product(app, product_id).status == "archived"
    assert app.test_client().get(f"/products/{product_id}").status_code == 404
    with app.app_context():
        assert ps.outbox_reasons(db.session, product_id) == ["archived"]
    assert post_form(client, f"/provider/listings/{product_id}/restore", {}).status_code == 302
    assert _product(app, product_id).status == "draft"
    # Archived twice is a conflict, not a crash.
    post_form(client, f"/provider/listings/{product_id}/archive", {})
    assert post_form(client, f"/provider/listings/{product_id}/archive", {}).status_code == 409


def test_listing_pages_list_by_status_with_counts(app, client, member):
    org_id, owner = member
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        published = factories.product(db.session, org, title="Live listing", view_count=42,
                                      favourite_count=7)
        factories.product(db.session, org, title="Draft listing", status="draft")
        rejected = factories.product(db.session, org, title="Rejected listing", status="draft")
        rejected.rejection_reason = "Prices must include VAT."
        db.session.commit()
        published_id = published.id
    ps.login(client, owner)
    page = client.get("/provider/listings").get_data(as_text=True)
    assert "Live listing" in page and "Draft listing" in page
    drafts = client.get("/provider/listings?status=draft").get_data(as_text=True)
    assert "Live listing" not in drafts and "Draft listing" in drafts
    dashboard = client.get("/provider").get_data(as_text=True)
    assert "Prices must include VAT." in dashboard  # a rejection to fix
    assert "42" in dashboard and f"/provider/listings/{published_id}/edit" in dashboard
    # No orders yet: the orders card says so instead of a placeholder for a missing feature.
    assert "Orders arrive here with the buying feature" not in dashboard
    assert 'data-testid="orders-empty"' in dashboard
    with app.app_context():  # an order not paid yet waits on the buyer, not on the institution
        org = db.session.get(Organisation, org_id)
        buyer_org = factories.enterprise(db.session)
        osup.order(db.session, osup.Parties(
            buyer_org=buyer_org, buyer=factories.user(db.session, buyer_org), provider_org=org,
            provider=owner, staff=None, outsider=None), status="pending_payment")
        db.session.commit()
    dashboard = client.get("/provider").get_data(as_text=True)
    assert 'data-testid="orders-empty"' in dashboard and "All orders (1)" in dashboard
    assert 'href="/provider/orders"' in dashboard and 'href="/provider/quotes"' in dashboard


def _orders_card(page: str) -> str:
    start = page.index('data-testid="orders-card"')
    return page[start:page.index("</div>\n      </div>", start)]


def _card_count(card: str, key: str) -> tuple[int, str]:
    """(count, link) of one row of the dashboard's orders card."""
    row = re.search(rf'data-testid="orders-{key}">\s*<a [^>]*href="([^"]+)".*?'
                    r'data-testid="count">([\d,]+)<', card, re.S)
    assert row, f"no {key} row in the orders card"
    return int(row.group(2).replace(",", "")), row.group(1).replace("&amp;", "&")


def test_dashboard_orders_card_counts_what_waits_on_the_institution(app, client, member):
    org_id, owner = member
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        buyer_org = factories.enterprise(db.session)
        p = osup.Parties(buyer_org=buyer_org, buyer=factories.user(db.session, buyer_org),
                         provider_org=org, provider=owner, staff=None, outsider=None)
        for status, n in (("paid", 3), ("accepted", 1), ("in_progress", 2), ("delivered", 1),
                          ("disputed", 1), ("completed", 4), ("pending_payment", 1)):
            for _ in range(n):
                osup.order(db.session, p, status=status)
        quoted = factories.product(db.session, org, mode="quote", title="FTO analysis",
                                   category_slug="ip-strategy")
        for _ in range(2):
            quotes.request_quote(db.session, p.buyer, quoted, "Freedom to operate in the EU",
                                 None, None)
        answered = quotes.request_quote(db.session, p.buyer, quoted, "And in the US", None, None)
        answered.status = "quoted"
        # Another institution's orders and requests are not counted.
        other = osup.parties(db.session)
        osup.order(db.session, other, status="paid")
        quotes.request_quote(db.session, other.buyer, factories.product(
            db.session, other.provider_org, mode="quote", category_slug="ip-strategy"),
            "Not yours", None, None)
        db.session.commit()
    ps.login(client, owner)
    card = _orders_card(client.get("/provider").get_data(as_text=True))
    assert "Orders arrive here" not in card and 'data-testid="orders-empty"' not in card
    assert _card_count(card, "paid") == (3, "/provider/orders?status=paid")
    assert _card_count(card, "accepted") == (1, "/provider/orders?status=accepted")
    assert _card_count(card, "in_progress") == (2, "/provider/orders?status=in_progress")
    assert _card_count(card, "delivered") == (1, "/provider/orders?status=delivered")
    assert _card_count(card, "disputed") == (1, "/provider/orders?status=disputed")
    assert _card_count(card, "open_quotes") == (2, "/provider/quotes?status=open")
    assert "All orders (13)" in card and "Orders needing action (6)" in card
    # Every link opens the list the count promised.
    paid = client.get("/provider/orders?status=paid").get_data(as_text=True)
    assert paid.count('data-testid="order-row"') == 3
    open_requests = client.get("/provider/quotes?status=open").get_data(as_text=True)
    assert open_requests.count('data-testid="quote-request-row"') == 2
    assert "Not yours" not in open_requests and 'data-testid="quote-filter"' in open_requests
    everything = client.get("/provider/quotes").get_data(as_text=True)
    assert everything.count('data-testid="quote-request-row"') == 3
    nav = client.get("/provider").get_data(as_text=True)
    nav = nav[nav.index('data-testid="portal-nav"'):]
    assert 'href="/provider/orders"' in nav[:nav.index("</ul>")]
    assert 'href="/provider/quotes"' in nav[:nav.index("</ul>")]


def test_provider_without_an_institution_sees_no_quote_requests(app, client, member):
    org_id, owner = member
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        buyer_org = factories.enterprise(db.session)
        quotes.request_quote(db.session, factories.user(db.session, buyer_org), factories.product(
            db.session, org, mode="quote", category_slug="ip-strategy"), "Secret need", None, None)
        former = factories.user(db.session, None, role="provider")  # e.g. left the institution
        db.session.commit()
    ps.login(client, former)
    response = client.get("/provider/quotes")
    assert response.status_code == 403 and "Secret need" not in response.get_data(as_text=True)


def test_snapshot_round_trip_updates_packages_in_place(app, session):
    org = factories.provider(session)
    product = factories.product(session, org)
    package_ids = [p.id for p in product.packages]
    data = listings.read_product(product)
    assert listings.ListingData.from_dict(data.to_dict()) == data
    data.packages[0].price = 450000
    data.packages = data.packages[:1]
    listings.write_product(product, data)
    session.flush()
    assert [p.id for p in product.packages] == package_ids[:1]
    assert product.price_from == 450000
    assert session.scalars(select(Package.id).where(Package.product_id == product.id)).all() == (
        package_ids[:1])


def test_tags_and_percent_parsing_units():
    assert listings.parse_tags("a, b，c、 A ,#b") == ["a", "b", "c"]
    with pytest.raises(listings.RuleError):
        listings.parse_tags(["x" * 31])
    assert listings.parse_percent("3.85") == 385
    assert listings.parse_percent("12%") == 1200
    for bad in ("abc", "-1", "1.234", "nan"):
        with pytest.raises(ValueError):
            listings.parse_percent(bad)
