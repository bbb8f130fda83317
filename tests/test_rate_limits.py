"""Rate limits (Flask-Limiter, per client address) on login, sign-up, password reset and
search: they kick in, answer with a page that looks like the site (JSON for htmx and API
clients), and recover when the window has passed (frozen clock: time-machine drives the
limiter's memory store, which reads time.time())."""

import json
from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from conftest import csrf_token

from marketplace.security import limiter

START = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def limits_on(app, monkeypatch):
    """Rate limits on (they are off in tests, where every client is 127.0.0.1), with small
    budgets so a test needs few requests, and fresh counters."""
    monkeypatch.setitem(app.config, "RATELIMIT_ON", True)
    limiter.reset()
    yield
    limiter.reset()


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def post_login(client, token, email="someone@example.com", **headers):
    """A login post that counts against the limit; without a password it is refused by the
    form before any hashing, which keeps these tests fast."""
    return client.post("/login", data={"csrf_token": token, "email": email, "password": ""},
                       headers=headers)


def test_login_posts_are_limited_then_recover_after_the_window(app, client, limits_on, clock):
    token = csrf_token(client, "/login")
    # Different addresses each time: the per-address lockout is not what stops them.
    for n in range(10):
        response = post_login(client, token, f"guess{n}@example.com")
        assert response.status_code == 200, n
    blocked = post_login(client, token, "guess10@example.com")
    assert blocked.status_code == 429
    page = text(blocked)
    assert "Slow down" in page and "Too many attempts from your network" in page
    assert "wait 60 seconds" in page
    assert 'class="navbar' in page  # the site's own layout
    assert int(blocked.headers["Retry-After"]) in (60, 61)  # Flask-Limiter rounds up
    assert client.get("/login").status_code == 200  # reading the form is free

    clock.shift(30)
    assert post_login(client, token, "guess11@example.com").status_code == 429
    clock.shift(31)
    assert post_login(client, token, "guess12@example.com").status_code == 200


def test_hourly_login_budget_also_applies(app, client, limits_on, clock, monkeypatch):
    token = csrf_token(client, "/login")
    for minute in range(6):
        for n in range(10):
            assert post_login(client, token, f"m{minute}n{n}@example.com").status_code == 200
        clock.shift(61)
    assert post_login(client, token, "over@example.com").status_code == 429
    clock.shift(3600)
    assert post_login(client, token, "later@example.com").status_code == 200


def test_signup_budget_is_shared_by_both_sign_up_forms(app, client, limits_on, clock):
    token = csrf_token(client, "/signup/enterprise")
    for n in range(5):
        path = "/signup/enterprise" if n % 2 else "/signup/provider"
        assert client.post(path, data={"csrf_token": token}).status_code == 200
    assert client.post("/signup/provider", data={"csrf_token": token}).status_code == 429
    assert client.post("/signup/enterprise", data={"csrf_token": token}).status_code == 429
    assert client.get("/signup/enterprise").status_code == 200
    clock.shift(61)
    assert client.post("/signup/enterprise", data={"csrf_token": token}).status_code == 200


def test_password_reset_requests_are_limited(app, client, limits_on, clock):
    token = csrf_token(client, "/password/forgot")
    for n in range(5):
        response = client.post("/password/forgot", data={"csrf_token": token,
                                                         "email": f"a{n}@example.com"})
        assert response.status_code == 302
    blocked = client.post("/password/forgot", data={"csrf_token": token, "email": "b@example.com"})
    assert blocked.status_code == 429 and "Slow down" in text(blocked)
    clock.shift(61)
    assert client.post("/password/forgot", data={"csrf_token": token,
                                                 "email": "c@example.com"}).status_code == 302


def test_search_is_limited_generously(app, client, limits_on, clock, monkeypatch):
    for n in range(120):
        assert client.get(f"/search?q=patent{n % 3}").status_code == 200, n
    assert client.get("/search?q=patent").status_code == 429
    assert client.get("/").status_code == 200  # other pages are not limited
    clock.shift(61)
    assert client.get("/search?q=patent").status_code == 200


def test_htmx_and_api_clients_get_json(app, client, limits_on, clock):
    token = csrf_token(client, "/login")
    for n in range(10):
        post_login(client, token, f"x{n}@example.com")
    for headers in ({"HX-Request": "true"}, {"Accept": "application/json"}):
        response = post_login(client, token, **headers)
        assert response.status_code == 429
        assert response.mimetype == "application/json"
        body = json.loads(response.get_data(as_text=True))
        assert body["error"] == "too_many_requests" and body["retry_after"] == 60
        assert "wait 60 seconds" in body["message"]


def test_limits_are_per_client_address(app, client, limits_on, clock):
    token = csrf_token(client, "/login")
    for n in range(11):
        post_login(client, token, f"y{n}@example.com")
    assert post_login(client, token).status_code == 429
    other = app.test_client()
    other_token = csrf_token(other, "/login")
    response = other.post("/login", data={"csrf_token": other_token, "email": "z@example.com",
                                          "password": "x"},
                          environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert response.status_code == 200


def test_limits_can_be_configured(app, client, limits_on, clock, monkeypatch):
    from marketplace.config import load_config

    monkeypatch.setenv("RATELIMIT_LOGIN", "3 per minute")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("RATELIMIT_ENABLED", "0")
    config = load_config()
    assert config["RATELIMIT_LOGIN"] == "3 per minute"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    assert config["RATELIMIT_ON"] is False
    monkeypatch.delenv("RATELIMIT_ENABLED")
    assert load_config()["RATELIMIT_ON"] is None  # on, except in tests


@pytest.mark.parametrize(("proxies", "seen"), [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(proxies, seen):
    from flask import Flask
    from flask_limiter.util import get_remote_address

    from marketplace.security import trust_proxies

    tiny = Flask(__name__)
    tiny.config["TRUSTED_PROXIES"] = proxies
    tiny.add_url_rule("/who", "who", lambda: get_remote_address())
    trust_proxies(tiny)
    response = tiny.test_client().get("/who", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.get_data(as_text=True) == seen


def test_password_changes_draw_on_the_login_budget(app, client, session, limits_on, clock):
    """Changing the password checks the current one; with a stolen session it must not be
    an unlimited way to guess it."""
    import factories
    import order_support

    user = factories.user(session)
    session.commit()
    order_support.login(client, user)  # one of the ten login-budget posts this minute
    token = csrf_token(client, "/account")
    guess = {"csrf_token": token, "current_password": "wrong-guess-1",
             "new_password": "Another-pass-2026", "confirm": "Another-pass-2026"}
    for n in range(9):
        response = client.post("/account/password", data=guess)
        assert response.status_code == 200, n
        assert "current password" in text(response).lower()
    blocked = client.post("/account/password", data=guess)
    assert blocked.status_code == 429 and "Slow down" in text(blocked)
    clock.shift(61)
    assert client.post("/account/password", data=guess).status_code == 200
