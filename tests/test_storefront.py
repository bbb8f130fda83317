"""Public storefront: home, category pages, product detail, institution directory and profiles."""

import re
from contextlib import contextmanager
from datetime import timedelta

import factories
import pytest
from helpers import login

from catalog.models import Product
from marketplace.database import db, utcnow

CARD_IDS = re.compile(r'data-testid="product-card" data-product-id="(\d+)"')
INSTITUTION_IDS = re.compile(r'data-testid="institution-card" data-org-id="(\d+)"')


def text(response) -> str:
    return response.get_data(as_text=True)


def card_ids(response) -> list[int]:
    return [int(value) for value in CARD_IDS.findall(text(response))]


def section(body: str, testid: str) -> str:
    """The HTML of one <section data-testid=...> (sections are not nested on these pages)."""
    start = body.index(f'data-testid="{testid}"')
    return body[start:body.index("</section>", start)]


@pytest.fixture
def build(app):
    """Write test rows in a short application context of their own.

    Requests then run in fresh contexts, as in production: nothing cached in ``g`` (the
    signed-in user, the CSRF token) leaks from the set-up or from one request to the next.
    """

    @contextmanager
    def building():
        with app.app_context():
            yield db.session
            db.session.commit()

    return building


def stored_product(app, product_id: int) -> Product:
    with app.app_context():
        return db.session.get(Product, product_id)


@pytest.fixture
def page_size(app, monkeypatch):
    def set_size(size: int):
        monkeypatch.setitem(app.config, "PAGE_SIZE", size)

    return set_size


def _hidden_products(session):
    """One listing for every reason a product must stay off the storefront."""
    unverified = factories.provider(session, name="Unverified Agency", verified=False)
    suspended_org = factories.provider(session, name="Suspended Agency", suspended=True)
    return {
        "draft": factories.product(session, status="draft", title="Draft listing", featured=True),
        "pending": factories.product(session, status="pending_review", title="Pending listing"),
        "suspended": factories.product(session, status="suspended", title="Suspended listing",
                                       featured=True),
        "archived": factories.product(session, status="archived", title="Archived listing"),
        "unverified": factories.product(session, unverified, title="Unverified provider listing",
                                        featured=True),
        "suspended_provider": factories.product(session, suspended_org,
                                                title="Suspended provider listing"),
    }


# --------------------------------------------------------------------------- home

def test_home_shows_featured_and_newest_and_hides_invisible_products(app, client, build):
    with build() as session:
        provider = factories.provider(session, name="Suzhou Patent Partners")
        featured = factories.product(session, provider, title="Featured patent filing", featured=True)
        plain = factories.product(session, provider, title="Plain trademark service",
                                  category_slug="trademark-registration")
        hidden = _hidden_products(session)
        factories.enterprise(session)
        factories.enterprise(session)

    response = client.get("/")
    assert response.status_code == 200
    body = text(response)
    assert "创新服务超市" in body
    featured_html = section(body, "featured")
    newest_html = section(body, "newest")
    assert "Featured patent filing" in featured_html
    assert "Plain trademark service" not in featured_html
    assert "Plain trademark service" in newest_html and "Featured patent filing" in newest_html
    for listing in hidden.values():
        assert listing.title not in body
    assert set(card_ids(response)) == {featured.id, plain.id}
    # Live figures: visible products, listed institutions, registered enterprises.
    assert re.search(r'data-testid="figure-products">2<', body)
    # Suzhou Patent Partners plus the four verified institutions behind the hidden listings
    # whose own status hides them; the unverified and suspended institutions do not count.
    assert re.search(r'data-testid="figure-institutions">5<', body)
    assert re.search(r'data-testid="figure-enterprises">2<', body)


def test_home_product_cards_show_listing_facts(client, build):
    with build() as session:
        provider = factories.provider(session, name="Card Facts Agency")
        factories.product(session, provider, title="Packaged card", prices=(500000, 900000),
                          voucher_eligible=True,
                          regions=["suzhou", "kunshan", "wuxi", "nanjing"])
        factories.product(session, provider, mode="quote", title="Quote card",
                          category_slug="ip-strategy")
        factories.product(session, provider, mode="financial", title="Loan card",
                          category_slug="credit-loans")

    body = text(client.get("/"))
    assert "From ¥5,000.00" in body
    assert "Quote on request" in body
    assert "¥500k–¥5M · 3.45%–4.80% · 6–36 months" in body
    assert "创新券" in body and "Innovation voucher" in body
    assert "Suzhou, Kunshan" in body and "+2" in body
    assert "Card Facts Agency" in body
    assert f'href="/institutions/{provider.id}"' in body
    assert "10 days" in body


def test_home_category_grid_counts_visible_products(client, build):
    with build() as session:
        factories.product(session, category_slug="patent-application")
        factories.product(session, category_slug="patent-application")
        factories.product(session, category_slug="trademark-registration")
        factories.product(session, category_slug="trademark-registration", status="draft")

    body = text(client.get("/"))
    assert body.count('data-testid="category-tile"') == 7
    ip_tile = body[body.index('data-slug="ip"'):body.index('data-slug="evaluation"')]
    assert re.search(r'title="Products in this category">3<', ip_tile)
    assert re.search(r'href="/c/patent-application"[^>]*>Patent application</a>\s*<span class="text-muted">2<', ip_tile)
    assert re.search(r'href="/c/trademark-registration"[^>]*>Trademark registration</a>\s*<span class="text-muted">1<', ip_tile)


# --------------------------------------------------------------------------- category pages

def test_top_level_category_lists_products_of_all_its_subcategories(client, build):
    with build() as session:
        patent = factories.product(session, category_slug="patent-application", title="Patent A")
        trademark = factories.product(session, category_slug="trademark-registration",
                                      title="Trademark B")
        loan = factories.product(session, mode="financial", category_slug="credit-loans",
                                 title="Loan C")
        factories.product(session, category_slug="patent-search", status="draft", title="Draft D")

    response = client.get("/c/ip")
    assert response.status_code == 200
    assert set(card_ids(response)) == {patent.id, trademark.id}
    body = text(response)
    assert "知识产权" in body
    assert 'data-testid="breadcrumbs"' in body
    subcategories = body[body.index('data-testid="subcategories"'):]
    assert re.search(r"Patent application<br>.*?</span>\s*<span[^>]*>1<", subcategories, re.S)

    response = client.get("/c/finance")
    assert card_ids(response) == [loan.id]


def test_subcategory_lists_only_its_products_with_breadcrumbs(client, build):
    with build() as session:
        patent = factories.product(session, category_slug="patent-application")
        factories.product(session, category_slug="trademark-registration")

    response = client.get("/c/patent-application")
    assert response.status_code == 200
    assert card_ids(response) == [patent.id]
    crumbs = text(response)[text(response).index('data-testid="breadcrumbs"'):]
    crumbs = crumbs[:crumbs.index("</ol>")]
    assert 'href="/c/ip"' in crumbs and "Intellectual property" in crumbs
    assert "Patent application" in crumbs


def test_category_pagination_has_no_duplicates_or_gaps(client, build, page_size):
    with build() as session:
        page_size(24)
        provider = factories.provider(session)
        created = [factories.product(session, provider, title=f"Listing {n:02d}") for n in range(30)]

    first = client.get("/c/patent-application")
    second = client.get("/c/patent-application?page=2")
    first_ids, second_ids = card_ids(first), card_ids(second)
    assert len(first_ids) == 24
    assert len(second_ids) == 6
    assert not set(first_ids) & set(second_ids)
    assert set(first_ids) | set(second_ids) == {p.id for p in created}
    assert "Showing 1–24 of 30" in text(first)
    assert "Showing 25–30 of 30" in text(second)
    assert 'href="/c/patent-application?page=2"' in text(first)


def test_category_pagination_keeps_filters_and_sort_in_links(client, build, page_size):
    with build() as session:
        page_size(2)
        provider = factories.provider(session)
        for _ in range(3):
            factories.product(session, provider, voucher_eligible=True)

    body = text(client.get("/c/patent-application?sort=price_asc&voucher=1"))
    assert re.search(r'href="/c/patent-application\?(?=[^"]*sort=price_asc)(?=[^"]*voucher=1)'
                     r'(?=[^"]*page=2)[^"]*"', body)


@pytest.mark.parametrize("raw", ["999", "abc", "0", "-3", "", "1e9", "99999999999999999999"])
def test_bad_or_overflowing_page_values_do_not_fail(client, build, page_size, raw):
    with build() as session:
        page_size(24)
        provider = factories.provider(session)
        for _ in range(30):
            factories.product(session, provider)

    response = client.get(f"/c/patent-application?page={raw}")
    assert response.status_code == 200
    ids = card_ids(response)
    # Past the end shows the last page; anything unusable shows the first.
    assert len(ids) == (6 if raw in ("999", "99999999999999999999") else 24)


def test_category_sort_by_price_and_sales(client, build):
    with build() as session:
        provider = factories.provider(session)
        mid = factories.product(session, provider, prices=(800000,), sales_count=1)
        cheap = factories.product(session, provider, prices=(100000, 300000), sales_count=9)
        dear = factories.product(session, provider, prices=(2500000,), sales_count=4)
        quote = factories.product(session, provider, mode="quote")

    low_high = card_ids(client.get("/c/patent-application?sort=price_asc"))
    assert low_high == [cheap.id, mid.id, dear.id, quote.id]
    high_low = card_ids(client.get("/c/patent-application?sort=price_desc"))
    assert high_low == [dear.id, mid.id, cheap.id, quote.id]
    assert card_ids(client.get("/c/patent-application?sort=sales"))[:3] == [cheap.id, dear.id,
                                                                           mid.id]
    # An unknown sort falls back to newest first.
    assert client.get("/c/patent-application?sort=drop-table").status_code == 200


def test_category_newest_sort_is_default(client, build):
    with build() as session:
        provider = factories.provider(session)
        older = factories.product(session, provider, title="Older")
        older.published_at = utcnow() - timedelta(days=3)
        newer = factories.product(session, provider, title="Newer")

    assert card_ids(client.get("/c/patent-application")) == [newer.id, older.id]


def test_category_filters_by_mode_region_and_voucher(client, build):
    with build() as session:
        provider = factories.provider(session)
        local = factories.product(session, provider, category_slug="credit-loans", mode="financial",
                                  regions=["suzhou_sip"], voucher_eligible=True)
        nationwide = factories.product(session, provider, category_slug="credit-loans",
                                       mode="financial", regions=["national"])
        quote = factories.product(session, provider, category_slug="ip-pledge", mode="quote",
                                  regions=["suzhou"], voucher_eligible=True)

    assert set(card_ids(client.get("/c/finance?mode=financial"))) == {local.id, nationwide.id}
    assert set(card_ids(client.get("/c/finance?region=suzhou_sip"))) == {local.id, nationwide.id}
    # "suzhou" does not match "suzhou_sip"; nationwide listings serve every region.
    assert set(card_ids(client.get("/c/finance?region=suzhou"))) == {quote.id, nationwide.id}
    assert set(card_ids(client.get("/c/finance?voucher=1"))) == {local.id, quote.id}
    response = client.get("/c/finance?mode=packaged")
    assert card_ids(response) == []
    assert "No services match these filters" in text(response)
    # Unknown filter values are ignored rather than failing.
    assert len(card_ids(client.get("/c/finance?mode=bogus&region=mars"))) == 3


def test_empty_category_shows_empty_state(client):
    response = client.get("/c/calibration")
    assert response.status_code == 200
    assert 'data-testid="empty-state"' in text(response)
    assert "No services in Calibration yet" in text(response)


def test_unknown_category_is_404(client):
    response = client.get("/c/no-such-category")
    assert response.status_code == 404
    assert "Page not found" in text(response)


# --------------------------------------------------------------------------- product detail

def test_packaged_product_detail_shows_packages(client, build):
    with build() as session:
        provider = factories.provider(session, name="Jiangsu IP Agency",
                                      regions_served=["suzhou", "wuxi"])
        listing = factories.product(session, provider, title="Invention patent filing",
                                    prices=(500000, 1200000, 2000000), voucher_eligible=True,
                                    tags=["patent", "专利"])

    response = client.get(f"/products/{listing.id}")
    assert response.status_code == 200
    body = text(response)
    assert "Invention patent filing" in body
    pricing = section(body, "pricing")
    for price in ("¥5,000.00", "¥12,000.00", "¥20,000.00"):
        assert price in pricing
    assert pricing.count('data-testid="package"') == 3
    assert "Basic" in pricing and "Premium" in pricing
    assert "Delivered in 30 days" in pricing
    assert "Search report" in pricing and "Filed application" in pricing
    assert "From ¥5,000.00" in body
    # Provider card, regions, tags, voucher eligibility, breadcrumbs.
    assert "Jiangsu IP Agency" in body and "IP agency" in body and "Verified" in body
    assert f'href="/institutions/{provider.id}"' in body
    assert "Wuxi" in body
    assert "专利" in body
    assert "Eligible" in body
    assert 'href="/c/ip"' in body and 'href="/c/patent-application"' in body


def test_quote_product_detail_shows_brief(client, build):
    with build() as session:
        listing = factories.product(session, mode="quote", category_slug="ip-strategy")

    body = text(client.get(f"/products/{listing.id}"))
    assert "Quote on request" in body
    assert "Priced by quotation" in body
    assert "Describe the technology, target markets and deadline." in section(body, "pricing")


def test_financial_product_detail_shows_ranges_and_fee(client, build):
    with build() as session:
        listing = factories.product(session, mode="financial", category_slug="credit-loans")

    pricing = section(text(client.get(f"/products/{listing.id}")), "pricing")
    assert "¥500,000.00 – ¥5,000,000.00" in pricing
    assert "3.45%–4.80%" in pricing
    assert "6–36 months" in pricing
    assert "No service fee" in pricing

    with build() as session:
        session.get(Product, listing.id).service_fee = 150000
    pricing = section(text(client.get(f"/products/{listing.id}")), "pricing")
    assert "¥1,500.00" in pricing and "No service fee" not in pricing


def test_logged_out_visitor_is_offered_sign_in_to_buy(client, build):
    with build() as session:
        listing = factories.product(session)

    body = text(client.get(f"/products/{listing.id}"))
    assert "Sign in as an enterprise to buy" in body
    assert f'href="/login?next=/products/{listing.id}"' in body or (
        f'href="/login?next=%2Fproducts%2F{listing.id}"' in body)


@pytest.mark.parametrize("reason", ["draft", "pending", "suspended", "archived", "unverified",
                                    "suspended_provider"])
def test_hidden_product_is_404_for_visitors(client, build, reason):
    with build() as session:
        listing = _hidden_products(session)[reason]

    response = client.get(f"/products/{listing.id}")
    assert response.status_code == 404
    assert listing.title not in text(response)


def test_hidden_product_preview_for_provider_member_and_staff(app, client, build):
    with build() as session:
        provider = factories.provider(session, verified=False)
        listing = factories.product(session, provider, status="draft", title="Secret draft")
        member = factories.user(session, provider)
        staff = factories.user(session, role="staff")
        outsider = factories.user(session, factories.provider(session))
        buyer = factories.user(session, factories.enterprise(session))

    for viewer in (member, staff):
        other = app.test_client()
        login(other, viewer)
        response = other.get(f"/products/{listing.id}")
        assert response.status_code == 200, viewer
        assert "Preview — not public" in text(response)
        assert "Secret draft" in text(response)

    for viewer in (outsider, buyer):
        other = app.test_client()
        login(other, viewer)
        assert other.get(f"/products/{listing.id}").status_code == 404

    assert stored_product(app, listing.id).view_count == 0


def test_public_product_has_no_preview_banner(client, build):
    with build() as session:
        listing = factories.product(session)
        member = factories.user(session, listing.provider)

    assert "Preview — not public" not in text(client.get(f"/products/{listing.id}"))
    login(client, member)
    assert "Preview — not public" not in text(client.get(f"/products/{listing.id}"))


def test_unknown_product_is_404(client):
    assert client.get("/products/987654").status_code == 404


def test_description_markdown_is_sanitised(client, build):
    with build() as session:
        listing = factories.product(session, description=(
            "## Scope of work\n\n"
            "- Novelty search\n- Claim drafting\n\n"
            "<script>alert('x')</script>\n\n"
            '<a href="#" onclick="steal()">click</a>\n\n'
            "[bad link](javascript:alert(1))\n\n"
            "[good link](https://example.com/guide)\n"
        ))

    body = text(client.get(f"/products/{listing.id}"))
    description = body[body.index('data-testid="description"'):]
    description = description[:description.index("</section>")]
    assert "<h2>Scope of work</h2>" in description
    assert "<li>Novelty search</li>" in description
    # Raw HTML is never passed through: it may only appear as escaped, inert text.
    assert "<script" not in body.replace('<script src="/static/', "")
    assert not re.search(r"<[a-z][^>]*\son\w+=", description)
    assert 'href="javascript:' not in body and "href='javascript:" not in body
    assert re.findall(r"<a\s[^>]*>", description) == [
        '<a href="https://example.com/guide" rel="nofollow noopener noreferrer">']
    assert 'href="https://example.com/guide"' in description


def test_view_count_increments_for_visitors_only(app, client, build):
    with build() as session:
        listing = factories.product(session)
        member = factories.user(session, listing.provider)
    updated_at = listing.updated_at

    client.get(f"/products/{listing.id}")
    app.test_client().get(f"/products/{listing.id}")
    insider = app.test_client()
    login(insider, member)
    insider.get(f"/products/{listing.id}")

    stored = stored_product(app, listing.id)
    assert stored.view_count == 2
    assert stored.updated_at == updated_at


# --------------------------------------------------------------------------- institutions

def test_provider_profile_shows_details_and_products(client, build):
    with build() as session:
        provider = factories.provider(
            session, name="Suzhou Tech Valuation Centre", institution_type="evaluation_centre",
            regions_served=["suzhou", "shanghai"], founded_year=2009,
            website="https://valuation.example.com", contact_name="Wang Fang")
        provider.description = "## About us\n\nWe value **patents**.\n\n<script>alert(1)</script>"
        shown = factories.product(session, provider, title="Patent valuation report",
                                  category_slug="ip-valuation")
        factories.product(session, provider, title="Unfinished draft", status="draft")

    response = client.get(f"/institutions/{provider.id}")
    assert response.status_code == 200
    body = text(response)
    assert "Suzhou Tech Valuation Centre" in body
    assert "Evaluation centre" in body and "评估评价机构" in body
    assert "Verified institution" in body
    assert "Shanghai" in body and "2009" in body and "Wang Fang" in body
    assert re.search(r'<a href="https://valuation.example.com" rel="nofollow noopener"', body)
    assert "<h2>About us</h2>" in body and "<strong>patents</strong>" in body
    assert "<script>alert" not in body
    assert card_ids(response) == [shown.id]
    assert "Unfinished draft" not in body
    assert "Preview — not public" not in body


def test_provider_profile_paginates_products(client, build, page_size):
    with build() as session:
        page_size(4)
        provider = factories.provider(session)
        created = [factories.product(session, provider) for _ in range(6)]

    first = card_ids(client.get(f"/institutions/{provider.id}"))
    second = card_ids(client.get(f"/institutions/{provider.id}?page=2"))
    assert len(first) == 4 and len(second) == 2
    assert set(first) | set(second) == {p.id for p in created}


@pytest.mark.parametrize("fields", [{"verified": False}, {"suspended": True}])
def test_unlisted_provider_profile_is_404_but_previewable(app, client, build, fields):
    with build() as session:
        provider = factories.provider(session, name="Hidden Institution", **fields)
        factories.product(session, provider, title="Listing of hidden institution")
        member = factories.user(session, provider)
        staff = factories.user(session, role="admin")

    assert client.get(f"/institutions/{provider.id}").status_code == 404
    for viewer in (member, staff):
        other = app.test_client()
        login(other, viewer)
        response = other.get(f"/institutions/{provider.id}")
        assert response.status_code == 200
        assert "Preview — not public" in text(response)
        assert "Listing of hidden institution" in text(response)


def test_enterprise_has_no_institution_profile(client, build):
    with build() as session:
        company = factories.enterprise(session)
    assert client.get(f"/institutions/{company.id}").status_code == 404


def test_directory_lists_only_listed_institutions_with_counts(client, build):
    with build() as session:
        busy = factories.provider(session, name="Busy Bank", institution_type="bank")
        factories.product(session, busy, mode="financial", category_slug="credit-loans")
        factories.product(session, busy, mode="financial", category_slug="credit-loans")
        factories.product(session, busy, status="draft")
        quiet = factories.provider(session, name="Quiet Lab", institution_type="testing_lab",
                                   regions_served=["wuxi"])
        factories.provider(session, name="Unverified Firm", verified=False)
        factories.provider(session, name="Suspended Firm", suspended=True)
        factories.enterprise(session, name="Some Enterprise Co., Ltd.")

    response = client.get("/institutions")
    assert response.status_code == 200
    body = text(response)
    assert [int(i) for i in INSTITUTION_IDS.findall(body)] == [busy.id, quiet.id]
    assert "Unverified Firm" not in body and "Suspended Firm" not in body
    assert "Some Enterprise" not in body
    assert "2 products" in body and "0 products" in body
    assert "Bank" in body and "Testing and certification lab" in body


def test_directory_filters_by_type_and_region(client, build):
    with build() as session:
        bank = factories.provider(session, institution_type="bank", regions_served=["suzhou"])
        agency = factories.provider(session, institution_type="ip_agency", regions_served=["wuxi"])
        national = factories.provider(session, institution_type="ip_agency",
                                      regions_served=["national"])

    def ids(query):
        return {int(i) for i in INSTITUTION_IDS.findall(text(client.get(f"/institutions{query}")))}

    assert ids("?type=bank") == {bank.id}
    assert ids("?type=ip_agency") == {agency.id, national.id}
    assert ids("?region=wuxi") == {agency.id, national.id}
    assert ids("?type=ip_agency&region=suzhou") == {national.id}
    assert ids("?type=nonsense") == {bank.id, agency.id, national.id}
    response = client.get("/institutions?type=insurance")
    assert "No institutions match these filters" in text(response)


def test_directory_pagination(client, build, page_size):
    with build() as session:
        page_size(2)
        created = [factories.provider(session) for _ in range(5)]

    seen = []
    for page in (1, 2, 3):
        response = client.get(f"/institutions?page={page}")
        seen += [int(i) for i in INSTITUTION_IDS.findall(text(response))]
    assert sorted(seen) == sorted(org.id for org in created)
    assert "Showing 5–5 of 5" in text(client.get("/institutions?page=3"))
    assert "Showing 1–2 of 5" in text(client.get("/institutions?page=abc"))
    assert client.get("/institutions?page=-1").status_code == 200
