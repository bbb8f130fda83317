"""Security in a real browser: the CSP is enforced (an injected inline script does not run),
a locked login, the forgotten-password round trip through the email outbox, the friendly 429
page, and the staff list of lockouts."""

import re
from urllib.parse import urlsplit

import factories
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from sqlalchemy import select

from marketplace.database import db
from marketplace.models import EmailMessage
from marketplace.security import limiter

pytestmark = pytest.mark.browser


def test_locked_member_resets_password_by_email(app, live_server, page, screenshots,
                                                no_console_errors, monkeypatch):
    with app.app_context():
        member = factories.user(db.session, factories.enterprise(db.session),
                                email="li.na@nanotech.example")
        staff = factories.user(db.session, role="staff", email="monitor@platform.example")
        db.session.commit()
        member_email, staff_email = member.email, staff.email

    # The browser enforces the policy: an inline script injected into the page is refused.
    page.goto(live_server + "/login")
    with pytest.raises(PlaywrightError, match="Content Security Policy"):
        page.add_script_tag(content="window.injected = true;")
    assert page.evaluate("window.injected === undefined")
    page.wait_for_timeout(200)  # the console report arrives asynchronously
    csp = [p for p in no_console_errors.problems if "Content Security Policy" in p]
    assert csp, no_console_errors.problems
    no_console_errors.problems.clear()  # expected here; every other page must stay clean

    for _ in range(5):
        page.get_by_label("Email").fill(member_email)
        page.get_by_label("Password").fill("Guessing-wrong-1")
        page.get_by_role("button", name=re.compile("Log in")).click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("Too many failed attempts")
    screenshots(page, "locked")

    page.get_by_test_id("forgot-password-link").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(member_email)
    screenshots(page, "forgot")
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_text(f"If an account exists for {member_email}")).to_be_visible()
    screenshots(page, "link-sent")

    with app.app_context():
        body = db.session.scalar(select(EmailMessage.body).where(
            EmailMessage.to_address == member_email).order_by(EmailMessage.id.desc()))
    link = re.search(r"https?://\S+/password/reset/\S+", body).group(0)
    page.goto(live_server + urlsplit(link).path)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill("Nano-materials-2026")
    page.get_by_label("Confirm new password").fill("Nano-materials-2026")
    screenshots(page, "reset-form")
    page.get_by_role("button", name="Set new password and log in").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text("Your new password is set")).to_be_visible()
    screenshots(page, "reset-done")

    # The same link a second time.
    page.goto(live_server + urlsplit(link).path)
    expect(page.get_by_test_id("reset-problem")).to_contain_text("already been used")
    screenshots(page, "link-used")

    # A visitor hammering the login form gets the site's own "slow down" page.
    page.get_by_test_id("account-menu").click()
    page.get_by_role("button", name="Log out").click()
    monkeypatch.setitem(app.config, "RATELIMIT_ON", True)
    limiter.reset()
    try:
        page.goto(live_server + "/login")
        for n in range(11):
            page.get_by_label("Email").fill(f"guess{n}@nanotech.example")
            page.get_by_label("Password").fill("x")
            page.get_by_role("button", name=re.compile("Log in")).click()
        expect(page.get_by_role("heading", name="Slow down")).to_be_visible()
        expect(page.get_by_text("Too many attempts from your network")).to_be_visible()
        screenshots(page, "rate-limited")
    finally:
        limiter.reset()
        monkeypatch.setitem(app.config, "RATELIMIT_ON", False)

    # Staff see who was locked out (the member's lockout was cleared by the reset).
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(staff_email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name=re.compile("Log in")).click()
    page.goto(live_server + "/staff/lockouts")
    expect(page.get_by_role("heading", name=re.compile("Login lockouts"))).to_be_visible()
    rows = page.get_by_test_id("lockout-row")
    expect(rows.first).to_contain_text("@nanotech.example")
    expect(page.get_by_test_id("lockouts-table")).not_to_contain_text(member_email)
    screenshots(page, "staff-lockouts")
