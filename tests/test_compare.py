"""Comparison: up to four listings side by side, kept in the visitor's session."""

import factories
import pytest
from conftest import post_form

from catalog import compare


@pytest.fixture
def products(session):
    bank = factories.provider(session, name="Suzhou Tech Bank 苏州科技银行", institution_type="bank",
                              regions_served=["suzhou"])
    agency = factories.provider(session, name="Wuxi Patent Office 无锡专利事务所")
    made = [
        factories.product(session, bank, mode="financial", category_slug="credit-loans",
                          title="Tech-SME credit loan 科技贷", regions=["suzhou", "wuxi"]),
        factories.product(session, agency, title="Invention patent filing 发明专利申请",
                          prices=(500000, 900000, 1500000), voucher_eligible=True),
        factories.product(session, agency, mode="quote", title="Patent litigation 专利诉讼",
                          category_slug="ip-litigation", regions=["national"]),
        factories.product(session, agency, title="Utility model 实用新型", prices=(200000,)),
        factories.product(session, agency, title="Design patent 外观设计", prices=(150000,)),
    ]
    session.commit()
    return made


def toggle(client, product_id, htmx=False, next_url=None):
    data = {"product_id": product_id}
    if next_url:
        data["next"] = next_url
    headers = {"HX-Request": "true"} if htmx else {}
    return post_form(client, "/compare/toggle", data, headers=headers)


def test_pick_up_to_four_and_the_fifth_is_refused(client, products):
    for product in products[:4]:
        response = toggle(client, product.id, next_url="/search")
        assert response.status_code == 302 and response.headers["Location"].endswith("/search")
    response = toggle(client, products[4].id, htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert 'data-testid="compare-message"' in fragment
    assert "up to 4" in fragment
    assert 'data-state="off"' in fragment
    # Without JavaScript the refusal is a flash message on the page it came from.
    response = toggle(client, products[4].id, next_url="/search")
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You can compare up to 4 listings" in follow

    page = client.get("/compare").get_data(as_text=True)
    assert page.count('data-testid="compare-column"') == 4
    assert "Design patent" not in page


def test_htmx_toggle_swaps_the_button_and_updates_the_navbar_count(client, products):
    response = toggle(client, products[0].id, htmx=True)
    fragment = response.get_data(as_text=True)
    assert 'data-state="on"' in fragment and "Comparing" in fragment
    assert 'id="compare-tray"' in fragment and 'hx-swap-oob="true"' in fragment
    assert ">1</span>" in fragment
    response = toggle(client, products[0].id, htmx=True)
    assert 'data-state="off"' in response.get_data(as_text=True)
    assert 'data-testid="empty-compare"' in client.get("/compare").get_data(as_text=True)


def test_the_table_shows_what_buyers_compare(client, products):
    for product in products[:3]:
        toggle(client, product.id)
    html = client.get("/compare").get_data(as_text=True)
    columns = [f'data-product-id="{p.id}"' for p in products[:3]]
    assert all(column in html for column in columns)
    # Picked order is kept.
    assert html.index(columns[0]) < html.index(columns[1]) < html.index(columns[2])
    for text in ("Suzhou Tech Bank", "Wuxi Patent Office",  # institutions
                 "¥5,000.00", "¥9,000.00", "¥15,000.00",  # packages
                 "Priced by quotation", "3.45%",  # quote and financial terms
                 "Suzhou", "Wuxi", "Nationwide",  # regions
                 "10 days", "Eligible", "Not eligible"):
        assert text in html, text
    # Unscored institutions and unreviewed listings say so instead of inventing figures.
    assert html.count("Scored after the institution") == 3
    assert html.count("No reviews yet") == 3


def test_listings_that_disappear_are_dropped(client, session, products):
    for product in products[:2]:
        toggle(client, product.id)
    products[0].status = "suspended"
    session.commit()
    html = client.get("/compare").get_data(as_text=True)
    assert html.count('data-testid="compare-column"') == 1
    assert "no longer available" in html
    assert toggle(client, products[0].id).status_code == 302  # cannot be added back
    assert client.get("/compare").get_data(as_text=True).count(
        'data-testid="compare-column"') == 1


def test_clear_and_the_compare_button_on_product_pages(client, products):
    product = products[1]
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-testid="compare-button" data-state="off"' in html
    toggle(client, product.id)
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-testid="compare-button" data-state="on"' in html
    post_form(client, "/compare/clear", {})
    assert 'data-testid="empty-compare"' in client.get("/compare").get_data(as_text=True)


def test_bad_input_is_rejected(client, products):
    assert post_form(client, "/compare/toggle", {"product_id": "x"}).status_code == 400
    assert post_form(client, "/compare/toggle", {}).status_code == 400
    assert post_form(client, "/compare/toggle", {"product_id": "-1"}).status_code == 400
    assert client.post("/compare/toggle", data={"product_id": products[0].id}).status_code == 400


@pytest.mark.parametrize("raw, expected", [
    (None, []), ("1,2", []), ([1, "2", 2, "x", -4, 0, 3, 4, 5], [1, 2, 3, 4]),
])
def test_clean_ids(raw, expected):
    assert compare.clean_ids(raw) == expected


def test_add_and_remove_rules():
    assert compare.add([1, 2], 2) == [1, 2]
    assert compare.add([1, 2], 3) == [1, 2, 3]
    with pytest.raises(compare.CompareFull):
        compare.add([1, 2, 3, 4], 5)
    assert compare.remove([1, 2, 3], 2) == [1, 3]


def test_remove_from_the_comparison_page(client, products):
    for product in products[:2]:
        toggle(client, product.id)
    html = client.get("/compare").get_data(as_text=True)
    assert html.count('data-testid="compare-remove"') == 2
    response = toggle(client, products[0].id, next_url="/compare")
    assert response.headers["Location"].endswith("/compare")
    html = client.get("/compare").get_data(as_text=True)
    assert html.count('data-testid="compare-column"') == 1
    assert f'data-product-id="{products[1].id}"' in html


def test_comparison_shows_each_institutions_credibility_and_each_listings_rating(
        client, session, products):
    bank, agency = products[0].provider, products[1].provider
    bank.credibility_score, bank.credibility_level = 86, "AA"
    products[1].rating_x100, products[1].rating_count = 425, 4
    session.commit()
    toggle(client, products[0].id)
    toggle(client, products[1].id)

    page = client.get("/compare").get_data(as_text=True)
    credibility = page.split('data-testid="credibility"')[1:]
    assert 'data-level="AA"' in credibility[0] and 'data-score="86"' in credibility[0]
    assert agency.credibility_level is None
    assert "Scored after the institution" in credibility[1]
    ratings = page.split('data-testid="rating"')[1:]
    assert "No reviews yet" in ratings[0]
    assert "4.25" in ratings[1] and "(4 reviews)" in ratings[1]
