"""Whole-page cache for visitors (catalog/page_cache.py): a visitor's second view of a public
catalogue page is served from memory with one or two SQL statements, yet every change a buyer
could notice shows on the very next request, in every worker; logged-in members, flash
messages and comparison picks never meet a cached page, and each visitor's forms carry their
own CSRF token."""

import re
from datetime import UTC, datetime

import factories
import order_support as support
import pytest
from conftest import CSRF_META, post_form
from flask import g
from query_budget import count_queries
from sqlalchemy import select, update

from catalog import reviews
from catalog.models import CatalogVersion, Product
from catalog.search.index import reindex_all
from catalog.search.worker import drain_outbox
from marketplace import create_app
from marketplace.database import db
from providers import credibility, listings, onboarding

FIVES = {"quality": "5", "timeliness": "5", "communication": "5", "value": "5"}
FAIR = {"clarity": "4", "cooperation": "3", "payment": "5"}


@pytest.fixture
def p(session):
    parties = support.parties(session)
    session.commit()
    return parties


@pytest.fixture
def listing(session, p):
    product = factories.product(session, p.provider_org, title="Cached patent drafting",
                                prices=(500000, 1200000))
    session.commit()
    return product


@pytest.fixture
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def fresh_request() -> None:
    """The test's app context (the ``session`` fixture) outlives each test-client request, so
    Flask-WTF's token and Flask-Login's user in ``g`` would leak from one visitor to the next; a real
    server starts every request with an empty ``g``."""
    for name in ("csrf_token", "_login_user"):
        g.pop(name, None)


def get(client, path):
    fresh_request()
    response = client.get(path)
    assert response.status_code == 200, path
    return response


def twice(client, path):
    """Load ``path`` until it is cached; the second answer must come from the cache."""
    get(client, path)
    response = get(client, path)
    assert response.headers["X-Page-Cache"] == "hit", path
    return response


def text(response) -> str:
    return response.get_data(as_text=True)


def without_tokens(html: str) -> str:
    for token in set(CSRF_META.findall(html)):
        html = html.replace(token, "TOKEN")
    return html


# --------------------------------------------------------------------------- hits


def test_public_pages_are_served_from_the_cache_with_at_most_two_statements(
        app, session, client, p, listing, index_dir):
    reindex_all(session, index_dir)
    pages = ["/", "/c/patent-application", "/c/ip?sort=price_asc", f"/products/{listing.id}",
             "/institutions", f"/institutions/{p.provider_org.id}",
             "/search?q=patent&mode=packaged&region=suzhou"]
    for path in pages:
        first = get(client, path)
        assert first.headers["X-Page-Cache"] == "miss", path
        assert first.headers["Cache-Control"] == "private, no-store"
        with app.app_context(), count_queries() as counted:
            hit = get(client, path)
        assert hit.headers["X-Page-Cache"] == "hit", path
        assert hit.headers["Cache-Control"] == "private, no-store"
        assert counted.count <= 2, f"{path}\n{counted.report()}"
        if path != "/institutions":
            assert (f'data-product-id="{listing.id}"' in text(hit)
                    or "Cached patent drafting" in text(hit)), path
        # The same page; the signed token carries a timestamp, so compare without it.
        assert without_tokens(text(hit)) == without_tokens(text(first)), path


def test_a_cached_product_page_still_counts_the_view(session, client, listing):
    twice(client, f"/products/{listing.id}")
    get(client, f"/products/{listing.id}")
    session.expire_all()
    assert session.get(Product, listing.id).view_count == 3


def test_views_are_written_in_batches_when_an_interval_is_set(app, session, client, listing,
                                                              monkeypatch):
    from catalog import services

    monkeypatch.setitem(app.config, "VIEW_COUNT_INTERVAL", 3600)
    monkeypatch.setattr(services, "_views", services._ViewCounter())
    path = f"/products/{listing.id}"
    get(client, path)
    with app.app_context(), count_queries() as counted:
        assert get(client, path).headers["X-Page-Cache"] == "hit"
    assert counted.count <= 2, counted.report()  # no UPDATE, no commit
    session.expire_all()
    assert session.get(Product, listing.id).view_count == 0
    # The interval passes: the next view writes all of them.
    monkeypatch.setattr(services._views, "_written", services._views._written - 3601)
    get(client, path)
    session.expire_all()
    assert session.get(Product, listing.id).view_count == 3


def test_a_view_count_does_not_empty_the_cache(session, client, listing):
    twice(client, "/c/patent-application")
    get(client, f"/products/{listing.id}")  # one UPDATE of view_count
    assert get(client, "/c/patent-application").headers["X-Page-Cache"] == "hit"


# --------------------------------------------------------------------------- invalidation


def price_shown(html: str) -> bool:
    return "¥3,000" in html or "3,000.00" in html


def test_an_approved_price_edit_shows_at_once(session, client, p, listing):
    product_page, category_page = f"/products/{listing.id}", "/c/patent-application"
    twice(client, product_page)
    twice(client, category_page)
    data = listings.read_product(listing)
    data.packages[0].price = 300000
    assert listings.save_listing(session, p.provider, listing, data) == "revision"
    listings.submit(session, p.provider, listing)
    session.commit()
    # Waiting for review: the public page still shows the approved price (and is cached).
    assert not price_shown(text(get(client, product_page)))
    listings.approve(session, p.staff, listing)
    session.commit()
    for path in (product_page, category_page):
        response = get(client, path)
        assert response.headers["X-Page-Cache"] == "miss", path
        assert price_shown(text(response)), path


def test_a_members_product_page_shows_an_approved_price_edit_at_once(session, client, p,
                                                                     listing):
    """The listing's pricing, details and description are a block shared by every viewer
    (rendered once, reused by members' views): a member sees the approved edit at once."""
    support.login(client, p.buyer)
    product_page = f"/products/{listing.id}"
    for _view in range(2):
        page = get(client, product_page)
        assert page.headers["X-Page-Cache"] == "bypass"
        assert not price_shown(text(page))
    data = listings.read_product(listing)
    data.packages[0].price = 300000
    data.description = "Now with **two** office-action replies included."
    listings.save_listing(session, p.provider, listing, data)
    listings.submit(session, p.provider, listing)
    listings.approve(session, p.staff, listing)
    session.commit()
    page = text(get(client, product_page))
    assert price_shown(page) and "<strong>two</strong> office-action replies" in page


def test_a_withdrawn_listing_and_a_suspended_institution_vanish_at_once(session, client, p,
                                                                        listing):
    other = factories.product(session, title="Second cached listing")
    session.commit()
    product_page = f"/products/{listing.id}"
    twice(client, product_page)
    twice(client, "/c/patent-application")
    listings.archive(session, p.provider, listing)
    session.commit()
    assert client.get(product_page).status_code == 404
    assert "Cached patent drafting" not in text(get(client, "/c/patent-application"))

    profile = f"/institutions/{other.provider_id}"
    assert "Second cached listing" in text(twice(client, profile))
    onboarding.suspend(session, p.staff, other.provider, "Licence expired")
    session.commit()
    assert client.get(profile).status_code == 404
    assert "Second cached listing" not in text(get(client, "/c/patent-application"))


def test_a_new_review_and_a_credibility_change_show_at_once(session, client, p, listing):
    product_page = f"/products/{listing.id}"
    twice(client, product_page)
    twice(client, "/c/patent-application")
    order = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                          product=listing)
    session.commit()
    now = datetime.now(UTC)
    reviews.submit_review(session, order, p.buyer, FIVES, "Quick and careful work.", now=now,
                          blind_days=14)
    reviews.submit_review(session, order, p.provider, FAIR, "", now=now, blind_days=14)
    session.commit()
    assert 'data-average="5.00" data-count="1"' in text(get(client, "/c/patent-application"))
    assert "Quick and careful work." in text(get(client, product_page))

    profile = f"/institutions/{p.provider_org.id}"
    twice(client, profile)
    credibility.recompute(session, p.provider_org)
    session.commit()
    session.refresh(p.provider_org)
    level = p.provider_org.credibility_level
    assert level
    for path in (profile, "/c/patent-application"):
        assert f'data-level="{level}"' in text(get(client, path)), path


def test_a_profile_edit_and_a_category_edit_show_at_once(session, client, p, listing):
    profile, category_page = f"/institutions/{p.provider_org.id}", "/c/patent-application"
    twice(client, profile)
    twice(client, category_page)
    edited = onboarding.InstitutionProfile.of(p.provider_org)
    edited.description = "Now also **utility models** and design patents."
    onboarding.update_profile(session, p.provider, p.provider_org, edited)
    session.commit()
    assert "utility models" in text(get(client, profile))

    category = factories.category(session)  # an admin renames a category
    category.name = "Patent filing (invention and utility)"
    session.commit()
    assert "Patent filing (invention and utility)" in text(get(client, category_page))
    assert "Patent filing (invention and utility)" in text(get(client, f"/products/{listing.id}"))


def test_a_sale_reorders_the_best_selling_sort_at_once(session, client, p, listing):
    other = factories.product(session, p.provider_org, title="Soon the best seller")
    session.commit()
    path = "/c/patent-application?sort=sales"

    def order(html):
        return [int(i) for i in re.findall(r'data-testid="product-card" data-product-id="(\d+)"',
                                           html)]

    before = order(text(twice(client, path)))
    assert set(before) == {listing.id, other.id}
    # orders.services.complete counts a sale with this statement (no outbox row).
    for _sale in range(2):
        session.execute(update(Product).where(Product.id == before[-1])
                        .values(sales_count=Product.sales_count + 1,
                                updated_at=Product.updated_at)
                        .execution_options(synchronize_session=False))
        session.commit()
    assert order(text(get(client, path)))[0] == before[-1]


def test_search_pages_follow_the_index_after_the_outbox_drain(session, client, p, listing,
                                                             index_dir):
    reindex_all(session, index_dir)
    path = "/search?q=cached"
    assert f'data-product-id="{listing.id}"' in text(twice(client, path))
    listing.title = "Renamed trademark service"
    from catalog.search import outbox as search_outbox

    search_outbox.enqueue(session, listing.id, "edited")
    session.commit()
    drain_outbox(session, index_dir)
    assert f'data-product-id="{listing.id}"' not in text(get(client, path))
    assert f'data-product-id="{listing.id}"' in text(get(client, "/search?q=trademark"))


def test_the_category_counts_follow_the_catalogue(session, client, p, listing):
    def count(html):
        return re.search(r'href="/c/patent-application".*?(\d+)</span>', html, re.S).group(1)

    assert count(text(get(client, "/"))) == "1"
    factories.product(session, p.provider_org)
    session.commit()
    assert count(text(get(client, "/"))) == "2"
    support.login(client, p.buyer)  # logged in: not the page cache, the counts still fresh
    factories.product(session, p.provider_org)
    session.commit()
    assert count(text(get(client, "/"))) == "3"


# --------------------------------------------------------------------------- per visitor


def test_every_visitor_gets_their_own_csrf_token_and_cached_forms_submit(app, session, p,
                                                                         listing):
    path = "/c/patent-application"
    first, second = app.test_client(), app.test_client()
    get(first, path)
    page = get(second, path)
    assert page.headers["X-Page-Cache"] == "hit"
    tokens = set(CSRF_META.findall(text(page)))
    first_tokens = set(CSRF_META.findall(text(get(first, path))))
    assert len(tokens) == 1 and len(first_tokens) == 1 and tokens != first_tokens
    hidden = set(re.findall(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', text(page)))
    assert hidden <= tokens
    assert not first_tokens & set(re.findall(r'value="([^"]+)"', text(page)))

    # The comparison button of the cached page submits with the token it carries.
    fresh_request()
    response = second.post("/compare/toggle", data={
        "csrf_token": tokens.pop(), "product_id": listing.id, "next": path})
    assert response.status_code == 302
    compared = get(second, path)  # picks in the session: rendered for this visitor
    assert compared.headers["X-Page-Cache"] == "bypass"
    assert "Added to comparison (1 of" in text(compared)
    assert 'data-testid="compare-tray"' in text(compared) or "Compare (1)" in text(compared)
    # The other visitor's cached page knows nothing of it.
    assert "Added to comparison" not in text(get(first, path))

    # The favourite star of a visitor asks them to log in and comes back to this page.
    assert re.search(r'href="/login\?next=[^"]*c/patent-application', text(page))


def test_flash_messages_are_neither_cached_nor_shown_to_others(app, session, listing):
    visitor, other = app.test_client(), app.test_client()
    twice(other, "/")
    fresh_request()
    response = post_form(visitor, "/compare/toggle", {"product_id": 999999, "next": "/"})
    assert response.status_code == 302
    flashed = get(visitor, "/")
    assert flashed.headers["X-Page-Cache"] == "bypass"
    assert "This listing is not available." in text(flashed)
    assert "This listing is not available." not in text(get(other, "/"))
    again = get(visitor, "/")
    assert "This listing is not available." not in text(again)
    assert again.headers["X-Page-Cache"] == "hit"


def test_a_logged_in_member_never_gets_the_visitors_page(session, client, p, listing):
    for path in ("/", "/c/patent-application", f"/products/{listing.id}"):
        twice(client, path)
    support.login(client, p.buyer)
    for path in ("/", "/c/patent-application", f"/products/{listing.id}"):
        response = get(client, path)
        assert response.headers["X-Page-Cache"] == "bypass", path
        assert p.buyer.full_name in text(response), path
        assert "Log in</a>" not in text(response), path
        assert response.headers["Cache-Control"] == "private, no-store"
    support.logout(client)
    assert p.buyer.full_name not in text(get(client, "/"))


def test_cart_and_checkout_are_never_cached(session, client, p, listing):
    support.login(client, p.buyer)
    fresh_request()
    assert post_form(client, "/cart/add", {"package_id": listing.packages[0].id,
                                           "quantity": "1"}).status_code == 302
    for path in ("/cart", "/checkout"):
        fresh_request()
        response = client.get(path)
        assert response.status_code == 200, path
        assert "X-Page-Cache" not in response.headers, path
        assert "Cached patent drafting" in text(response), path


# --------------------------------------------------------------------------- several workers


@pytest.fixture
def second_worker(app):
    """Another application on the same database: a second gunicorn worker."""
    other = create_app({key: app.config[key] for key in (
        "TESTING", "DATABASE_URL", "SECRET_KEY", "SEARCH_INDEX_DIR", "UPLOAD_DIR",
        "JOB_LOCK_DIR", "MAIL_BACKEND")})
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_two_workers_see_each_others_changes(app, session, p, listing, second_worker):
    path = f"/products/{listing.id}"
    worker_one, worker_two = app.test_client(), second_worker.test_client()
    twice(worker_one, path)
    twice(worker_two, path)
    # Staff suspend the listing through worker one...
    staff_client = app.test_client()
    fresh_request()
    support.login(staff_client, p.staff)
    fresh_request()
    response = post_form(staff_client, f"/staff/moderation/{listing.id}/suspend",
                         {"reason": "Misleading price"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    session.expire_all()
    assert session.get(Product, listing.id).status == "suspended"
    # ...and neither worker serves the page any more.
    fresh_request()
    assert worker_two.get(path).status_code == 404
    fresh_request()
    assert worker_one.get(path).status_code == 404


def test_the_category_menu_is_built_once_and_follows_a_rename_in_every_worker(
        app, session, p, listing, second_worker):
    """The navbar's category menu is kept per process (no two queries on every page, for
    members too); an admin's rename shows on the next page of every worker."""
    def menu(worker_client) -> str:
        fresh_request()
        html = text(worker_client.get("/cart"))  # a member's page: never the page cache
        return html[html.index('class="dropdown-menu"'):][:4000]

    buyer_one, buyer_two = app.test_client(), second_worker.test_client()
    for worker_client in (buyer_one, buyer_two):
        fresh_request()
        support.login(worker_client, p.buyer)
        shown = menu(worker_client)  # in the member's language
        assert ">Intellectual property<" in shown or ">知识产权<" in shown
    with app.app_context(), count_queries() as counted:
        menu(buyer_one)
    assert not [sql for sql in counted.statements if "FROM category" in sql], counted.report()

    top = factories.category(session, "ip")  # an admin renames a top-level category
    top.name, top.name_zh = "IP and patents", "知识产权与专利"
    session.commit()
    for worker_client in (buyer_one, buyer_two):
        shown = menu(worker_client)
        assert ">IP and patents<" in shown or ">知识产权与专利<" in shown


def test_without_the_version_row_nothing_is_cached(session, client, listing):
    session.execute(CatalogVersion.__table__.delete())
    session.commit()
    assert get(client, "/").headers["X-Page-Cache"] == "bypass"
    assert get(client, "/").headers["X-Page-Cache"] == "bypass"
    listing.title = "Renamed after the wipe"
    session.commit()  # the first change starts a new counter
    version = session.scalar(select(CatalogVersion.version))
    assert version is not None and version > 1000
    assert get(client, "/").headers["X-Page-Cache"] == "miss"


# --------------------------------------------------------------------------- scoped invalidation
# A change drops only the cached pages that show it (issue 17): one listing's price does not
# empty the cache of every other listing, category and institution.


def status(client, path) -> str:
    return get(client, path).headers["X-Page-Cache"]


@pytest.fixture
def elsewhere(session):
    """A listing of another institution in another branch of the category tree."""
    product = factories.product(session, title="Unrelated valuation service",
                                category_slug="ip-valuation")
    session.commit()
    return product


def test_a_listing_edit_refreshes_its_pages_and_leaves_unrelated_ones_cached(
        session, client, p, listing, elsewhere):
    related = [f"/products/{listing.id}", "/c/patent-application", "/c/ip",
               f"/institutions/{p.provider_org.id}", "/"]
    unrelated = [f"/products/{elsewhere.id}", "/c/ip-valuation",
                 f"/institutions/{elsewhere.provider_id}"]
    for path in related + unrelated:
        twice(client, path)
    listing.title = "Patent drafting, renamed"
    session.commit()
    for path in related:
        response = get(client, path)
        assert response.headers["X-Page-Cache"] == "miss", path
        assert "Patent drafting, renamed" in text(response), path
    for path in unrelated:
        assert status(client, path) == "hit", path


def test_a_sale_refreshes_its_category_only(session, client, p, listing, elsewhere):
    twice(client, "/c/patent-application?sort=sales")
    twice(client, "/c/ip-valuation?sort=sales")
    session.execute(update(Product).where(Product.id == listing.id)
                    .values(sales_count=Product.sales_count + 1, updated_at=Product.updated_at)
                    .execution_options(synchronize_session=False))
    session.commit()
    assert status(client, "/c/patent-application?sort=sales") == "miss"
    assert status(client, "/c/ip-valuation?sort=sales") == "hit"


def test_a_credibility_recompute_that_changes_nothing_shown_drops_and_queues_nothing(
        session, client, p, listing, elsewhere):
    credibility.recompute(session, p.provider_org)
    credibility.recompute(session, p.buyer_org)
    session.commit()
    pages = [f"/products/{listing.id}", "/c/patent-application",
             f"/institutions/{p.provider_org.id}"]
    for path in pages:
        twice(client, path)
    version = session.scalar(select(CatalogVersion.version))
    report = credibility.recompute_many(session, [p.provider_org.id, p.buyer_org.id])
    session.commit()
    assert (report.changed, report.snapshots, report.listings_queued) == (0, 0, 0)
    assert session.scalar(select(CatalogVersion.version)) == version
    for path in pages:
        assert status(client, path) == "hit", path


def test_an_enterprise_credibility_change_drops_no_public_page(session, client, p, listing):
    pages = [f"/products/{listing.id}", "/c/patent-application", "/"]
    for path in pages:
        twice(client, path)
    version = session.scalar(select(CatalogVersion.version))
    session.execute(update(type(p.buyer_org)).where(type(p.buyer_org).id == p.buyer_org.id)
                    .values(credibility_score=42, credibility_level="C"))
    session.commit()
    assert session.scalar(select(CatalogVersion.version)) == version
    for path in pages:
        assert status(client, path) == "hit", path


def test_an_institution_credibility_change_refreshes_its_pages_only(
        session, client, p, listing, elsewhere):
    mine = [f"/institutions/{p.provider_org.id}", f"/products/{listing.id}",
            "/c/patent-application"]
    theirs = [f"/institutions/{elsewhere.provider_id}", f"/products/{elsewhere.id}",
              "/c/ip-valuation"]
    for path in mine + theirs:
        twice(client, path)
    result = credibility.recompute(session, p.provider_org)
    session.commit()
    for path in mine:
        response = get(client, path)
        assert response.headers["X-Page-Cache"] == "miss", path
        assert f'data-level="{result.level}"' in text(response), path
    for path in theirs:
        assert status(client, path) == "hit", path


def test_another_workers_change_drops_only_its_pages(app, session, p, listing, elsewhere,
                                                    second_worker):
    worker_two = second_worker.test_client()
    for path in (f"/products/{listing.id}", f"/products/{elsewhere.id}"):
        twice(worker_two, path)
    # Worker one (this test's session; the listing object belongs to the session of the
    # fixtures' app context, so read it afresh).
    session.get(Product, listing.id).title = "Renamed in worker one"
    session.commit()
    response = get(worker_two, f"/products/{listing.id}")
    assert "Renamed in worker one" in text(response)
    assert status(worker_two, f"/products/{elsewhere.id}") == "hit"


def test_a_gap_in_the_change_rows_drops_everything(session, client, p, listing, elsewhere):
    from catalog.models import CatalogChange

    twice(client, f"/products/{elsewhere.id}")
    listing.title = "Changed while the rows were pruned"
    session.commit()
    session.execute(CatalogChange.__table__.delete())
    session.commit()
    assert status(client, f"/products/{elsewhere.id}") == "miss"


# --------------------------------------------------------------------------- members reuse fragments


def test_a_members_product_page_reuses_the_shared_reviews_and_stays_fresh(
        app, session, client, p, listing):
    order = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                          product=listing)
    session.commit()
    now = datetime.now(UTC)
    reviews.submit_review(session, order, p.buyer, FIVES, "First careful review.", now=now,
                          blind_days=14)
    reviews.submit_review(session, order, p.provider, FAIR, "", now=now, blind_days=14)
    session.commit()
    support.login(client, p.buyer)
    path = f"/products/{listing.id}"
    with app.app_context(), count_queries() as first:
        page = get(client, path)
    assert page.headers["X-Page-Cache"] == "bypass"
    assert "First careful review." in text(page) and p.buyer.full_name in text(page)
    with app.app_context(), count_queries() as second:
        again = get(client, path)
    assert "First careful review." in text(again)
    assert second.count < first.count, f"{first.report()}\n{second.report()}"
    # A visitor's page shares the same block, with nothing of the member in it.
    support.logout(client)
    assert p.buyer.full_name not in text(get(client, path))
    # A new review shows to the member at once.
    other = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                          product=listing)
    session.commit()
    reviews.submit_review(session, other, p.buyer, FIVES, "Second review, also quick.",
                          now=now, blind_days=14)
    reviews.submit_review(session, other, p.provider, FAIR, "", now=now, blind_days=14)
    session.commit()
    support.login(client, p.buyer)
    assert "Second review, also quick." in text(get(client, path))
