"""Who can open the staff console, what it shows, and how staff accounts come to exist."""

import re
from datetime import timedelta
from html import unescape

import factories
import pytest
from conftest import post_form
from sqlalchemy import select

from marketplace.database import db, utcnow
from marketplace.models import Organisation, User


def figure(body: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">(\d+)<', body)
    assert match, f"no figure {testid} on the page"
    return int(match.group(1))


def log_in_as(app, client, role: str) -> str:
    with app.app_context():
        if role in ("enterprise", "provider"):
            org = factories.enterprise(db.session) if role == "enterprise" else factories.provider(db.session)
            user = factories.user(db.session, org)
        else:
            user = factories.user(db.session, role=role)
        email = user.email
        db.session.commit()
    response = post_form(client, "/login", {"email": email, "password": factories.PASSWORD})
    assert response.status_code == 302
    return email


def test_visitor_is_sent_to_log_in(client):
    response = client.get("/staff")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fstaff"
    page = unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Please log in to continue." in page


@pytest.mark.parametrize("role", ["enterprise", "provider"])
def test_members_get_a_site_styled_403(app, client, role):
    log_in_as(app, client, role)
    response = client.get("/staff")
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "Not allowed" in body
    assert "Your account does not have access to this page." in body
    assert "Back to the supermarket" in body
    assert "Staff console" not in body


def _populate(app):
    """A small platform: 3 enterprises, 3 institutions, 4 listings, members for each."""
    with app.app_context():
        s = db.session
        for _ in range(2):
            factories.user(s, factories.enterprise(s))
        pending = factories.enterprise(s, name="Taicang New Materials Co., Ltd.")
        pending.verification_status = "unverified"
        factories.user(s, pending)
        verified_a = factories.provider(s, name="Suzhou Science Bank Branch")
        verified_b = factories.provider(s)
        applying = factories.provider(s, name="Wuxi Testing Lab", verified=False)
        applying.verification_status = "pending"
        for org in (verified_a, verified_b, applying):
            factories.user(s, org)
        factories.product(s, verified_a)
        factories.product(s, verified_a)
        factories.product(s, verified_b, status="draft")
        factories.product(s, applying, status="pending_review")
        # The newest sign-up, so it heads the table.
        latest = factories.enterprise(s, name="Changshu Smart Textiles Co., Ltd.")
        latest.created_at = utcnow() + timedelta(minutes=1)
        factories.user(s, latest)
        s.commit()


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_and_admin_see_real_figures(app, client, role):
    _populate(app)
    log_in_as(app, client, role)
    response = client.get("/staff")
    assert response.status_code == 200
    body = unescape(response.get_data(as_text=True))
    assert "Staff console" in body
    assert figure(body, "count-enterprises") == 4
    assert figure(body, "count-providers") == 3
    assert figure(body, "count-products") == 4
    assert figure(body, "count-users") == 8
    assert figure(body, "enterprises-verified") == 3
    assert figure(body, "enterprises-unverified") == 1
    assert figure(body, "providers-verified") == 2
    assert figure(body, "providers-pending") == 1
    assert figure(body, "providers-rejected") == 0
    assert figure(body, "products-published") == 2
    assert figure(body, "products-draft") == 1
    assert figure(body, "products-pending_review") == 1
    assert figure(body, "products-archived") == 0
    assert figure(body, "users-enterprise") == 4
    assert figure(body, "users-provider") == 3
    assert figure(body, f"users-{role}") == 1
    table = body[body.index('data-testid="recent-signups"'):]
    assert "Taicang New Materials Co., Ltd." in table
    assert "Wuxi Testing Lab" in table
    assert "Verification pending" in table
    assert table.index("Changshu Smart Textiles Co., Ltd.") < table.index("Taicang New Materials")


def test_recent_signups_lists_the_20_newest(app, client):
    with app.app_context():
        start = utcnow() - timedelta(days=30)
        for n in range(25):
            org = factories.enterprise(db.session, name=f"Signup number {n:02d} Ltd.")
            org.created_at = start + timedelta(days=n)
        db.session.commit()
    log_in_as(app, client, "staff")
    body = client.get("/staff").get_data(as_text=True)
    table = body[body.index('data-testid="recent-signups"'):]
    shown = re.findall(r"Signup number (\d\d) Ltd\.", table)
    assert shown == [f"{n:02d}" for n in range(24, 4, -1)]


def test_empty_platform_shows_an_empty_state(app, client):
    log_in_as(app, client, "staff")
    body = client.get("/staff").get_data(as_text=True)
    assert figure(body, "count-enterprises") == 0
    assert "No organisations have signed up yet." in body


# --- create-staff command ------------------------------------------------------------------


def test_create_staff_command_creates_a_staff_account_that_can_log_in(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-staff", "--email", "Monitor.Xu@Platform.cn",
                                 "--name", "Xu Ming", "--password", "Watchful-eye-58"])
    assert result.exit_code == 0, result.output
    assert "Created staff account monitor.xu@platform.cn." in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "monitor.xu@platform.cn"))
        assert (user.role, user.full_name, user.organisation_id) == ("staff", "Xu Ming", None)
        assert user.password_hash != "Watchful-eye-58"
    response = post_form(client, "/login", {"email": "monitor.xu@platform.cn",
                                            "password": "Watchful-eye-58"})
    assert response.headers["Location"] == "/account"
    assert client.get("/staff").status_code == 200


def test_create_staff_command_can_create_an_admin_with_a_prompted_password(app):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "--email", "admin@platform.cn", "--name", "Gao Admin", "--admin"],
        input="Steady-keel-3141\nSteady-keel-3141\n")
    assert result.exit_code == 0, result.output
    assert "Created admin account admin@platform.cn." in result.output
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "admin@platform.cn")) == "admin"


def test_create_staff_command_refuses_a_duplicate_email(app):
    with app.app_context():
        factories.user(db.session, role="staff", email="monitor@platform.cn")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=[
        "create-staff", "--email", "MONITOR@platform.cn", "--name", "Someone Else",
        "--password", "Watchful-eye-58"])
    assert result.exit_code != 0
    assert "An account with monitor@platform.cn already exists." in result.output
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_create_staff_command_refuses_a_weak_password(app):
    result = app.test_cli_runner().invoke(args=[
        "create-staff", "--email", "weak@platform.cn", "--name", "Weak Password",
        "--password", "abc"])
    assert result.exit_code != 0
    assert "Use at least 10 characters." in result.output
    assert "Use both letters and digits." in result.output
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []
        assert db.session.scalars(select(Organisation)).all() == []
