"""Security headers on every response: HTML, JSON, static files, 404, 413 and 500 pages."""

import json

import pytest

from marketplace.database import db
from marketplace.security import content_security_policy, security_headers

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


def assert_hardened(response):
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    csp = directives(response)
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'"
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_html_page(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert_hardened(response)


def test_json_response(client):
    response = client.post("/stripe/webhook", data=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert response.mimetype == "application/json"
    assert_hardened(response)


def test_static_file(client):
    response = client.get("/static/js/site.js")
    assert response.status_code == 200
    assert_hardened(response)
    response.close()


def test_not_found_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)
    assert_hardened(response)


def test_server_error_page(app, client, monkeypatch):
    def explode():
        raise RuntimeError("database on fire")

    monkeypatch.setitem(app.view_functions, "main.home", explode)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = client.get("/")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body and "database on fire" not in body
    assert_hardened(response)


def test_too_large_request_gets_a_clear_413_page(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = client.post("/login", data={"email": "a@example.com", "password": "x" * 8192})
    assert response.status_code == 413
    body = response.get_data(as_text=True)
    assert "Too large" in body and "at most 4 KB in one go" in body
    assert 'class="navbar' in body
    assert_hardened(response)
    htmx = client.post("/login", data={"password": "x" * 8192}, headers={"HX-Request": "true"})
    assert htmx.status_code == 413 and htmx.mimetype == "application/json"
    assert json.loads(htmx.get_data(as_text=True))["limit"] == 4096


def test_request_limit_fits_the_largest_upload_form(app):
    from orders.files import MAX_FILES

    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit >= MAX_FILES * app.config["MAX_DOCUMENT_BYTES"]
    assert limit >= app.config["MAX_LOGO_BYTES"]
    assert limit <= MAX_FILES * app.config["MAX_DOCUMENT_BYTES"] + 2 * 1024 * 1024


def test_signed_in_pages_and_forms_are_hardened_too(app, client):
    import factories
    from conftest import post_form

    with app.app_context():
        user = factories.user(db.session, factories.enterprise(db.session))
        db.session.commit()
        email = user.email
    response = post_form(client, "/login", {"email": email, "password": factories.PASSWORD})
    assert response.status_code == 302
    assert_hardened(response)
    assert_hardened(client.get("/account"))


def test_https_adds_hsts(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "PREFERRED_URL_SCHEME", "https")
    response = client.get("/")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize(("base", "key", "stripe_allowed"), [
    ("", "sk_test_localstripe", False),  # the placeholder: no Stripe at all
    ("http://127.0.0.1:8420", "sk_test_abc", False),  # localstripe: card form is ours
    ("", "sk_live_realkey", True),  # real Stripe: Stripe.js Elements
    ("", "sk_test_realtestkey", True),
])
def test_stripe_is_allowed_only_with_real_stripe_keys(base, key, stripe_allowed):
    config = {"STRIPE_API_BASE": base, "STRIPE_SECRET_KEY": key}
    policy = content_security_policy(config)
    assert ("https://js.stripe.com" in policy) is stripe_allowed
    assert "unsafe-inline" not in policy
    assert "Strict-Transport-Security" not in security_headers(config)


def test_no_template_has_inline_script_handlers_or_styles():
    """What the CSP forbids must not be in any template (the browser tests check pages too)."""
    import re
    from pathlib import Path

    from marketplace.config import ROOT

    offenders = []
    patterns = [
        re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
        re.compile(r"\son[a-z]+\s*=", re.I),
        re.compile(r"javascript:", re.I),
        re.compile(r"<style\b", re.I),
        re.compile(r"\sstyle\s*=", re.I),
    ]
    for path in Path(ROOT, "templates").rglob("*.html"):
        source = path.read_text(encoding="utf-8")
        source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)  # comments
        for pattern in patterns:
            for match in pattern.finditer(source):
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert offenders == []

