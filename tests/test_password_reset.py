"""Password reset by a signed, expiring, single-use link sent through the email outbox."""

import re
from datetime import UTC, datetime
from html import unescape

import factories
import pytest
import time_machine
from conftest import csrf_token, post_form
from sqlalchemy import select

from marketplace.database import db
from marketplace.models import EmailMessage, LoginThrottle, User

START = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
NEW_PASSWORD = "Fresh-start-2026"
SENT = "If an account exists for"


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def member(app):
    with app.app_context():
        user = factories.user(db.session, factories.enterprise(db.session))
        db.session.commit()
        return user.email


def emails_to(app, address) -> list[EmailMessage]:
    with app.app_context():
        return list(db.session.scalars(select(EmailMessage).where(
            EmailMessage.to_address == address).order_by(EmailMessage.id)))


def ask_for_link(client, email) -> str | None:
    response = post_form(client, "/password/forgot", {"email": email}, follow_redirects=True)
    assert SENT in text(response) and email in text(response)
    return response


def reset_path(app, email) -> str:
    body = emails_to(app, email)[-1].body
    # SITE_URL (tests/conftest.py), not the test client's "localhost" Host header.
    match = re.search(r"https://supermarket\.example\.cn(/password/reset/\S+)", body)
    assert match, body
    return match.group(1)


def choose(client, path, password=NEW_PASSWORD, confirm=None):
    return client.post(path, data={"csrf_token": csrf_token(client, path),
                                   "new_password": password,
                                   "confirm": confirm or password})


def log_in(client, email, password):
    return post_form(client, "/login", {"email": email, "password": password})


def test_login_page_links_to_the_forgot_form(client):
    page = text(client.get("/login"))
    assert 'href="/password/forgot"' in page
    assert "Forgot your password?" in text(client.get("/password/forgot"))


def test_link_is_emailed_and_works_once_and_signs_in(app, client, member):
    ask_for_link(client, member)
    [email] = emails_to(app, member)
    assert "Reset your password" in email.subject and "works once, for 60 minutes" in email.body
    path = reset_path(app, member)

    form = client.get(path)
    assert form.status_code == 200 and member in text(form)
    done = choose(client, path)
    assert done.status_code == 302 and done.headers["Location"].endswith("/account")
    assert client.get("/account").status_code == 200  # logged in
    assert log_in(app.test_client(), member, NEW_PASSWORD).status_code == 302
    assert "Email or password is incorrect." in text(log_in(app.test_client(), member,
                                                            factories.PASSWORD))
    assert "Your password was changed" in emails_to(app, member)[-1].subject

    again = app.test_client()
    second = again.get(path)
    assert second.status_code == 400
    assert "not valid or has already been used" in text(second)
    assert choose(again, path, "Another-one-2027").status_code == 400
    assert log_in(app.test_client(), member, "Another-one-2027").status_code == 200  # refused


def test_link_is_on_site_url_whatever_host_the_request_names(app, client, member):
    """A forged Host header must not put the reset token on someone else's server."""
    forged = {"Host": "attacker.example.net"}
    form = client.get("/password/forgot", headers=forged).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    response = client.post("/password/forgot", data={"csrf_token": token, "email": member},
                           headers=forged)
    assert response.status_code == 302
    [email] = emails_to(app, member)
    assert "attacker.example.net" not in email.body
    assert re.search(r"^https://supermarket\.example\.cn/password/reset/\S+$", email.body, re.M)


def test_unknown_address_gets_the_same_answer_and_no_email(app, client, member):
    known = ask_for_link(client, member)
    unknown = ask_for_link(app.test_client(), "nobody@example.com")
    assert emails_to(app, "nobody@example.com") == []
    strip = re.compile(r'(content|value)="[^"]*"|[\w.+-]+@example\.com')
    assert strip.sub("", known.get_data(as_text=True)) == strip.sub("", unknown.get_data(as_text=True))


def test_deactivated_account_gets_no_link(app, client):
    with app.app_context():
        user = factories.user(db.session, factories.enterprise(db.session), active=False)
        db.session.commit()
        email = user.email
    ask_for_link(client, email)
    assert emails_to(app, email) == []


def test_expired_link_is_refused(app, client, member):
    with time_machine.travel(START, tick=False) as clock:
        ask_for_link(client, member)
        path = reset_path(app, member)
        clock.shift(3599)
        assert client.get(path).status_code == 200
        clock.shift(2)
        expired = client.get(path)
        assert expired.status_code == 400 and "has expired" in text(expired)
        assert choose(client, path).status_code == 400
    assert log_in(app.test_client(), member, factories.PASSWORD).status_code == 302


def test_link_lifetime_is_configurable(app, client, member, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_MAX_AGE", 600)
    with time_machine.travel(START, tick=False) as clock:
        ask_for_link(client, member)
        assert "for 10 minutes" in emails_to(app, member)[-1].body
        path = reset_path(app, member)
        clock.shift(601)
        assert "has expired" in text(client.get(path))


@pytest.mark.parametrize("tamper", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
    lambda token: "x" + token,  # payload
    lambda token: "not-a-token",
])
def test_tampered_link_is_refused(app, client, member, tamper):
    ask_for_link(client, member)
    path = reset_path(app, member)
    prefix, token = path.rsplit("/", 1)
    bad = f"{prefix}/{tamper(token)}"
    response = client.get(bad)
    assert response.status_code == 400 and "not valid" in text(response)
    assert choose(client, bad).status_code == 400


def test_link_signed_with_another_secret_is_refused(app, client, member):
    from marketplace.accounts_service import password_reset_token

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == member))
        forged = password_reset_token(user, "some-other-secret")
    assert client.get(f"/password/reset/{forged}").status_code == 400


def test_new_password_follows_the_rules_and_the_link_stays_usable(app, client, member):
    ask_for_link(client, member)
    path = reset_path(app, member)
    weak = choose(client, path, "short")
    assert weak.status_code == 200 and "Use at least 10 characters." in text(weak)
    mismatch = choose(client, path, NEW_PASSWORD, "Something-else-1")
    assert "The two passwords do not match." in text(mismatch)
    assert choose(client, path).status_code == 302


def test_reset_signs_out_every_other_session_and_clears_lockout(app, member, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LOCKOUT_THRESHOLD", 2)
    laptop = app.test_client()
    assert log_in(laptop, member, factories.PASSWORD).status_code == 302
    assert laptop.get("/account").status_code == 200
    attacker = app.test_client()
    log_in(attacker, member, "Wrong-password-1")
    assert "Too many failed attempts" in text(log_in(attacker, member, "Wrong-password-1"))

    phone = app.test_client()
    ask_for_link(phone, member)
    assert choose(phone, reset_path(app, member)).status_code == 302
    assert phone.get("/account").status_code == 200
    assert laptop.get("/account").status_code == 302  # signed out: back to the login page
    with app.app_context():
        assert db.session.scalar(select(LoginThrottle).where(LoginThrottle.email == member)) is None
    assert log_in(app.test_client(), member, NEW_PASSWORD).status_code == 302


def test_password_change_on_the_account_page_also_signs_out_other_sessions(app, member):
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        assert log_in(client, member, factories.PASSWORD).status_code == 302
    changed = post_form(phone, "/account/password", {
        "current_password": factories.PASSWORD, "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert changed.status_code == 302
    assert phone.get("/account").status_code == 200
    assert laptop.get("/account").status_code == 302
