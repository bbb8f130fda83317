"""Filters and facet counts agree with the database; sorts and pagination are right."""

import random
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import factories
import pytest
from sqlalchemy import func, select

from catalog.models import Category, Product
from catalog.search import outbox as search_outbox
from catalog.search.index import reindex_all
from catalog.search.pool import FacetCounter, forget_index
from catalog.search.query import SearchParams, search
from catalog.search.worker import drain_outbox
from catalog.services import (
    category_counts,
    json_list_contains,
    region_condition,
    visible_products_condition,
)
from marketplace import reference
from marketplace.database import utcnow
from marketplace.models import Organisation

SUBCATEGORIES = ["patent-application", "trademark-registration", "credit-loans", "testing",
                 "ip-valuation", "policy-grants", "pilot-facilities", "licensing-brokerage"]
TYPES = ["ip_agency", "bank", "testing_lab", "advisory", "evaluation_centre"]
REGION_SETS = [["suzhou"], ["suzhou", "wuxi"], ["national"], ["nanjing", "jiangsu"],
               ["suzhou_sip"], ["shanghai", "suzhou"]]


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


@pytest.fixture
def catalogue(session, index_dir):
    """60 visible listings with varied facets, plus hidden ones that must never count."""
    rng = random.Random(11)
    providers = [factories.provider(session, institution_type=t, name=f"Institution {t}")
                 for t in TYPES]
    now = utcnow()
    for n in range(60):
        mode = rng.choice(["packaged", "packaged", "packaged", "quote", "financial"])
        listing = factories.product(
            session, rng.choice(providers), mode=mode,
            category_slug=rng.choice(SUBCATEGORIES),
            title=f"{'Premium' if n % 3 else 'Express'} service {n} "
                  f"{'量子芯片' if n % 2 else 'technology advisory'}",
            prices=(rng.choice([80000, 150000, 500000, 1200000, 3000000]), 9000000),
            regions=rng.choice(REGION_SETS),
            voucher_eligible=rng.random() < 0.4,
            sales_count=rng.randrange(0, 40),
        )
        listing.published_at = now - timedelta(hours=rng.randrange(1, 5000))
    # Hidden: every way a listing can be invisible.
    hidden_org = factories.provider(session, institution_type="bank", suspended=True)
    unverified = factories.provider(session, institution_type="ip_agency", verified=False)
    factories.product(session, hidden_org, title="Premium service hidden 量子芯片")
    factories.product(session, unverified, title="Premium service unverified 量子芯片")
    for status in ("draft", "pending_review", "suspended", "archived"):
        factories.product(session, providers[0], status=status,
                          title=f"Premium service {status} 量子芯片")
    session.commit()
    assert reindex_all(session, index_dir) == 60


def run(session, index_dir, page_size=100, **params):
    return search(session, index_dir, SearchParams(**params), page_size=page_size)


def facet(values, key):
    return {value.value: value.count for value in values}[key]


def db_count(session, *conditions) -> int:
    return session.scalar(select(func.count(Product.id)).join(Product.provider)
                          .where(visible_products_condition(), *conditions))


def category_ids(session, slug):
    node = session.scalar(select(Category).where(Category.slug == slug))
    return [node.id] + [child.id for child in node.children]


def test_browse_facet_counts_equal_the_database(session, index_dir, catalogue):
    page = run(session, index_dir)
    assert page.total == db_count(session) == 60
    counts = category_counts(session)
    for value in page.facets.categories:
        node = session.scalar(select(Category).where(Category.slug == value.value))
        assert value.count == counts.get(node.id, 0), value.value
    for code, _en, _zh in reference.INSTITUTION_TYPES:
        assert facet(page.facets.institution_types, code) == db_count(
            session, Organisation.institution_type == code), code
    for code, _en, _zh in reference.REGIONS:
        assert facet(page.facets.regions, code) == db_count(
            session, region_condition(Product.regions, code)), code
    assert page.facets.voucher == db_count(session, Product.voucher_eligible.is_(True))
    # No reviews exist yet, so no listing is rated: the rating facet says so honestly.
    assert all(value.count == 0 for value in page.facets.ratings)


def test_facet_counts_follow_the_other_filters(session, index_dir, catalogue):
    ip_ids = category_ids(session, "ip")
    page = run(session, index_dir, category="ip", region="suzhou", voucher=True)
    in_ip = Product.category_id.in_(ip_ids)
    suzhou = region_condition(Product.regions, "suzhou")
    voucher = Product.voucher_eligible.is_(True)
    assert page.total == db_count(session, in_ip, suzhou, voucher)
    # Each facet counts with every filter except its own (so alternatives stay visible).
    for code, _en, _zh in reference.INSTITUTION_TYPES:
        assert facet(page.facets.institution_types, code) == db_count(
            session, in_ip, suzhou, voucher, Organisation.institution_type == code)
    for code, _en, _zh in reference.REGIONS:
        assert facet(page.facets.regions, code) == db_count(
            session, in_ip, voucher, region_condition(Product.regions, code))
    assert page.facets.voucher == db_count(session, in_ip, suzhou, voucher)
    for value in page.facets.categories:
        assert value.count == db_count(session, suzhou, voucher, Product.category_id.in_(
            category_ids(session, value.value)))
    # The selected top category lists its sub-categories with their own counts.
    subs = {value.value: value.count for value in page.facets.subcategories}
    assert set(subs) == {"patent-application", "trademark-registration", "patent-search",
                         "ip-strategy", "ip-litigation"}
    for slug, count in subs.items():
        assert count == db_count(session, suzhou, voucher,
                                 Product.category_id.in_(category_ids(session, slug)))


def test_keyword_counts_and_price_filter_in_yuan(session, index_dir, catalogue):
    page = run(session, index_dir, q="量子芯片", price_min=1000, price_max=5000)
    expected = db_count(session, Product.title.like("%量子芯片%"),
                        Product.price_from.between(100000, 500000))
    assert page.total == expected > 0
    assert all(100000 <= hit.product.price_from <= 500000 for hit in page.hits)
    for code, _en, _zh in reference.INSTITUTION_TYPES:
        assert facet(page.facets.institution_types, code) == db_count(
            session, Product.title.like("%量子芯片%"),
            Product.price_from.between(100000, 500000), Organisation.institution_type == code)
    # Only a minimum: quote listings (no price) are left out, free financial ones kept.
    page = run(session, index_dir, price_max=0)
    assert {hit.product.pricing_mode for hit in page.hits} == {"financial"}


def test_type_filter_and_region_filter_keep_nationwide_listings(session, index_dir, catalogue):
    page = run(session, index_dir, institution_type="bank", region="wuxi")
    assert page.total == db_count(session, Organisation.institution_type == "bank",
                                  region_condition(Product.regions, "wuxi"))
    for hit in page.hits:
        assert hit.product.provider.institution_type == "bank"
        assert "wuxi" in hit.product.regions or "national" in hit.product.regions
    assert any("national" in hit.product.regions for hit in page.hits) or db_count(
        session, json_list_contains(Product.regions, "national"),
        Organisation.institution_type == "bank") == 0


SORT_KEYS = {
    "price_asc": lambda p: (p.price_from is None, p.price_from or 0, p.id),
    "price_desc": lambda p: (p.price_from is None, -(p.price_from or 0), -p.id),
    "sales": lambda p: (-p.sales_count, -p.published_at.timestamp(), -p.id),
    "newest": lambda p: (-p.published_at.timestamp(), -p.id),
    "rating": lambda p: (-p.sales_count, -p.id),  # no ratings yet: sales break the tie
}


@pytest.mark.parametrize("sort", sorted(SORT_KEYS))
def test_sort_orders(session, index_dir, catalogue, sort):
    page = run(session, index_dir, sort=sort)
    visible = session.scalars(select(Product).where(visible_products_condition())).all()
    expected = [p.id for p in sorted(visible, key=SORT_KEYS[sort])]
    assert [hit.product.id for hit in page.hits] == expected


def test_relevance_puts_title_matches_first(session, index_dir, catalogue):
    org = factories.provider(session)
    in_title = factories.product(session, org, title="Wind tunnel testing 风洞试验",
                                 summary="Aerodynamic measurements for drones.")
    in_text = factories.product(session, org, title="Aerodynamics lab day",
                                summary="Includes a short wind tunnel session.")
    session.commit()
    reindex_all(session, index_dir)
    page = run(session, index_dir, q="wind tunnel")
    assert [hit.product.id for hit in page.hits] == [in_title.id, in_text.id]


@pytest.mark.parametrize("params", [
    {}, {"q": "premium"}, {"q": "service", "sort": "price_asc"}, {"sort": "sales"},
    {"q": "量子芯片", "sort": "rating"},
])
def test_pages_have_no_duplicates_or_gaps(session, index_dir, catalogue, params):
    whole = run(session, index_dir, **params)
    assert whole.total > 7
    seen = []
    for number in range(1, -(-whole.total // 7) + 3):
        page = run(session, index_dir, page_size=7, page=number, **params)
        if number > page.pages:
            assert page.page == page.pages  # past the end shows the last page
            continue
        assert len(page.hits) == (7 if number < page.pages else whole.total - 7 * (number - 1))
        seen.extend(hit.product.id for hit in page.hits)
    assert len(seen) == len(set(seen)) == whole.total
    assert seen == [hit.product.id for hit in whole.hits]


def _links(html: str) -> list[dict]:
    return [parse_qs(urlsplit(unescape(href)).query)
            for href in re.findall(r'href="(/search\?[^"]*)"', html)]


def test_every_state_of_the_page_is_in_its_url(client, session, index_dir, catalogue, app,
                                               monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 5)
    url = ("/search?q=service&category=ip&type=ip_agency&region=suzhou&price_min=500"
           "&price_max=20000&voucher=1&sort=price_desc&page=2")
    html = client.get(url).get_data(as_text=True)
    expected = {"q": ["service"], "category": ["ip"], "type": ["ip_agency"],
                "region": ["suzhou"], "price_min": ["500"], "price_max": ["20000"],
                "voucher": ["1"], "sort": ["price_desc"]}
    links = _links(html)
    # Pagination links keep everything and change only the page.
    pager = [link for link in links if "page" in link and link.get("sort") == ["price_desc"]]
    for link in pager:
        assert {k: v for k, v in link.items() if k != "page"} == expected
    # A facet link changes its own parameter, keeps the rest, and goes back to page 1.
    region_links = [link for link in links if link.get("region") == ["wuxi"]]
    for link in region_links:
        assert "page" not in link
        assert {k: v for k, v in link.items() if k != "region"} == {
            k: v for k, v in expected.items() if k != "region"}
    # Bookmarking the URL gives the same page.
    assert client.get(url).get_data(as_text=True).count('data-testid="search-hit"') == \
        html.count('data-testid="search-hit"')


def test_browse_mode_without_a_query(client, session, index_dir, catalogue):
    html = client.get("/search?category=finance").get_data(as_text=True)
    assert "Browse all services" in html
    total = db_count(session, Product.category_id.in_(category_ids(session, "finance")))
    shown = re.search(r'data-testid="result-count">\s*([\d,]+) service', html)
    assert shown and int(shown.group(1).replace(",", "")) == total > 0
    assert html.count('data-testid="search-hit"') == min(total, 24)
    assert 'data-testid="empty-state"' not in html


def test_filters_with_no_match_show_a_helpful_empty_state(client, session, index_dir, catalogue):
    html = client.get("/search?q=zebra&category=finance").get_data(as_text=True)
    assert 'data-testid="empty-state"' in html
    assert "Clear filters" in html
    assert "Browse all services" in html


def test_a_misspelt_query_is_corrected_keeping_the_filters(client, session, index_dir,
                                                           catalogue):
    html = client.get("/search?q=premiun&region=suzhou").get_data(as_text=True)
    assert re.search(r'data-testid="corrected-query">premium<', html)
    assert 'data-testid="search-hit"' in html
    link = re.search(r'href="([^"]+)" data-testid="search-verbatim"', html).group(1)
    assert parse_qs(urlsplit(unescape(link)).query) == {
        "q": ["premiun"], "region": ["suzhou"], "verbatim": ["1"]}
    # "Search instead for" what was typed: nothing found, and the correction is offered.
    verbatim = client.get(unescape(link)).get_data(as_text=True)
    assert 'data-testid="search-hit"' not in verbatim
    suggestion = re.search(r'data-testid="did-you-mean".*?href="([^"]+)"', verbatim,
                           re.S).group(1)
    assert parse_qs(urlsplit(unescape(suggestion)).query) == {
        "q": ["premium"], "region": ["suzhou"]}


def test_partial_matches_are_labelled(client, session, index_dir, catalogue):
    html = client.get("/search?q=premium+zebra").get_data(as_text=True)
    assert 'data-testid="partial-match"' in html
    assert 'data-testid="search-hit"' in html


def test_sorting_a_small_result_set(session, index_dir, catalogue):
    org = factories.provider(session)
    prices = [700000, 300000, 500000]
    made = [factories.product(session, org, title=f"Osmium isotope analysis {n}",
                              prices=(price,), sales_count=n) for n, price in enumerate(prices)]
    session.commit()
    reindex_all(session, index_dir)
    by_price = [p.id for p in sorted(made, key=lambda p: p.price_from)]
    assert [h.product.id for h in run(session, index_dir, q="osmium", sort="price_asc").hits] \
        == by_price
    assert [h.product.id for h in run(session, index_dir, q="osmium", sort="price_desc").hits] \
        == by_price[::-1]
    assert [h.product.id for h in run(session, index_dir, q="osmium", sort="sales").hits] \
        == [p.id for p in made[::-1]]
    page = run(session, index_dir, page_size=2, page=2, q="osmium", sort="price_asc")
    assert [h.product.id for h in page.hits] == by_price[2:]


def _facet_table(facets) -> dict:
    return {name: ({value.value: value.count for value in values}
                   if isinstance(values, list) else values)
            for name, values in vars(facets).items()}


FACET_PARAMS = [
    {}, {"q": "premium"}, {"q": "service"}, {"q": "量子芯片", "region": "suzhou"},
    {"category": "ip", "voucher": True}, {"q": "service", "institution_type": "bank",
                                         "min_rating": 3, "min_credibility": 55},
    {"q": "premium", "category": "patent-application", "region": "wuxi", "price_min": 1000},
]


@pytest.mark.parametrize("params", FACET_PARAMS)
def test_masked_and_per_document_facet_counts_agree(session, index_dir, catalogue,
                                                   monkeypatch, params):
    """Large result sets are counted with byte masks, small ones listing by listing
    (catalog.search.pool.FacetCounter): both ways give the same counts."""
    monkeypatch.setattr(FacetCounter, "SMALL", 0)  # every set counted listing by listing
    one_by_one = run(session, index_dir, **params)
    monkeypatch.setattr(FacetCounter, "SMALL", 10 ** 9)  # every non-empty set masked
    masked = run(session, index_dir, **params)
    assert _facet_table(masked.facets) == _facet_table(one_by_one.facets)
    assert [hit.product.id for hit in masked.hits] == [hit.product.id for hit in one_by_one.hits]


def test_cached_facet_columns_follow_a_new_listing_after_the_drain(session, index_dir,
                                                                   catalogue, monkeypatch):
    """The per-generation facet columns and masks (cached after the first search) must not
    outlive an index change: a listing published since appears in every count it belongs
    to once the drain has written it."""
    monkeypatch.setattr(FacetCounter, "SMALL", 10 ** 9)  # the masked way, even for 60
    before = {key: _facet_table(run(session, index_dir, q=q).facets)
              for key, q in (("browse", ""), ("word", "premium"))}
    lab = factories.provider(session, institution_type="testing_lab", name="Wuxi Test Lab")
    listing = factories.product(session, lab, category_slug="testing", regions=["wuxi"],
                                title="Premium service new 量子芯片", voucher_eligible=True)
    session.flush()
    search_outbox.enqueue(session, listing.id, "test")
    session.commit()
    assert _facet_table(run(session, index_dir).facets) == before["browse"]  # not drained
    drain_outbox(session, index_dir)

    for key, q in (("browse", ""), ("word", "premium")):
        page = run(session, index_dir, q=q)
        assert listing.id in [hit.product.id for hit in page.hits]
        after, old = _facet_table(page.facets), before[key]
        assert after["categories"] == {**old["categories"],
                                       "inspection": old["categories"]["inspection"] + 1}
        assert after["institution_types"] == {
            **old["institution_types"],
            "testing_lab": old["institution_types"]["testing_lab"] + 1}
        assert after["regions"] == {**old["regions"], "wuxi": old["regions"]["wuxi"] + 1}
        assert after["voucher"] == old["voucher"] + 1
    # And they agree with the database again.
    page = run(session, index_dir)
    for code, _en, _zh in reference.REGIONS:
        assert facet(page.facets.regions, code) == db_count(
            session, region_condition(Product.regions, code)), code
    assert page.facets.voucher == db_count(session, Product.voucher_eligible.is_(True))


@pytest.mark.parametrize("q", ["premium", "service", "premium 量子芯片", "technology advisory",
                               "量子芯片", "express technology", "service 31"])
def test_first_seen_and_repeated_queries_rank_alike(session, index_dir, catalogue, q):
    """A word's first search ranks without its best-first order (title matches first, or
    only the listings holding every word scored); later ones use the cached order and the
    threshold algorithm: the pages are the same."""
    for number in (1, 2, 3):
        forget_index(index_dir)  # a new pool: no word of the query ranked before
        first = [hit.product.id for hit in run(session, index_dir, page_size=5, q=q,
                                               page=number).hits]
        again = [hit.product.id for hit in run(session, index_dir, page_size=5, q=q,
                                               page=number).hits]
        assert first == again, number
        assert first or number > 1


def test_a_strong_match_outside_the_title_still_ranks_first_on_a_first_search(session,
                                                                              index_dir):
    """The first search for a word scores the listings with it in the title first and
    stops there only when none without it could do better: a short listing naming the
    word again and again outside its title beats long titles that mention it once."""
    org = factories.provider(session)
    filler = " ".join(["calibration", "laboratory", "measurement", "report"] * 120)
    for n in range(30):  # short listings without the word: long texts are long for BM25
        factories.product(session, org, title=f"Wind tunnel {n}", summary="Airflow.")
    long_titles = [factories.product(
        session, org, title=f"Zephyr {n} and many other words in a rather long listing title",
        summary=filler[:480], description=filler) for n in range(6)]
    strong = factories.product(session, org, title="Wind measurement",
                               summary="zephyr zephyr zephyr zephyr zephyr zephyr",
                               tags=["zephyr", "zephyr"])
    session.commit()
    reindex_all(session, index_dir)
    forget_index(index_dir)
    first = [hit.product.id for hit in run(session, index_dir, page_size=5, q="zephyr").hits]
    again = [hit.product.id for hit in run(session, index_dir, page_size=5, q="zephyr").hits]
    assert first == again
    assert first[0] == strong.id
    assert set(first[1:]) <= {listing.id for listing in long_titles}
