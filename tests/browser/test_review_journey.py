"""Ratings in real Chromium: the buyer rates a completed order (a missing score is refused
with a message), the institution sees only that the buyer has rated, rates the buyer, both
reviews appear, the institution replies; a visitor reads the averages and pages through the
reviews with htmx; staff hide an abusive review with a reason."""

from datetime import UTC, datetime, timedelta

import factories
import order_support as support
import pytest
from helpers import browser_login as login
from helpers import browser_logout as logout
from playwright.sync_api import expect

from catalog import reviews
from marketplace.database import db

pytestmark = pytest.mark.browser

SCORES = [(5, 5, 4, 5), (4, 4, 4, 3), (5, 4, 5, 5), (3, 3, 4, 3), (5, 5, 5, 5), (4, 5, 4, 4),
          (2, 3, 2, 2), (5, 4, 4, 5), (4, 4, 5, 4), (5, 5, 5, 4), (1, 2, 1, 1)]
TEXTS = ["Clear search report, filed on time. 检索报告清晰，按时提交。",
         "Good agents, a little slow to answer email.", "Excellent drafting of the claims.",
         "Adequate, but we had to chase the status twice.", "Outstanding from start to end.",
         "Helpful with the examiner's objections.", "Missed the first deadline; fixed later.",
         "Professional and responsive team. 专业、响应快。", "Fair price for the quality.",
         "Would buy again.", "Rude messages and a late, sloppy filing."]


def _watch(page, problems):
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))


@pytest.fixture
def market(app):
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="Jinji Lake Patent Agency 金鸡湖专利代理")
        product = factories.product(session, agency, title="Invention patent filing 发明专利申请")
        buyer_org = factories.enterprise(session, name="Suzhou Nano Materials Co., Ltd.")
        buyer = factories.user(session, buyer_org, email="buyer@nano.example")
        agent = factories.user(session, agency, email="agent@jinji.example")
        staff = factories.user(session, role="staff", email="monitor@platform.example")
        outsider = factories.user(session, factories.enterprise(session))
        p = support.Parties(buyer_org=buyer_org, buyer=buyer, provider_org=agency,
                            provider=agent, staff=staff, outsider=outsider)
        base = datetime.now(UTC) - timedelta(days=60)
        for n, (scores, text) in enumerate(zip(SCORES, TEXTS, strict=True)):
            when = base + timedelta(days=n * 3)
            past = support.order(session, p, "completed", completed_at=when, product=product)
            session.commit()
            reviews.submit_review(session, past, buyer, dict(zip(
                ("quality", "timeliness", "communication", "value"), scores, strict=True)),
                text, now=when, blind_days=14)
            reviews.submit_review(session, past, agent, {"clarity": 4, "cooperation": 5,
                                                         "payment": 5}, "", now=when,
                                  blind_days=14)
        order = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                              product=product, title="Invention patent filing 发明专利申请")
        session.commit()
        return {"order_id": order.id, "product_id": product.id}


def test_both_sides_rate_reply_read_and_moderate(page, live_server, market, screenshots):
    problems: list[str] = []
    _watch(page, problems)
    base, order_id = live_server, market["order_id"]

    # The buyer rates the institution; a missing score is refused with a message.
    login(page, base, "buyer@nano.example")
    page.goto(f"{base}/orders/{order_id}")
    panel = page.get_by_test_id("rating-panel")
    expect(panel.get_by_test_id("rate-invite")).to_be_visible()
    panel.get_by_test_id("rate-order").click()
    form = panel.get_by_test_id("review-form")
    expect(form).to_be_visible()
    screenshots(page, "buyer-order-rate-form")
    for name, value in (("quality", 5), ("timeliness", 4), ("communication", 5)):
        form.locator(f"label[for='{name}-{value}']").click()
    form.get_by_test_id("review-body").fill("Filed within a week, clear explanations. 很专业。")
    form.get_by_test_id("review-submit").click()
    expect(page.get_by_test_id("error-value")).to_contain_text("value for money")
    expect(page.get_by_test_id("review-body")).to_have_value(
        "Filed within a week, clear explanations. 很专业。")
    screenshots(page, "buyer-missing-score")
    page.locator("label[for='value-4']").click()
    page.get_by_test_id("review-submit").click()
    expect(page.get_by_test_id("order-review-buyer").get_by_test_id("review-state")).to_have_text(
        "Not published yet")
    expect(page.get_by_test_id("blind-note")).to_be_visible()
    screenshots(page, "buyer-rated-blind")
    logout(page)

    # The institution sees that the buyer rated, not what; rates; both appear; replies.
    login(page, base, "agent@jinji.example")
    page.goto(f"{base}/provider/orders/{order_id}")
    panel = page.get_by_test_id("rating-panel")
    expect(panel).to_contain_text("The buyer has already rated this order.")
    expect(panel).not_to_contain_text("Filed within a week")
    expect(panel.get_by_test_id("buyer-rating")).to_contain_text("4.67")
    panel.get_by_test_id("rate-order").click()
    for name, value in (("clarity", 5), ("cooperation", 4), ("payment", 5)):
        panel.locator(f"label[for='{name}-{value}']").click()
    panel.get_by_test_id("review-body").fill("Clear technical disclosure, paid promptly.")
    screenshots(page, "provider-rate-form")
    panel.get_by_test_id("review-submit").click()
    panel = page.get_by_test_id("rating-panel")
    expect(panel.get_by_test_id("order-review-buyer")).to_contain_text("Filed within a week")
    expect(panel.get_by_test_id("order-review-provider")).to_contain_text("paid promptly")
    panel.get_by_test_id("reply-body").fill("Thank you — glad the filing went smoothly.")
    panel.get_by_test_id("reply-submit").click()
    expect(page.get_by_test_id("order-review-buyer").get_by_test_id("review-reply")).to_contain_text(
        "glad the filing went smoothly")
    expect(page.get_by_test_id("reply-form")).to_have_count(0)
    screenshots(page, "provider-both-published-replied")
    logout(page)

    # A visitor reads the ratings and pages through the reviews (htmx swaps the list).
    page.goto(f"{base}/products/{market['product_id']}")
    section = page.get_by_test_id("reviews-section")
    expect(section.get_by_test_id("rating-count")).to_have_text("12 reviews")
    expect(section.get_by_test_id("review")).to_have_count(10)
    expect(section.get_by_test_id("review").first).to_contain_text("glad the filing went smoothly")
    section.scroll_into_view_if_needed()
    screenshots(page, "visitor-product-reviews")
    url_before = page.url
    section.get_by_test_id("review-page-link").filter(has_text="2").click()
    expect(section.get_by_test_id("review")).to_have_count(2)
    expect(section.get_by_test_id("review").first).to_contain_text("Good agents, a little slow")
    assert page.url == url_before  # swapped in place, no full reload
    screenshots(page, "visitor-product-reviews-page-2")

    # Staff hide the abusive review; the average moves.
    login(page, base, "monitor@platform.example")
    page.goto(f"{base}/staff/reviews?side=buyer")
    card = page.get_by_test_id("staff-review").filter(has_text="Rude messages")
    card.get_by_test_id("hide-open").click()
    card.get_by_test_id("hide-reason").fill("Personal insults; violates the review rules")
    screenshots(page, "staff-hide-form")
    card.get_by_test_id("hide-submit").click()
    card = page.get_by_test_id("staff-review").filter(has_text="Rude messages")
    expect(card.get_by_test_id("hidden-reason")).to_contain_text("Personal insults")
    screenshots(page, "staff-review-hidden")
    logout(page)
    page.goto(f"{base}/products/{market['product_id']}")
    expect(page.get_by_test_id("rating-count")).to_have_text("11 reviews")
    expect(page.get_by_test_id("reviews-section")).not_to_contain_text("Rude messages")
    assert problems == []
