"""A milestone past due in real Chromium (issue 13): the monitor filters the progress list by
"milestone overdue", opens the order, is refused an extension without a reason, then extends
the milestone and sees the SLA recomputed and the extension on the timeline."""

import re
from datetime import timedelta

import order_support as support
import pytest
from helpers import browser_login as _login
from playwright.sync_api import expect

from marketplace.database import db, utcnow
from marketplace.i18n import local_today
from orders.models import Milestone

pytestmark = pytest.mark.browser


def test_monitor_finds_and_extends_an_overdue_milestone(app, live_server, page, screenshots):
    with app.app_context():
        now = utcnow()
        today = local_today(now)
        p = support.parties(db.session)
        late = support.order(db.session, p, "in_progress", title="Patent landscape report",
                             due_at=now + timedelta(days=25), accepted_at=now - timedelta(days=9),
                             paid_at=now - timedelta(days=10))
        calm = support.order(db.session, p, "in_progress", title="Trademark filing",
                             due_at=now + timedelta(days=25), accepted_at=now - timedelta(days=1),
                             paid_at=now - timedelta(days=2))
        db.session.add_all([
            Milestone(order_id=late.id, position=0, title="Search strategy agreed",
                      share_bp=3000, due_date=today - timedelta(days=3)),
            Milestone(order_id=late.id, position=1, title="Landscape report",
                      share_bp=7000, due_date=today + timedelta(days=20))])
        db.session.commit()
        staff, late_id, late_number, calm_number = p.staff, late.id, late.number, calm.number
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, live_server, staff)

    page.goto(f"{live_server}/staff/progress")
    expect(page.locator(f'[data-order="{calm_number}"]')).to_be_visible()
    page.get_by_test_id("filter-milestone-overdue").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"milestone=overdue"))
    rows = page.get_by_test_id("progress-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(late_number)
    expect(rows).to_contain_text("milestone “Search strategy agreed” was due")
    screenshots(page, "progress-milestone-overdue")

    rows.get_by_role("link", name=late_number).click()
    expect(page).to_have_url(re.compile(rf"/staff/orders/{late_id}$"))
    expect(page.get_by_test_id("order-sla")).to_contain_text("Overdue")
    expect(page.get_by_test_id("milestone-overdue")).to_have_count(1)
    page.get_by_test_id("intervention-tab-milestone").click()
    form = page.get_by_test_id("milestone-extend-form")
    form.locator("select[name=milestone-milestone]").select_option(index=0)  # "Search strategy agreed (…)"
    new_due = today + timedelta(days=10)
    form.locator("input[name=milestone-new_due_date]").fill(new_due.isoformat())
    form.get_by_role("button", name="Extend milestone").click()
    expect(page.get_by_text("Give the reason for this intervention")).to_be_visible()
    screenshots(page, "milestone-extend-refused")

    form = page.get_by_test_id("milestone-extend-form")
    form.locator("input[name=milestone-new_due_date]").fill(new_due.isoformat())
    form.locator("textarea[name=milestone-reason]").fill("The buyer sent the claims late.")
    form.get_by_role("button", name="Extend milestone").click()
    expect(page.get_by_text("Milestone extended; both parties have been told.")).to_be_visible()
    expect(page.get_by_test_id("order-sla")).to_contain_text("On track")
    expect(page.get_by_test_id("milestone-overdue")).to_have_count(0)
    expect(page.locator('[data-event="milestone_extended"]')).to_contain_text("claims late")
    screenshots(page, "milestone-extended")
