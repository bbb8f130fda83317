"""Account lockout with back-off after repeated failed logins (frozen clock: time-machine).

The lockout is kept per email address typed, so an unknown address behaves exactly like a
real one: the page never tells a visitor whether an account exists."""

import re
from datetime import UTC, datetime
from html import unescape

import factories
import pytest
import time_machine
from conftest import post_form
from sqlalchemy import func, select

from marketplace.accounts_service import LockoutPolicy
from marketplace.database import db
from marketplace.models import AuditLog, LoginThrottle

START = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
LOCKED = "Too many failed attempts for this email address."
WRONG = "Email or password is incorrect."


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def make_user(app, **fields) -> str:
    with app.app_context():
        user = factories.user(db.session, factories.enterprise(db.session), **fields)
        db.session.commit()
        return user.email


def log_in(client, email, password=factories.PASSWORD):
    return post_form(client, "/login", {"email": email, "password": password})


def logged_in(client) -> bool:
    return client.get("/account").status_code == 200


def fail(client, email, times: int):
    responses = [log_in(client, email, "Wrong-password-1") for _ in range(times)]
    return responses[-1]


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def quick_lockout(app, monkeypatch):
    """Three failures lock (the back-off tests need many rounds; each login hashes)."""
    monkeypatch.setitem(app.config, "LOGIN_LOCKOUT_THRESHOLD", 3)


def test_five_failures_lock_the_account_even_for_the_right_password_then_it_recovers(
        app, client, clock):
    email = make_user(app)
    for _ in range(4):
        response = log_in(client, email, "Wrong-password-1")
        assert WRONG in text(response) and LOCKED not in text(response)
    fifth = log_in(client, email, "Wrong-password-1")
    assert LOCKED in text(fifth) and "wait 60 seconds" in text(fifth)
    assert 'data-testid="forgot-password-link"' in text(fifth)

    clock.shift(30)
    still = log_in(client, email)  # the right password does not help while locked
    assert LOCKED in text(still) and "wait 30 seconds" in text(still)
    assert not logged_in(client)

    clock.shift(31)
    response = log_in(client, email)
    assert response.status_code == 302
    assert logged_in(client)
    with app.app_context():  # success forgets the failures
        assert db.session.scalar(select(func.count()).select_from(LoginThrottle)) == 0


def test_each_further_lockout_doubles_up_to_the_cap(app, client, clock, quick_lockout,
                                                    monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LOCKOUT_MAX_SECONDS", 240)
    email = make_user(app)
    for expected in (60, 120, 240, 240):
        response = fail(client, email, 3)
        assert LOCKED in text(response)
        wait = {60: "60 seconds", 120: "2 minutes", 240: "4 minutes"}[expected]
        assert f"wait {wait}" in text(response), expected
        clock.shift(expected - 1)
        assert LOCKED in text(log_in(client, email)), f"still locked just before {expected}s"
        clock.shift(2)
    # After the last lockout the right password works and resets the back-off.
    assert log_in(client, email).status_code == 302
    assert "wait 60 seconds" in text(fail(app.test_client(), email, 3))


def test_successful_login_resets_the_count(app, client, clock, quick_lockout):
    email = make_user(app)
    fail(client, email, 2)
    assert log_in(client, email).status_code == 302
    other = app.test_client()
    response = fail(other, email, 2)
    assert WRONG in text(response) and LOCKED not in text(response)


def test_a_day_without_failures_forgets_the_back_off(app, client, clock, quick_lockout):
    email = make_user(app)
    fail(client, email, 3)
    clock.shift(61)
    assert "wait 2 minutes" in text(fail(client, email, 3))
    clock.shift(24 * 3600 + 10)
    assert "wait 60 seconds" in text(fail(client, email, 3))


def test_unknown_address_is_locked_the_same_way_so_nothing_reveals_an_account(
        app, client, clock, quick_lockout):
    email = make_user(app)
    real = fail(client, email, 3)
    unknown = fail(app.test_client(), "nobody-here@example.com", 3)
    assert LOCKED in text(real) and LOCKED in text(unknown)
    strip = re.compile(r'(content|value)="[^"]*"')
    assert strip.sub("", real.get_data(as_text=True)) == strip.sub("", unknown.get_data(as_text=True))


def test_lockout_is_per_address_not_per_visitor(app, client, clock, quick_lockout):
    victim, other = make_user(app), make_user(app)
    fail(client, victim, 3)
    assert LOCKED in text(log_in(app.test_client(), victim))  # from anywhere
    assert log_in(app.test_client(), other).status_code == 302  # others unaffected


def test_policy_doubles_and_caps():
    policy = LockoutPolicy(threshold=5, base_seconds=60, max_seconds=3600)
    assert [policy.lock_seconds(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert policy.lock_seconds(10_000) == 3600


# ------------------------------------------------------------------ staff view and clearing

def _staff_client(app):
    with app.app_context():
        staff = factories.user(db.session, role="staff")
        db.session.commit()
        email = staff.email
    client = app.test_client()
    assert log_in(client, email).status_code == 302
    return client


def test_staff_see_lockouts_and_clear_one_with_a_reason_in_the_audit_log(
        app, client, clock, quick_lockout):
    email = make_user(app)
    fail(client, email, 3)
    fail(app.test_client(), "ghost@example.com", 1)
    staff = _staff_client(app)
    page = text(staff.get("/staff/lockouts"))
    assert email in page and "ghost@example.com" in page and "no account" in page
    assert "locked until 24 Nov 2026, 17:01" in page  # Beijing time

    with app.app_context():
        throttle_id = db.session.scalar(select(LoginThrottle.id).where(LoginThrottle.email == email))
    refused = post_form(staff, f"/staff/lockouts/{throttle_id}/clear", {"reason": ""},
                        follow_redirects=True)
    assert "Say why the lockout is lifted" in text(refused)
    done = post_form(staff, f"/staff/lockouts/{throttle_id}/clear",
                     {"reason": "Owner called, identity checked"}, follow_redirects=True)
    assert f"Failed logins of {email} cleared" in text(done)
    assert email not in text(staff.get("/staff/lockouts")).split("lockouts-table")[-1]
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "login_lockout.cleared"))
        assert entry.reason == "Owner called, identity checked"
        assert entry.details["email"] == email and entry.details["lockouts"] == 1
    assert log_in(app.test_client(), email).status_code == 302  # at once, no waiting
    again = post_form(staff, f"/staff/lockouts/{throttle_id}/clear", {"reason": "again"},
                      follow_redirects=True)
    assert "already been cleared" in text(again)


def test_lockout_page_is_staff_only(app, client):
    assert client.get("/staff/lockouts").status_code == 302  # visitors log in first
    email = make_user(app)
    log_in(client, email)
    assert client.get("/staff/lockouts").status_code == 403
    assert post_form(client, "/staff/lockouts/1/clear", {"reason": "x"}).status_code == 403


def test_empty_lockout_list_says_so(app):
    staff = _staff_client(app)
    assert "No failed logins right now." in text(staff.get("/staff/lockouts"))


def test_lockout_list_pages_through_many_addresses(app):
    with app.app_context():
        for n in range(53):
            db.session.add(LoginThrottle(email=f"bot{n:02d}@spam.example", failures=1, lockouts=0,
                                         last_failure_at=START.replace(minute=n)))
        db.session.commit()
    staff = _staff_client(app)
    first = text(staff.get("/staff/lockouts"))
    assert "Showing 1–50 of 53 addresses" in first
    assert "bot52@spam.example" in first and "bot02@spam.example" not in first
    second = text(staff.get("/staff/lockouts?page=2"))
    assert "Showing 51–53 of 53 addresses" in second and "bot00@spam.example" in second
