"""Hostile or odd input answers a normal page; hidden listings never leak; snippets are safe."""

import factories
import pytest
from sqlalchemy import update

from catalog.models import Product
from catalog.search.index import reindex_all
from catalog.search.query import MAX_QUERY_CHARS, SearchParams, normalise_query, search


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


@pytest.fixture
def listings(session, index_dir):
    org = factories.provider(session, name="Kunshan Testing Centre 昆山检测中心",
                             institution_type="testing_lab")
    visible = factories.product(session, org, title="Salt spray corrosion testing 盐雾试验",
                                summary="Neutral salt spray per ISO 9227.",
                                category_slug="testing")
    session.commit()
    reindex_all(session, index_dir)
    return visible


WHOOSH_SYNTAX = [
    "title:*", "*", "?", "a AND (", '"unterminated', "salt OR", "NOT salt", "(((((", ")))",
    "salt^100", "salt~2", "[a TO z]", "{a TO}", "id:1", "status:draft", "text:salt", "\\",
    "salt AND NOT spray", "'", "%", "_", "--", ";DROP TABLE product;--", "<>", "&&", "||",
    "field:value:other", "sa*lt", "/regex/",
]
ODD_UNICODE = [
    "\u202esalt\u202c",  # RTL override
    "\u200f\u200esalt",  # RTL/LTR marks
    "salt\x00spray",  # NUL
    "😀🧪🔬",  # emoji only
    "salt 🧂 spray",
    "s\u0301\u0301\u0301\u0301a\u0308\u0308lt",  # stacked combining marks
    "\ufeffsalt",  # BOM
    "ＳＡＬＴ　ＳＰＲＡＹ",  # full-width
    "盐雾\u3000试验",  # ideographic space
    "\t\n\r salt \x0b\x0c",
    "ｓａｌｔ" * 3,
]


@pytest.mark.parametrize("query", WHOOSH_SYNTAX + ODD_UNICODE)
def test_odd_queries_answer_a_normal_page(client, listings, query):
    response = client.get("/search", query_string={"q": query})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="result-count"' in html  # the ordinary results page (or browse page
    assert 'id="main"' in html                   # when nothing searchable was left)


def test_syntax_is_treated_as_plain_words(session, index_dir, listings):
    # Field syntax, wildcards and operators are words, not commands: "title:*" is the word
    # "title" (no listing has it), "*" is nothing, "AND"/"NOT" are stop words.
    assert search(session, index_dir, SearchParams(q="title:*")).total == 0
    assert search(session, index_dir, SearchParams(q="*")).total == 0
    page = search(session, index_dir, SearchParams(q="text:salt"))
    # No listing has both "text" and "salt", so the page falls back to any of the words.
    assert [hit.product.id for hit in page.hits] == [listings.id]
    assert not page.matched_all
    assert search(session, index_dir, SearchParams(q="salt AND NOT spray")).total == 1
    assert search(session, index_dir, SearchParams(q="ＳＡＬＴ　ＳＰＲＡＹ")).total == 1


@pytest.mark.parametrize("raw", ["%FF%FEsalt", "salt%ED%A0%80", "%C0%AF", "%25%00%2F", "%"])
def test_invalid_utf8_and_escapes_answer_a_normal_page(client, listings, raw):
    assert client.get(f"/search?q={raw}").status_code == 200


def test_very_long_input_is_cut_to_a_normal_length(client, listings):
    query = "salt " * 5000
    response = client.get("/search", query_string={"q": query})
    assert response.status_code == 200
    assert normalise_query(query) == ("salt " * 40).strip()
    html = response.get_data(as_text=True)
    assert ("salt " * 41) not in html


@pytest.mark.parametrize("raw, expected", [
    ("\u202esalt\u202c", "salt"),
    ("salt\x00spray", "salt spray"),
    ("salt 🧂 spray", "salt spray"),
    ("ＳＡＬＴ", "SALT"),
    ("e\u0301", "é"),
    ("  many   spaces\t\n", "many spaces"),
    (None, ""),
    ("x" * 500, "x" * MAX_QUERY_CHARS),
])
def test_query_normalisation(raw, expected):
    assert normalise_query(raw) == expected


@pytest.mark.parametrize("args", [
    {"page": "-3"}, {"page": "abc"}, {"page": "99999999999999999999"}, {"page": ""},
    {"price_min": "abc", "price_max": "1e309"}, {"price_min": "nan"}, {"price_max": "-5"},
    {"price_min": "9" * 40}, {"rating": "11"}, {"rating": "x"}, {"sort": "'; DROP"},
    {"category": "../../etc"}, {"type": "<script>"}, {"region": "nowhere"},
    {"voucher": "maybe"}, {"q": ["salt", "spray"]},
])
def test_odd_parameters_answer_a_normal_page(client, listings, args):
    response = client.get("/search", query_string=args)
    assert response.status_code == 200


def test_hidden_listings_never_show(session, client, index_dir):
    org = factories.provider(session)
    suspended_org = factories.provider(session, suspended=True)
    pending_org = factories.provider(session, verified=False)
    visible = factories.product(session, org, title="Zirconia ceramic analysis 氧化锆分析")
    for status in ("draft", "pending_review", "suspended", "archived"):
        factories.product(session, org, status=status, title=f"Zirconia {status} 氧化锆")
    factories.product(session, suspended_org, title="Zirconia from a suspended institution")
    factories.product(session, pending_org, title="Zirconia from an unverified institution")
    session.commit()
    reindex_all(session, index_dir)

    for query in ("zirconia", "氧化锆", ""):
        page = search(session, index_dir, SearchParams(q=query), page_size=100)
        assert [hit.product.id for hit in page.hits] == [visible.id]
        assert page.total == 1
    html = client.get("/search", query_string={"q": "zirconia"}).get_data(as_text=True)
    for word in ("draft", "pending_review", "suspended", "archived", "unverified"):
        assert f"Zirconia {word}" not in html


def _counts(facets) -> dict:
    return {
        "categories": {f.value: f.count for f in facets.categories if f.count},
        "types": {f.value: f.count for f in facets.institution_types if f.count},
        "regions": {f.value: f.count for f in facets.regions if f.count},
        "ratings": {f.value: f.count for f in facets.ratings if f.count},
        "credibility": {f.value: f.count for f in facets.credibility if f.count},
        "voucher": facets.voucher,
    }


def test_a_stale_index_never_leaks_a_listing_hidden_since(session, index_dir, client):
    org = factories.provider(session)
    listing = factories.product(session, org, title="Vibration table hire 振动台租用")
    lab = factories.provider(session, institution_type="testing_lab",
                             regions_served=["wuxi"])
    other = factories.product(session, lab, title="Vibration testing 振动试验",
                              category_slug="testing", regions=["wuxi"], voucher_eligible=True)
    session.commit()
    reindex_all(session, index_dir)
    # Hidden behind the outbox's back (e.g. an outage between commit and drain).
    session.execute(update(Product).where(Product.id == listing.id).values(status="archived"))
    session.commit()
    html = client.get("/search", query_string={"q": "vibration"}).get_data(as_text=True)
    assert "Vibration table hire" not in html
    assert html.count('data-testid="search-hit"') == 1
    # The count above the cards and the facet counts agree with the cards shown.
    assert "1 service\n" in html

    # That search met the stale hit; later ones leave it out from the start, so a page that
    # does not hold it is counted right too.
    page = search(session, index_dir, SearchParams(q="vibration"), page_size=1)
    assert [hit.product.id for hit in page.hits] == [other.id]
    assert (page.total, page.pages) == (1, 1)
    counts = _counts(page.facets)
    assert counts["categories"] == {"inspection": 1}
    assert counts["types"] == {"testing_lab": 1}
    assert set(counts["regions"]) == {"wuxi"}
    assert counts["voucher"] == 1
    # A filter on another facet is counted the same way.
    filtered = search(session, index_dir, SearchParams(q="vibration", region="wuxi"))
    assert filtered.total == 1
    assert _counts(filtered.facets)["types"] == {"testing_lab": 1}

    # The only match hidden: nothing shown, nothing counted.
    session.execute(update(Product).where(Product.id == other.id).values(status="suspended"))
    session.commit()
    html = client.get("/search", query_string={"q": "vibration"}).get_data(as_text=True)
    assert 'data-testid="search-hit"' not in html
    assert "0 services" in html
    page = search(session, index_dir, SearchParams(q="vibration"))
    assert (page.total, page.hits) == (0, [])
    assert _counts(page.facets) == {"categories": {}, "types": {}, "regions": {},
                                    "ratings": {}, "credibility": {}, "voucher": 0}


def test_stale_hits_on_a_later_page_do_not_shift_or_miscount_pages(session, index_dir):
    org = factories.provider(session)
    for n in range(5):
        factories.product(session, org, title=f"Torque calibration {n} 扭矩校准",
                          category_slug="calibration")
    session.commit()
    reindex_all(session, index_dir)
    ordered = [hit.product.id for hit in search(
        session, index_dir, SearchParams(q="torque"), page_size=10).hits]
    hidden = ordered[2]
    session.execute(update(Product).where(Product.id == hidden).values(status="archived"))
    session.commit()

    second = search(session, index_dir, SearchParams(q="torque", page=2), page_size=2)
    assert (second.total, second.pages) == (4, 2)
    # The page holds the next two visible listings, not one card and a gap.
    assert [hit.product.id for hit in second.hits] == ordered[3:5]
    assert _counts(second.facets)["categories"] == {"inspection": 4}


def test_listing_text_is_escaped_in_highlighted_snippets(session, index_dir, client):
    org = factories.provider(session, name="<b>Evil</b> Institute")
    factories.product(
        session, org, title="<script>alert('title')</script> Laser welding",
        summary="Laser welding <img src=x onerror=alert(1)> with \"quotes\" & ampersands",
        description="<iframe src=//evil></iframe> laser",
        tags=["<svg onload=alert(2)>"],
    )
    session.commit()
    reindex_all(session, index_dir)
    html = client.get("/search", query_string={"q": "laser"}).get_data(as_text=True)
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<svg onload" not in html
    assert "<b>Evil</b>" not in html
    assert "&lt;script&gt;" in html
    assert '<mark class="hl t0">Laser</mark>' in html
