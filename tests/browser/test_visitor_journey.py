"""A visitor browses the storefront, registers a company and logs in, in real Chromium."""

import re

import factories
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from marketplace.credit_code import generate
from marketplace.database import db
from marketplace.models import Organisation, User

pytestmark = pytest.mark.browser


def test_visitor_browses_signs_up_and_sees_account(app, live_server, page, screenshots):
    import random

    with app.app_context():
        provider = factories.provider(db.session, name="Suzhou Yuanhe Patent Agency")
        listing = factories.product(
            db.session, provider, title="Invention patent filing with prior-art search",
            category_slug="patent-application", prices=(680000, 1280000), featured=True,
        )
        db.session.commit()
        listing_id = listing.id
    credit_code = generate(random.Random(99))
    console_errors = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    page.on("response", lambda r: r.status >= 400 and console_errors.append(f"{r.status} {r.url}"))

    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name=re.compile("Innovation Service Supermarket"))).to_be_visible()
    screenshots(page, "home")

    page.get_by_role("link", name=re.compile(r"^Patent application")).first.click()
    expect(page).to_have_url(re.compile(r"/c/patent-application"))
    expect(page.get_by_text("Invention patent filing with prior-art search")).to_be_visible()
    screenshots(page, "category")

    page.get_by_role("link", name="Invention patent filing with prior-art search").first.click()
    expect(page).to_have_url(re.compile(rf"/products/{listing_id}$"))
    expect(page.get_by_text("¥6,800.00").first).to_be_visible()
    expect(page.get_by_text("Suzhou Yuanhe Patent Agency").first).to_be_visible()
    screenshots(page, "product")

    page.get_by_role("link", name="Sign up").click()
    page.get_by_role("link", name="Register my company").click()
    form = page.get_by_test_id("signup-enterprise-form")
    form.get_by_label("Company name").fill("Suzhou Browser Test Robotics Co., Ltd.")
    form.get_by_label("Unified social credit code").fill(credit_code)
    form.get_by_label("Region").select_option("suzhou_sip")
    form.get_by_label("Industry").select_option("ai")
    form.get_by_label("Company size").select_option("small")
    form.get_by_label("Contact person").fill("Wang Fang")
    form.get_by_label("Contact phone").fill("0512-62880000")
    form.get_by_label("Email").fill("wang.fang@robotics.example")
    form.get_by_label("Password", exact=True).fill("Robots-build-2026")
    form.get_by_label("Confirm password").fill("Robots-build-2026")
    form.get_by_label(re.compile("I accept")).check()
    screenshots(page, "signup-filled")
    form.get_by_role("button", name="Create company account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    screenshots(page, "signed-up")

    page.get_by_test_id("account-menu").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("wang.fang@robotics.example")
    page.get_by_label("Password").fill("Robots-build-2026")
    screenshots(page, "login")
    page.get_by_role("button", name=re.compile("Log in")).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text("Suzhou Browser Test Robotics Co., Ltd.").first).to_be_visible()
    expect(page.get_by_text(credit_code).first).to_be_visible()
    screenshots(page, "account")

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "wang.fang@robotics.example"))
        assert user.role == "enterprise"
        org = db.session.get(Organisation, user.organisation_id)
        assert org.credit_code == credit_code and org.kind == "enterprise"
    assert console_errors == []
