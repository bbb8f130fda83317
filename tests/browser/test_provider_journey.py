"""An institution goes from sign-up to a published listing, with staff approving each step
in another browser, in real Chromium."""

import re

import factories
import provider_support as ps
import pytest
from playwright.sync_api import expect
from provider_support import clean_uploads  # noqa: F401  (autouse)

from marketplace.database import db

pytestmark = pytest.mark.browser

PASSWORD = "Patents-for-all-2026"


def _watch(page, problems):
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))


def test_provider_signs_up_applies_publishes_and_visitor_finds_it(app, live_server, browser,
                                                                  screenshots, tmp_path):
    with app.app_context():
        staff = factories.user(db.session, None, role="staff", email="monitor@platform.example")
        db.session.commit()
    licence = tmp_path / "营业执照.pdf"
    licence.write_bytes(ps.pdf_bytes("Business licence of Taicang Patent Service Co."))
    credit_code = ps.credit_code()
    problems: list[str] = []

    provider_context = browser.new_context(viewport={"width": 1280, "height": 900})
    staff_context = browser.new_context(viewport={"width": 1280, "height": 900})
    provider = provider_context.new_page()
    desk = staff_context.new_page()
    for page in (provider, desk):
        page.set_default_timeout(10_000)
        _watch(page, problems)

    # --- The institution signs up.
    provider.goto(live_server + "/signup")
    provider.get_by_role("link", name="Register my institution").click()
    form = provider.get_by_test_id("signup-provider-form")
    form.get_by_label("Institution name").fill("Taicang Patent Service Co.")
    form.get_by_label("Institution type").select_option("ip_agency")
    form.get_by_label("Contact person").fill("Zhou Ming")
    form.get_by_label("Contact phone").fill("0512-53330000")
    form.get_by_label("Email").fill("zhou.ming@taicang-ip.example")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_label(re.compile("I accept")).check()
    form.get_by_role("button", name="Create institution account").click()
    expect(provider).to_have_url(re.compile(r"/account$"))
    screenshots(provider, "provider-signed-up")

    # --- It completes the application, watching the Markdown preview, and uploads a PDF.
    provider.get_by_test_id("application-link").click()
    expect(provider).to_have_url(re.compile(r"/provider/institution$"))
    profile = provider.get_by_test_id("institution-form")
    profile.get_by_label("Unified social credit code").fill(credit_code)
    profile.get_by_label("Suzhou", exact=True).check()
    profile.get_by_label("Taicang", exact=True).check()
    profile.get_by_label("Service description").fill(
        "## About us\n\nWe file **invention patents** and trademarks for manufacturers in "
        "Taicang and Suzhou.")
    expect(provider.get_by_test_id("markdown-preview").locator("strong")).to_have_text(
        "invention patents")
    profile.get_by_label("Contact email").fill("ip@taicang-ip.example")
    profile.get_by_role("button", name="Save profile").click()
    expect(provider.get_by_text("Institution profile saved.")).to_be_visible()

    upload = provider.get_by_test_id("upload-form")
    upload.get_by_label("Document").select_option("business_licence")
    upload.get_by_label("File").set_input_files(str(licence))
    upload.get_by_role("button", name="Upload document").click()
    expect(provider.get_by_test_id("document")).to_contain_text("营业执照.pdf")
    screenshots(provider, "application-complete")
    provider.get_by_test_id("submit-application").click()
    expect(provider.get_by_text("Application sent.")).to_be_visible()
    expect(provider.get_by_test_id("verification-card")).to_contain_text("being reviewed")
    screenshots(provider, "dashboard-pending")

    # --- Staff approve it in their own browser.
    desk.goto(live_server + "/login")
    desk.get_by_label("Email").fill(staff.email)
    desk.get_by_label("Password").fill(factories.PASSWORD)
    desk.get_by_role("button", name=re.compile("Log in")).click()
    expect(desk.get_by_test_id("notification-bell")).to_be_visible()
    desk.goto(live_server + "/staff/verification")
    row = desk.get_by_test_id("queue-row").filter(has_text="Taicang Patent Service Co.")
    screenshots(desk, "verification-queue")
    row.get_by_role("link", name="Review").click()
    expect(desk.get_by_test_id("documents")).to_contain_text("营业执照.pdf")
    screenshots(desk, "verification-detail")
    decision = desk.get_by_test_id("decision-approve")
    decision.get_by_label("Note (optional)").fill("Licence matches the national registry.")
    decision.get_by_role("button", name=re.compile("Approve")).click()
    expect(desk.get_by_text("Taicang Patent Service Co. is now verified.")).to_be_visible()

    # --- The institution sees the decision and creates a packaged listing.
    provider.goto(live_server + "/provider")
    expect(provider.get_by_test_id("verification-card")).to_contain_text("Verified institution")
    expect(provider.get_by_test_id("unread-count")).to_be_visible()
    screenshots(provider, "dashboard-verified")
    provider.get_by_test_id("next-step").click()
    listing = provider.get_by_test_id("listing-form")
    listing.get_by_label("Category").select_option(label="Patent application")
    listing.get_by_label("Title").fill("Utility-model patent filing in 30 days")
    listing.get_by_label("Summary").fill("Drafting and filing of utility-model patents for "
                                         "manufacturing SMEs, with a search report.")
    listing.get_by_label("Description").fill("## Included\n\n- Novelty search\n- Drafting\n"
                                             "- Filing with CNIPA")
    expect(provider.get_by_test_id("markdown-preview").locator("li")).to_have_count(3)
    listing.get_by_label("Taicang", exact=True).check()
    listing.get_by_label("Tags").fill("patent, 实用新型, SME")
    listing.get_by_label(re.compile("Innovation vouchers accepted")).check()
    expect(provider.locator('[data-pricing-mode="quote"]')).to_be_hidden()
    packages = provider.get_by_test_id("package-editor")
    packages.nth(0).get_by_label("Package name").fill("Standard")
    packages.nth(0).get_by_label("Price (¥)").fill("3,800.00")
    packages.nth(0).get_by_label("Delivery (days)").fill("30")
    packages.nth(0).get_by_label("Deliverables").fill("Search report\nFiled application")
    packages.nth(1).get_by_label("Package name").fill("Express")
    packages.nth(1).get_by_label("Price (¥)").fill("5,600.00")
    packages.nth(1).get_by_label("Delivery (days)").fill("15")
    screenshots(provider, "listing-form")
    listing.get_by_test_id("save-listing").click()
    expect(provider.get_by_text("Draft saved.")).to_be_visible()

    provider.get_by_test_id("preview-link").click()
    expect(provider.get_by_test_id("preview-title")).to_have_text(
        "Utility-model patent filing in 30 days")
    expect(provider.get_by_test_id("package")).to_have_count(2)
    screenshots(provider, "listing-preview")
    provider.get_by_role("button", name="Submit for review").click()
    expect(provider.get_by_text("Submitted for review.")).to_be_visible()
    screenshots(provider, "listing-submitted")

    # --- Staff approve the listing.
    desk.goto(live_server + "/staff/moderation")
    desk.get_by_test_id("moderation-row").filter(
        has_text="Utility-model patent filing").get_by_role("link", name="Review").click()
    expect(desk.get_by_test_id("diff")).to_contain_text("Standard: ¥3,800.00, 30 days")
    screenshots(desk, "moderation-detail")
    desk.get_by_test_id("decision-approve").get_by_role("button",
                                                      name="Approve and publish").click()
    expect(desk.get_by_text("is published")).to_be_visible()
    screenshots(desk, "moderation-queue-empty")

    # --- A visitor (the staff browser after logging out) finds it in its category.
    desk.get_by_test_id("account-menu").click()
    desk.get_by_role("button", name="Log out").click()
    desk.goto(live_server + "/c/patent-application")
    card = desk.get_by_test_id("product-card").filter(has_text="Utility-model patent filing")
    expect(card).to_be_visible()
    expect(card).to_contain_text("¥3,800.00")
    screenshots(desk, "visitor-category")
    card.get_by_role("link", name=re.compile("Utility-model patent filing")).click()
    expect(desk.get_by_text("Taicang Patent Service Co.").first).to_be_visible()
    screenshots(desk, "visitor-product")

    provider_context.close()
    staff_context.close()
    assert problems == []
