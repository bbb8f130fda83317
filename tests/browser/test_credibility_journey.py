"""A monitor finds a low-credibility institution in the console, reads its breakdown and
history chart, puts it on watch and suspends it with reasons; a visitor sees credibility
badges and the breakdown on the public pages. Real Chromium, no inline scripts."""

from datetime import timedelta

import factories
import order_support as osup
import pytest
from playwright.sync_api import expect

from marketplace.database import db, utcnow
from providers import credibility
from providers.models import CredibilitySnapshot

pytestmark = pytest.mark.browser


@pytest.fixture
def market(app):
    with app.app_context():
        session = db.session
        now = utcnow()
        good = factories.provider(session, name="Jinji Lake IP Agency")
        factories.product(session, good, title="Invention patent filing")
        shaky = factories.provider(session, name="Shaky Testing Lab", institution_type="testing_lab")
        factories.product(session, shaky, title="EMC pre-compliance test", category_slug="testing")
        buyer_org = factories.enterprise(session, name="Suzhou Nano Tech Co., Ltd.")
        buyer = factories.user(session, buyer_org)
        staff = factories.user(session, role="staff", email="monitor@example.org")
        p = osup.Parties(buyer_org, buyer, shaky, factories.user(session, shaky), staff, buyer)
        for n in range(4):  # late deliveries and lost disputes
            osup.order(session, p, "resolved" if n % 2 else "completed",
                       paid_at=now - timedelta(days=30 + n), ruling="full" if n % 2 else None,
                       accepted_at=now - timedelta(days=28 + n), due_at=now - timedelta(days=20),
                       delivered_at=now - timedelta(days=10),
                       completed_at=None if n % 2 else now - timedelta(days=9))
        session.commit()
        for days in (60, 25):
            credibility.recompute_all(session, now - timedelta(days=days))
            session.commit()
        for org, score, level, days in ((shaky, 66, "B", 50), (good, 71, "A", 45)):
            session.add(CredibilitySnapshot(organisation_id=org.id, score=score, level=level,
                                            breakdown={}, computed_at=now - timedelta(days=days)))
        credibility.recompute_all(session, now)
        session.commit()
        return {"shaky": shaky.id, "good": good.id}


def test_monitor_watches_and_suspends_a_low_scoring_institution(live_server, page, market,
                                                               screenshots):
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.set_default_timeout(10_000)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server}/institutions/{market['good']}")
    expect(page.get_by_test_id("credibility-breakdown")).to_be_visible()
    expect(page.locator("canvas[data-credibility-chart]")).to_be_visible()
    page.get_by_test_id("credibility-breakdown").scroll_into_view_if_needed()
    screenshots(page, "public-profile")

    page.goto(f"{live_server}/login")
    page.fill("#email", "monitor@example.org")
    page.fill("#password", factories.PASSWORD)
    page.locator("form:has(#password) button[type=submit]").click()
    page.goto(f"{live_server}/staff/credibility")
    alert = page.get_by_test_id("low-score-alerts")
    expect(alert).to_contain_text("Shaky Testing Lab")
    screenshots(page, "console-list")

    alert.get_by_role("link", name="Shaky Testing Lab").click()
    expect(page.get_by_test_id("credibility-breakdown")).to_contain_text("lost (full refund)")
    expect(page.locator("canvas[data-credibility-chart]")).to_be_visible()
    screenshots(page, "console-detail")

    page.get_by_test_id("details-watch").locator("summary").click()
    page.get_by_test_id("action-watch").get_by_role("button").click()  # no reason yet
    expect(page.get_by_test_id("action-watch")).to_contain_text("Give a reason")
    page.fill("#reason-watch", "Two disputes lost in a month.")
    page.get_by_test_id("action-watch").get_by_role("button").click()
    expect(page.get_by_test_id("watch-badge")).to_be_visible()

    page.get_by_test_id("details-suspend").locator("summary").click()
    page.fill("#reason-suspend", "Deliveries weeks late; buyers refunded in full twice.")
    page.get_by_test_id("action-suspend").get_by_role("button").click()
    expect(page.get_by_test_id("suspended-badge")).to_be_visible()
    expect(page.get_by_test_id("decisions")).to_contain_text("Deliveries weeks late")
    screenshots(page, "suspended")
    # The refused submission without a reason answers 422 on purpose; nothing else may fail.
    assert [problem for problem in problems if "422" not in problem] == []
