"""Staff search console (issue 18): synonyms editable without a redeploy, and search
analytics (top, zero-result and no-click queries, CSV export, one-step synonym)."""

import csv
import io
import re
from datetime import date, timedelta

import factories
import pytest
from conftest import csrf_token, post_form
from order_support import login
from sqlalchemy import select

from catalog.search import analytics as search_analytics
from catalog.search.index import reindex_all
from catalog.search_models import SearchClickStat, SearchQueryStat, SearchSynonym
from marketplace.models import AuditLog


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


@pytest.fixture
def listings(session, index_dir):
    org = factories.provider(session, name="Hengtai Finance")
    made = [
        factories.product(session, org, category_slug="ip-pledge",
                          title="知识产权质押融资 · IP-pledge financing"),
        factories.product(session, org, category_slug="testing",
                          title="EMC testing for industrial equipment"),
    ]
    session.commit()
    reindex_all(session, index_dir)
    return made


@pytest.fixture
def staff(session):
    user = factories.user(session, role="staff")
    session.commit()
    return user


def stats(session):
    session.expire_all()
    return {(row.query, row.locale): (row.searches, row.zero_results, row.clicks)
            for row in session.scalars(select(SearchQueryStat))}


def test_search_console_is_for_staff_only(client, session, listings):
    for path in ("/staff/search/analytics", "/staff/search/synonyms",
                 "/staff/search/analytics/top.csv"):
        assert client.get(path).status_code in (302, 401, 403)
    org = factories.enterprise(session)
    buyer = factories.user(session, organisation=org)
    session.commit()
    login(client, buyer)
    assert client.get("/staff/search/analytics").status_code == 403
    assert post_form(client, "/staff/search/synonyms",
                     {"phrases": "a|b"}).status_code == 403
    assert session.scalars(select(SearchSynonym)).first() is None


def test_staff_add_edit_and_delete_synonyms_with_audit(client, session, listings, staff):
    login(client, staff)
    assert client.get("/search?q=知产").get_data(as_text=True).count('data-testid="search-hit"') == 0
    # Without the form's CSRF token nothing happens.
    assert client.post("/staff/search/synonyms", data={"phrases": "知产|知识产权"}).status_code == 400
    response = post_form(client, "/staff/search/synonyms",
                         {"phrases": "知產 | 知识产权\nIntellectual Property", "note": "IP"})
    assert response.status_code == 302
    group = session.scalars(select(SearchSynonym)).one()
    assert group.phrases == ["知产", "知识产权", "intellectual property"]  # folded
    html = client.get("/search?q=知产").get_data(as_text=True)
    assert "IP-pledge financing" in html  # at once: no reindex, no redeploy

    page = client.get("/staff/search/synonyms").get_data(as_text=True)
    assert "知产 | 知识产权 | intellectual property" in page
    post_form(client, f"/staff/search/synonyms/{group.id}", {"phrases": "知产|知识产权质押"})
    session.expire_all()
    assert session.get(SearchSynonym, group.id).phrases == ["知产", "知识产权质押"]
    response = post_form(client, f"/staff/search/synonyms/{group.id}", {"phrases": "知产"})
    assert "at least two phrases" in client.get(response.location).get_data(as_text=True)
    post_form(client, f"/staff/search/synonyms/{group.id}/delete", {})
    session.expire_all()
    assert session.get(SearchSynonym, group.id) is None
    actions = [row.action for row in session.scalars(
        select(AuditLog).where(AuditLog.target_type == "search_synonym").order_by(AuditLog.id))]
    assert actions == ["search_synonym.create", "search_synonym.update",
                       "search_synonym.delete"]
    assert all(row.actor_id == staff.id for row in session.scalars(select(AuditLog)))


def test_searches_and_clicks_are_counted_without_personal_data(app, client, session,
                                                               listings):
    headers = {"Accept-Language": "zh-CN,zh;q=0.9"}
    for _ in range(2):  # the second visit is served from the page cache: still counted
        client.get("/search?q=EMC+Testing", headers=headers)
    client.get("/search?q=EMC+Testing&page=2", headers=headers)  # paging: not a new search
    client.get("/search?q=EMC+Testing&category=testing", headers={"HX-Request": "true"})
    app.test_client().get("/search?q=quantum+teleportation",  # another visitor
                          headers={"Accept-Language": "en"})
    client.get("/search?q=call+me+138-1234-5678+or+li@example.com")
    response = client.get(f"/search/go/{listings[1].id}?q=EMC+Testing", headers=headers)
    assert response.status_code == 302
    assert "EMC testing for industrial equipment" in client.get(
        response.location).get_data(as_text=True)
    counted = stats(session)
    assert counted[("emc testing", "zh")] == (2, 0, 1)
    assert counted[("quantum teleportation", "en")] == (1, 1, 0)
    assert "call me [number] or [email]" in {query for query, _locale in counted}
    clicks = session.scalars(select(SearchClickStat)).one()
    assert (clicks.query, clicks.product_id, clicks.clicks) == ("emc testing", listings[1].id, 1)
    # Result links go through the click-through, listing pages stay where they were.
    html = client.get("/search?q=EMC").get_data(as_text=True)
    assert f'/search/go/{listings[1].id}?q=EMC' in html


def test_searches_are_written_in_batches_when_an_interval_is_set(app, client, session,
                                                                listings, monkeypatch):
    from catalog.search import console

    monkeypatch.setitem(app.config, "SEARCH_ANALYTICS_INTERVAL", 3600)
    monkeypatch.setattr(console, "_searches", console._SearchCounts())
    headers = {"Accept-Language": "zh-CN,zh;q=0.9"}
    for _ in range(3):  # the later visits are served from the page cache
        client.get("/search?q=EMC+Testing", headers=headers)
    client.get("/search?q=quantum+teleportation", headers=headers)
    assert stats(session) == {}  # counted in the worker, nothing written yet
    # The interval passes: the next search writes them all, with the right counts.
    monkeypatch.setattr(console._searches, "_written", console._searches._written - 3601)
    client.get("/search?q=quantum+teleportation", headers=headers)
    assert stats(session) == {("emc testing", "zh"): (3, 0, 0),
                              ("quantum teleportation", "zh"): (2, 2, 0)}


def test_analytics_page_reports_and_turns_a_zero_result_query_into_a_synonym(
        client, session, listings, staff):
    today = date.today()
    search_analytics.record_search(session, "EMC testing", 1, "en")
    search_analytics.record_search(session, "EMC testing", 1, "zh")
    search_analytics.record_click(session, "EMC testing", listings[1].id, "zh")
    search_analytics.record_search(session, "知产贷", 0, "zh")
    search_analytics.record_search(session, "知产贷", 0, "zh")
    search_analytics.record_search(session, "知识产权", 3, "zh")
    search_analytics.record_search(session, "old query", 0, "zh",
                                   day=today - timedelta(days=60))
    session.commit()
    login(client, staff)
    html = client.get("/staff/search/analytics").get_data(as_text=True)

    def rows(kind):
        block = html.split(f'data-testid="report-{kind}"')[1].split('data-testid="report-')[0]
        return re.findall(r'title="Run this search">([^<]+)</a>', block)

    assert rows("top") == ["emc testing", "知产贷", "知识产权"]
    assert rows("zero") == ["知产贷"]
    assert rows("noclick") == ["知识产权"]
    older = client.get(f"/staff/search/analytics?from={today - timedelta(days=90)}"
                       f"&to={today - timedelta(days=30)}").get_data(as_text=True)
    assert "old query" in older and "知产贷" not in older

    assert client.get("/search?q=知产贷").get_data(as_text=True).count(
        'data-testid="search-hit"') == 0
    token = csrf_token(client, "/staff/search/analytics")
    response = client.post("/staff/search/analytics/synonym",
                           data={"csrf_token": token, "query": "知产贷", "meaning": "知识产权质押"})
    assert response.status_code == 302
    assert session.scalars(select(SearchSynonym)).one().phrases == ["知产贷", "知识产权质押"]
    assert client.get("/search?q=知产贷").get_data(as_text=True).count(
        'data-testid="search-hit"') == 1


def test_csv_export_neutralises_formulas(client, session, listings, staff):
    search_analytics.record_search(session, "=HYPERLINK(\"http://x\")", 0, "en")
    search_analytics.record_search(session, "+1 loan", 0, "en")
    search_analytics.record_search(session, "@sum", 0, "en")
    search_analytics.record_search(session, "专利", 4, "zh")
    session.commit()
    login(client, staff)
    response = client.get("/staff/search/analytics/zero.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0][:4] == ["query", "searches", "searches_with_no_result", "clicks"]
    queries = sorted(row[0] for row in table[1:])
    assert queries == ["'+1 loan", "'=hyperlink(\"http://x\")", "'@sum"]
    assert "专利" in client.get("/staff/search/analytics/top.csv").get_data(as_text=True)
    assert client.get("/staff/search/analytics/other.csv").status_code == 404


def test_a_bad_period_is_explained(client, session, staff):
    login(client, staff)
    html = client.get("/staff/search/analytics?from=2026-13-01&to=2026-01-01").get_data(
        as_text=True)
    assert "Use a date like" in html
