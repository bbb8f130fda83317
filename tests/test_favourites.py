"""Favourites ("collect"): stars on lists and detail pages, the favourites page, and notes when
a collected listing changes price or is withdrawn."""

import factories
import pytest
from conftest import csrf_token, post_form
from flask import g
from helpers import login
from query_budget import count_queries
from sqlalchemy import select

from catalog.favourites import (
    favourite_ids,
    notify_favourite_changes,
    toggle_product,
    toggle_provider,
)
from catalog.models import Favourite, Product
from catalog.search.index import reindex_all
from catalog.search.worker import drain_outbox
from marketplace.models import Notification
from providers import listings


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


@pytest.fixture
def shop(session):
    org = factories.provider(session, name="Taihu IP Agency 太湖知识产权")
    member = factories.user(session, org, role="provider")
    listing = factories.product(session, org, title="PCT filing 国际专利申请", prices=(800000,))
    buyer_org = factories.enterprise(session)
    buyer = factories.user(session, buyer_org, email="buyer@example.com")
    session.commit()
    return {"org": org, "member": member, "listing": listing, "buyer": buyer}


def favourite_count(session, product_id):
    session.expire_all()
    return session.get(Product, product_id).favourite_count


def notices(session, user, kind=None):
    stmt = select(Notification).where(Notification.user_id == user.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(session.scalars(stmt.order_by(Notification.id)))


def test_starring_without_javascript_redirects_back(client, session, shop):
    login(client, "buyer@example.com")
    listing = shop["listing"]
    back = f"/products/{listing.id}"
    response = post_form(client, "/favourites/toggle",
                         {"product_id": listing.id, "next": back})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(back)
    assert favourite_count(session, listing.id) == 1
    page = client.get(back).get_data(as_text=True)
    assert 'data-testid="favourite-button" data-state="on"' in page

    post_form(client, "/favourites/toggle", {"product_id": listing.id, "next": back})
    assert favourite_count(session, listing.id) == 0
    assert session.scalar(select(Favourite)) is None


def test_htmx_toggle_swaps_only_the_button(client, session, shop):
    login(client, "buyer@example.com")
    listing = shop["listing"]
    response = post_form(client, "/favourites/toggle",
                         {"product_id": listing.id, "next": "/search", "size": "sm"},
                         headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith("<form")
    assert "<html" not in fragment
    assert 'data-state="on"' in fragment and "bi-star-fill" in fragment
    assert 'name="next" value="/search"' in fragment
    assert 'hx-post="/favourites/toggle"' in fragment
    assert favourite_count(session, listing.id) == 1


def test_stars_appear_on_cards_search_results_and_profiles(client, session, shop, index_dir):
    reindex_all(session, index_dir)
    login(client, "buyer@example.com")
    listing, org = shop["listing"], shop["org"]
    toggle_product(session, shop["buyer"], listing.id)
    session.commit()
    for path in ("/search?q=PCT", "/c/ip", f"/products/{listing.id}"):
        html = client.get(path).get_data(as_text=True)
        assert 'data-testid="favourite-button" data-state="on"' in html, path
    html = client.get(f"/institutions/{org.id}").get_data(as_text=True)
    assert f'name="provider_id" value="{org.id}"' in html
    response = post_form(client, "/favourites/toggle", {"provider_id": org.id},
                         headers={"HX-Request": "true"})
    assert 'data-state="on"' in response.get_data(as_text=True)
    assert favourite_ids(session, shop["buyer"]).providers == {org.id}


def test_visitors_are_sent_to_log_in_and_others_are_refused(client, session, shop):
    listing = shop["listing"]
    html = client.get(f"/products/{listing.id}").get_data(as_text=True)
    assert 'data-testid="favourite-login"' in html
    response = post_form(client, "/favourites/toggle", {"product_id": listing.id})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/favourites").status_code == 302

    login(client, shop["member"].email)  # a provider member does not collect
    assert post_form(client, "/favourites/toggle",
                     {"product_id": listing.id}).status_code == 403
    assert client.get("/favourites").status_code == 403
    assert 'data-testid="favourite-button"' not in client.get(
        f"/products/{listing.id}").get_data(as_text=True)


def test_hidden_listings_cannot_be_collected(client, session, shop):
    hidden = factories.product(session, shop["org"], status="draft", title="Secret draft")
    session.commit()
    login(client, "buyer@example.com")
    response = post_form(client, "/favourites/toggle", {"product_id": hidden.id},
                         headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-state="off"' in fragment and "This listing is not available." in fragment
    response = post_form(client, "/favourites/toggle", {"product_id": hidden.id, "next": "/"})
    assert response.status_code == 302
    assert session.scalar(select(Favourite)) is None
    assert post_form(client, "/favourites/toggle", {"product_id": "abc"}).status_code == 400
    assert post_form(client, "/favourites/toggle", {}).status_code == 400


def test_favourites_page_lists_listings_and_institutions(client, session, shop):
    buyer, listing, org = shop["buyer"], shop["listing"], shop["org"]
    other = factories.product(session, org, title="Trademark filing 商标注册",
                              category_slug="trademark-registration")
    session.commit()
    login(client, buyer.email)
    assert 'data-testid="empty-favourites"' in client.get("/favourites").get_data(as_text=True)
    for product in (listing, other):
        post_form(client, "/favourites/toggle", {"product_id": product.id})
    post_form(client, "/favourites/toggle", {"provider_id": org.id})
    html = client.get("/favourites").get_data(as_text=True)
    assert html.count('data-testid="favourite-product"') == 2
    assert "PCT filing" in html and "Trademark filing" in html
    assert 'data-testid="favourite-providers"' in html and "Taihu IP Agency" in html
    # Someone else's favourites stay private.
    other_buyer = factories.user(session, factories.enterprise(session))
    session.commit()
    assert favourite_ids(session, other_buyer).products == frozenset()
    assert client.post("/logout", data={"csrf_token": csrf_token(client)}).status_code == 302
    login(client, other_buyer.email)
    assert "PCT filing" not in client.get("/favourites").get_data(as_text=True)


def test_favourites_page_pages_services_and_institutions_separately(client, session, shop, app,
                                                                     monkeypatch):
    buyer, org = shop["buyer"], shop["org"]
    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    for n in range(4):
        listing = factories.product(session, org, title=f"Utility model filing no. {n}")
        toggle_product(session, buyer, listing.id)
        session.commit()  # one favourite after the other: newest first is well defined
    for n in range(5):
        institution = factories.provider(session, name=f"Lakeside Evaluation Centre {n}")
        toggle_provider(session, buyer, institution.id)
        session.commit()
    login(client, buyer.email)
    first = client.get("/favourites").get_data(as_text=True)
    assert first.count('data-testid="favourite-product"') == 3
    assert "Showing 1–3 of 4 services" in first and "Showing 1–3 of 5 institutions" in first
    assert "filing no. 3" in first and "filing no. 0" not in first
    assert "Centre 4" in first and "Centre 1" not in first
    # The second page of institutions keeps the services on their first page.
    html = client.get("/favourites?institutions_page=2").get_data(as_text=True)
    assert "Showing 1–3 of 4 services" in html and "Showing 4–5 of 5 institutions" in html
    assert "Centre 1" in html and "Centre 0" in html and "Centre 4" not in html
    assert 'href="/favourites?institutions_page=2&amp;page=2"' in html
    html = client.get("/favourites?page=2&institutions_page=2").get_data(as_text=True)
    assert html.count('data-testid="favourite-product"') == 1 and "filing no. 0" in html


def test_price_change_and_withdrawal_notes_through_the_outbox(client, session, shop, index_dir):
    buyer, member, listing = shop["buyer"], shop["member"], shop["listing"]
    staff = factories.user(session, role="staff")
    toggle_product(session, buyer, listing.id)
    session.commit()
    reindex_all(session, index_dir)

    # An approved edit lowers the price: one note, naming both prices.
    data = listings.read_product(listing)
    data.packages[0].price = 650000
    listings.save_listing(session, member, listing, data)
    listings.submit(session, member, listing)
    listings.approve(session, staff, listing)
    session.commit()
    assert drain_outbox(session, index_dir).notices == 1
    [note] = notices(session, buyer, "favourite_price")
    assert "¥8,000.00" in note.body and "¥6,500.00" in note.body
    assert note.link == f"/products/{listing.id}"
    # Replaying the same state (a second drain, or a service calling it too) says nothing.
    assert notify_favourite_changes(session, listing) == 0

    listings.suspend_listing(session, staff, listing, "Documents under review")
    session.commit()
    drain_outbox(session, index_dir)
    assert len(notices(session, buyer, "favourite_withdrawn")) == 1
    assert notify_favourite_changes(session, listing) == 0
    login(client, buyer.email)
    assert 'data-testid="withdrawn"' in client.get("/favourites").get_data(as_text=True)

    listings.reinstate_listing(session, staff, listing)
    session.commit()
    drain_outbox(session, index_dir)
    assert len(notices(session, buyer, "favourite_available")) == 1
    assert len(notices(session, buyer)) == 3


def test_institution_suspension_notifies_collectors_once(session, shop, index_dir):
    from providers import onboarding

    buyer, listing = shop["buyer"], shop["listing"]
    staff = factories.user(session, role="staff")
    toggle_product(session, buyer, listing.id)
    session.commit()
    onboarding.suspend(session, staff, shop["org"], "Licence withdrawn by the regulator")
    session.commit()
    drain_outbox(session, index_dir)
    drain_outbox(session, index_dir)
    assert len(notices(session, buyer, "favourite_withdrawn")) == 1


def test_a_rebuild_sends_the_notes_of_the_rows_it_absorbs(session, shop, index_dir):
    # reindex rebuilds from the database and deletes the outbox rows it has covered; the
    # favourite notes those rows would have triggered in a drain must not vanish with them.
    buyer, listing = shop["buyer"], shop["listing"]
    staff = factories.user(session, role="staff")
    toggle_product(session, buyer, listing.id)
    session.commit()
    reindex_all(session, index_dir)

    listings.suspend_listing(session, staff, listing, "Documents under review")
    session.commit()
    reindex_all(session, index_dir)
    drain_outbox(session, index_dir)
    assert len(notices(session, buyer, "favourite_withdrawn")) == 1

    listings.reinstate_listing(session, staff, listing)
    session.commit()
    reindex_all(session, index_dir)
    reindex_all(session, index_dir)  # nothing left to say
    drain_outbox(session, index_dir)
    assert len(notices(session, buyer, "favourite_available")) == 1
    assert len(notices(session, buyer)) == 2


def _directory_cards(html) -> dict[int, str]:
    cards = {}
    for chunk in html.split('data-testid="institution-card" data-org-id="')[1:]:
        org_id, _, rest = chunk.partition('"')
        cards[int(org_id)] = rest
    return cards


def test_institution_directory_cards_carry_the_star(client, session, shop):
    org, buyer = shop["org"], shop["buyer"]
    other = factories.provider(session, name="Lakeside Valuation 湖畔评估")
    factories.product(session, other, title="Patent valuation 专利评估")
    session.commit()
    cards = _directory_cards(client.get("/institutions").get_data(as_text=True))
    assert set(cards) == {org.id, other.id}
    assert all('data-testid="favourite-login"' in card for card in cards.values())

    login(client, buyer.email)
    post_form(client, "/favourites/toggle", {"provider_id": org.id})
    assert favourite_ids(session, buyer).providers == {org.id}
    # The test's app context outlives each request; a real one starts with an empty ``g``.
    for name in ("favourite_ids", "_login_user"):
        g.pop(name, None)
    with count_queries() as few:
        html = client.get("/institutions").get_data(as_text=True)
    cards = _directory_cards(html)
    assert f'name="provider_id" value="{org.id}"' in cards[org.id]
    assert 'data-testid="favourite-button" data-state="on"' in cards[org.id]
    assert 'data-testid="favourite-button" data-state="off"' in cards[other.id]

    # One look-up of the viewer's stars per page, however many cards it holds.
    for n in range(6):
        more = factories.provider(session, name=f"Extra institution {n}")
        factories.product(session, more)
    session.commit()
    # The new institutions moved the catalogue version: the first page after that reads what
    # changed, once, to bring the process's cached category menu up to date.
    client.get("/institutions")
    for name in ("favourite_ids", "_login_user"):
        g.pop(name, None)
    with count_queries() as many:
        html = client.get("/institutions").get_data(as_text=True)
    assert len(_directory_cards(html)) == 8
    assert many.count == few.count, many.report()


def test_collectors_of_an_institution_hear_of_its_suspension(session, shop):
    from providers import onboarding

    buyer, org = shop["buyer"], shop["org"]
    bystander = factories.user(session, factories.enterprise(session))
    staff = factories.user(session, role="staff")
    toggle_provider(session, buyer, org.id)
    session.commit()

    # The note belongs to the suspension's transaction: rolled back together.
    onboarding.suspend(session, staff, org, "Licence withdrawn by the regulator")
    session.rollback()
    assert notices(session, buyer) == []

    onboarding.suspend(session, staff, org, "Licence withdrawn by the regulator")
    session.commit()
    [note] = notices(session, buyer, "favourite_withdrawn")
    assert org.name in note.title
    assert note.link == f"/institutions/{org.id}"
    assert notices(session, bystander) == []

    onboarding.reinstate(session, staff, org)
    session.commit()
    [note] = notices(session, buyer, "favourite_available")
    assert note.link == f"/institutions/{org.id}"
    assert len(notices(session, buyer)) == 2
    assert notices(session, bystander) == []


def test_counts_stay_in_step_for_many_collectors(session, shop):
    listing = shop["listing"]
    buyers = [factories.user(session, factories.enterprise(session)) for _ in range(5)]
    session.commit()
    for buyer in buyers:
        toggle_product(session, buyer, listing.id)
    session.commit()
    assert favourite_count(session, listing.id) == 5
    toggle_product(session, buyers[0], listing.id)
    session.commit()
    assert favourite_count(session, listing.id) == 4
    # Starring does not count as an edit of the listing.
    before = session.get(Product, listing.id).updated_at
    toggle_product(session, buyers[0], listing.id)
    session.commit()
    session.expire_all()
    assert session.get(Product, listing.id).updated_at == before
