"""Matching: the expected institution comes first for a clear need, in Chinese and in
English, the score is explained by its parts, and only listed institutions are ranked."""

from datetime import timedelta

import demand_support as ds
import factories
import pytest
from sqlalchemy import select

from catalog.models import Product
from catalog.search.index import reindex_all
from demand import matching, services
from marketplace.database import utcnow


@pytest.fixture
def w(session, app, tmp_path, monkeypatch):
    # An index of our own: other tests may leave the shared one in any state.
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "search-index"))
    return ds.world(session, app)


def _parts(match) -> dict:
    return {part.key: part for part in match.parts}


def test_a_chinese_fto_need_ranks_the_fto_agency_first_and_says_why(session, w, app):
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    ranked = matching.rank(session, need, index_dir=app.config["SEARCH_INDEX_DIR"])
    assert ranked[0].provider_id == w.fto.id
    parts = _parts(ranked[0])
    assert set(parts) == set(matching.WEIGHTS)
    # One listing in the sub-category: 20 of 30 (full category fit from three listings).
    assert parts["category"].points == 20 and "IP strategy" in parts["category"].detail
    assert "full points from 3" in parts["category"].detail
    assert parts["text"].points == 25
    assert "Freedom-to-operate" in parts["text"].detail
    assert "自由实施" in parts["text"].detail or "fto" in parts["text"].detail.lower()
    assert parts["region"].points == 10  # serves Suzhou, which contains the Industrial Park
    assert ranked[0].score == round(sum(p.points for p in ranked[0].parts))
    by_id = {m.provider_id: m for m in ranked}
    if w.filer.id in by_id:  # same top category, another sub-category, Wuxi only
        filer = _parts(by_id[w.filer.id])
        assert filer["category"].points == 15 and filer["region"].points == 0


def test_an_english_battery_need_finds_the_testing_lab(session, w, app):
    data = ds.fto_data(session, title="Battery pack safety testing to GB 38031",
                       description="We need thermal runaway and vibration tests for our EV "
                                   "battery packs before certification.",
                       category_id=ds.category_id(session, "testing"), region="suzhou")
    need = services.create_need(session, w.buyer, data)
    ranked = matching.rank(session, need, index_dir=app.config["SEARCH_INDEX_DIR"])
    assert ranked[0].provider_id == w.lab.id
    assert _parts(ranked[0])["text"].points > 0


def test_suspended_and_unverified_institutions_are_never_matched(session, w, app):
    w.fto.suspended = True
    unverified = factories.provider(session, verified=False)
    factories.product(session, unverified, category_slug="ip-strategy",
                      title="FTO freedom-to-operate 自由实施分析")
    session.commit()
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    ranked = matching.rank(session, need, index_dir=app.config["SEARCH_INDEX_DIR"])
    ids = {m.provider_id for m in ranked}
    assert w.fto.id not in ids and unverified.id not in ids


def test_response_rate_to_earlier_invitations_counts(session, w, app):
    earlier = ds.open_need(session, w, app)
    invited = {i.provider_org_id for i in earlier.invitations}
    assert {w.fto.id, w.filer.id} <= invited
    services.decline_invitation(session, w.fto_user, earlier, "capacity")
    session.commit()
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    later = utcnow() + timedelta(minutes=1)
    ranked = {m.provider_id: _parts(m) for m in matching.rank(
        session, need, index_dir=app.config["SEARCH_INDEX_DIR"], now=later)}
    assert ranked[w.fto.id]["response"].points > ranked[w.filer.id]["response"].points
    assert "Answered 1 of 1" in ranked[w.fto.id]["response"].detail


def test_matching_works_without_a_search_index(session, w, app, tmp_path):
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    ranked = matching.rank(session, need, index_dir=str(tmp_path / "missing"))
    assert ranked[0].provider_id == w.fto.id  # category fit still decides
    assert _parts(ranked[0])["text"].detail == "Search index not available"


def test_number_of_invitations_follows_the_setting(session, w, app, monkeypatch):
    monkeypatch.setitem(app.config, "NEED_INVITES", 1)
    need = ds.open_need(session, w, app)
    assert [i.provider_org_id for i in need.invitations] == [w.fto.id]
    assert need.invitations[0].score_parts[0]["key"] == "category"


def test_the_best_few_are_the_same_as_scoring_every_candidate(session, w, app):
    """Response, ratings and load are read only for candidates that can still reach the
    top (matching._second_pass): the pruned ranking equals the full one."""
    for n in range(12):  # more candidates than the limit, with scores close together
        org = factories.provider(session, name=f"IP strategy firm {n}",
                                 regions_served=["suzhou"] if n % 2 else ["wuxi"],
                                 credibility_score=50 + 4 * n)
        factories.product(session, org, mode="quote",
                          category_slug="ip-strategy" if n % 3 else "patent-application",
                          title=f"Patent landscape and FTO review no. {n}",
                          tags=["FTO"] if n % 4 else ["patent"])
    session.commit()
    reindex_all(session, app.config["SEARCH_INDEX_DIR"])
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    index_dir = app.config["SEARCH_INDEX_DIR"]
    every = matching.rank(session, need, limit=1000, index_dir=index_dir)
    assert len(every) > 8
    for limit in (1, 3, 8):
        best = matching.rank(session, need, limit=limit, index_dir=index_dir)
        assert [(m.provider_id, m.score) for m in best] == \
            [(m.provider_id, m.score) for m in every[:limit]]
        assert [m.parts_json() for m in best] == [m.parts_json() for m in every[:limit]]


def test_a_listing_hidden_since_the_index_was_built_is_not_named(session, w, app):
    """The index lags the catalogue: a listing archived a moment ago may still be a text
    hit, but the result never names it (the ranking is made again without it)."""
    fto_listing = session.scalar(select(Product).where(Product.provider_id == w.fto.id))
    other = factories.product(session, w.fto, category_slug="ip-strategy",
                              title="Patent portfolio review 专利组合评估")
    session.commit()
    reindex_all(session, app.config["SEARCH_INDEX_DIR"])
    fto_listing.status = "archived"  # no drain: the index still holds it
    session.commit()
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    ranked = matching.rank(session, need, index_dir=app.config["SEARCH_INDEX_DIR"])
    fto = next(m for m in ranked if m.provider_id == w.fto.id)
    assert fto.product_id == other.id
    assert "Freedom-to-operate" not in _parts(fto)["text"].detail


def test_category_fit_grows_with_listings_in_the_sub_category(session, w, app):
    """A sideline (one listing in the need's sub-category) scores below a line of business
    (three or more) when their best listings read the same."""
    assert [matching.category_points(n, 1) for n in (0, 1, 2, 3, 7)] == [15, 20, 25, 30, 30]
    assert matching.category_points(0, 0) == 0
    sideline = factories.provider(session, name="Wuzhong Trademark House",
                                  regions_served=["suzhou"], credibility_score=80)
    factories.product(session, sideline, mode="quote", category_slug="ip-strategy",
                      title="Freedom-to-operate (FTO) analysis before an EU launch",
                      tags=["FTO", "自由实施"])
    for n in range(3):
        factories.product(session, sideline, category_slug="trademark-registration",
                          title=f"Trademark registration package {n}")
    specialist = factories.provider(session, name="Suzhou FTO Specialists",
                                    regions_served=["suzhou"], credibility_score=80)
    for title in ("Freedom-to-operate (FTO) analysis before an EU launch",
                  "FTO search for medical devices", "Patent landscape before launch"):
        factories.product(session, specialist, mode="quote", category_slug="ip-strategy",
                          title=title, tags=["FTO", "自由实施"])
    session.commit()
    reindex_all(session, app.config["SEARCH_INDEX_DIR"])
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    ranked = {m.provider_id: m for m in matching.rank(
        session, need, limit=20, index_dir=app.config["SEARCH_INDEX_DIR"])}
    assert _parts(ranked[specialist.id])["category"].points == 30
    assert _parts(ranked[specialist.id])["category"].detail.startswith("3 published listings")
    assert _parts(ranked[sideline.id])["category"].points == 20
    order = list(ranked)  # the sideline was created first: ties would put it ahead
    assert sideline.id < specialist.id
    assert order.index(specialist.id) < order.index(sideline.id)
