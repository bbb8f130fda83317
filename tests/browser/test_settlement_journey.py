"""Settlement in real Chromium: staff run this month's settlement, open the batch and a
statement, try to mark it paid without a reference (refused with a message), pay it, and
download the statement CSV; the institution reads its paid statement in the portal."""

import csv
import io
from pathlib import Path

import pytest
import settlement_support as ss
from helpers import browser_login as _login
from playwright.sync_api import expect
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import db

pytestmark = pytest.mark.browser


def test_staff_settle_a_month_and_the_institution_reads_its_statement(
        app, live_server, page, screenshots, localstripe):  # noqa: F811
    with app.app_context():
        month = ss.build_month(db.session)
        staff, provider = month.a.staff, month.a.provider
        label = month.period.label
        provider_name = month.a.provider_org.name
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, live_server, staff)
    page.goto(f"{live_server}/staff/settlement")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.fill("input[name=month]", label)
    screenshots(page, "settlement-empty")
    page.get_by_test_id("run-settlement").click()
    expect(page.get_by_text(f"Settlement batch ST-{label} created: 6 orders")).to_be_visible()
    expect(page.get_by_test_id("batch-totals")).to_contain_text("¥3,409.15")
    screenshots(page, "batch")

    page.get_by_role("link", name=provider_name).click()
    expect(page.get_by_test_id("statement-totals")).to_contain_text("¥1,979.99")
    page.get_by_test_id("ledger-trace").first.locator("summary").click()
    screenshots(page, "statement")
    page.get_by_test_id("mark-paid").click()
    expect(page.get_by_text("Enter the bank transfer reference")).to_be_visible()
    screenshots(page, "mark-paid-refused")
    page.fill("input[name=reference]", "BOC-20261130-0001")
    page.get_by_test_id("mark-paid").click()
    expect(page.get_by_test_id("paid-note")).to_contain_text("BOC-20261130-0001")
    screenshots(page, "statement-paid")
    with page.expect_download() as info:
        page.get_by_test_id("statement-csv").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[-1][0] == "TOTAL" and "1979.99" in rows[-1]

    page.goto(f"{live_server}/staff/reconciliation")
    expect(page.get_by_test_id("reconciliation-summary")).to_be_visible()
    screenshots(page, "reconciliation")

    page.context.clear_cookies()
    _login(page, live_server, provider)
    page.goto(f"{live_server}/provider")
    page.get_by_test_id("statements-link").click()
    expect(page.get_by_test_id("provider-statement-row")).to_contain_text("BOC-20261130-0001")
    screenshots(page, "provider-statements")
    page.get_by_role("link", name=label).click()
    expect(page.get_by_test_id("statement-totals")).to_contain_text("¥1,979.99")
    expect(page.get_by_test_id("mark-paid-form")).to_have_count(0)
    screenshots(page, "provider-statement")
