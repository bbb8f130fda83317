"""Configuration comes from the environment, with safe defaults for a laptop demo."""

import re

import pytest

from marketplace.config import INSTANCE_DIR, ROOT, load_config

CONFIG_VARIABLES = (
    "SECRET_KEY", "DATABASE_URL", "CURRENCY", "HTTPS", "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "SEARCH_INDEX_DIR",
    "UPLOAD_DIR", "MAIL_BACKEND", "PAGE_SIZE", "MAX_UPLOAD_BYTES", "SITE_URL",
)


@pytest.fixture
def env(monkeypatch):
    """A process environment without any of our settings (the PostgreSQL run sets some)."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_suit_a_local_demo(env):
    config = load_config()
    assert config["DATABASE_URL"] == f"sqlite:///{INSTANCE_DIR / 'supermarket.sqlite'}"
    assert config["CURRENCY"] == "CNY"
    assert config["SEARCH_INDEX_DIR"] == str(INSTANCE_DIR / "search-index")
    assert config["UPLOAD_DIR"] == str(INSTANCE_DIR / "uploads")
    assert config["PAGE_SIZE"] == 24
    # Five order files of MAX_DOCUMENT_BYTES (5 MiB) plus 1 MiB for fields and framing.
    assert config["MAX_CONTENT_LENGTH"] == 26 * 1024 * 1024
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["PREFERRED_URL_SCHEME"] == "http"
    assert config["SITE_URL"] == "http://127.0.0.1:5000"


def test_settings_are_read_from_the_environment(env):
    env.setenv("DATABASE_URL", "postgresql+psycopg://shop:pw@db.internal:5432/shop")
    env.setenv("SECRET_KEY", "from-the-environment")
    env.setenv("CURRENCY", "EUR")
    env.setenv("PAGE_SIZE", "12")
    env.setenv("MAX_UPLOAD_BYTES", "2048")
    env.setenv("SEARCH_INDEX_DIR", "/srv/search")
    env.setenv("UPLOAD_DIR", "/srv/uploads")
    env.setenv("STRIPE_API_BASE", "http://127.0.0.1:8420")
    config = load_config()
    assert config["DATABASE_URL"] == "postgresql+psycopg://shop:pw@db.internal:5432/shop"
    assert config["SECRET_KEY"] == "from-the-environment"
    assert config["CURRENCY"] == "EUR"
    assert config["PAGE_SIZE"] == 12
    assert config["MAX_CONTENT_LENGTH"] == 2048
    assert config["SEARCH_INDEX_DIR"] == "/srv/search"
    assert config["UPLOAD_DIR"] == "/srv/uploads"
    assert config["STRIPE_API_BASE"] == "http://127.0.0.1:8420"


def test_empty_values_fall_back_to_defaults(env):
    env.setenv("DATABASE_URL", "")
    env.setenv("SECRET_KEY", "")
    env.setenv("PAGE_SIZE", "")
    config = load_config()
    assert config["DATABASE_URL"].startswith("sqlite:///")
    assert len(config["SECRET_KEY"]) >= 32
    assert config["PAGE_SIZE"] == 24


def test_without_secret_key_each_process_gets_a_random_one(env):
    first, second = load_config()["SECRET_KEY"], load_config()["SECRET_KEY"]
    assert first != second
    assert len(first) >= 64  # 32 random bytes, hex encoded


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_https_makes_cookies_secure(env, value):
    env.setenv("HTTPS", value)
    config = load_config()
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["PREFERRED_URL_SCHEME"] == "https"


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_https_off_values(env, value):
    env.setenv("HTTPS", value)
    assert load_config()["SESSION_COOKIE_SECURE"] is False


def test_cookies_are_http_only_and_same_site_lax(env):
    config = load_config()
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"


def session_cookie_header(client) -> str:
    response = client.get("/")
    cookies = [value for value in response.headers.getlist("Set-Cookie")
               if value.startswith("session=")]
    assert cookies, "the home page should start a session (it carries a CSRF token)"
    return cookies[0]


def test_browser_receives_a_http_only_lax_session_cookie(client):
    header = session_cookie_header(client)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


def test_behind_https_the_browser_receives_a_secure_session_cookie(app, env):
    env.setenv("HTTPS", "1")
    https_config = load_config()
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "PREFERRED_URL_SCHEME"):
        env.setitem(app.config, key, https_config[key])
    header = session_cookie_header(app.test_client())
    assert "Secure" in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_every_setting_is_documented_in_the_operations_guide():
    source = (ROOT / "marketplace" / "config.py").read_text(encoding="utf-8")
    variables = set(re.findall(r'(?:environ\.get|_int|_bool)\("([A-Z][A-Z0-9_]+)"', source))
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    assert {"DATABASE_URL", "SECRET_KEY", "HTTPS"} <= variables
    assert sorted(variables - documented) == [], "add these to docs/operations.md, Configuration"


def test_the_suite_never_takes_the_production_database_url(monkeypatch):
    """The suite drops the schema it runs on: an exported DATABASE_URL must not reach it, and
    a TEST_DATABASE_URL naming a database that is not a _test one is refused."""
    from conftest import _test_database_url

    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://shop:pw@db.internal/shop")
    assert _test_database_url() is None  # a temporary SQLite file, not the shop's database

    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://shop:pw@db.internal/shop")
    with pytest.raises(pytest.UsageError, match="ends in _test"):
        _test_database_url()

    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://shop:pw@127.0.0.1/shop_test")
    assert _test_database_url().endswith("/shop_test")


@pytest.mark.parametrize("https, starts", [(None, False), ("", False), ("0", True), ("1", True)])
def test_the_production_entry_point_wants_https_said_explicitly(tmp_path, https, starts):
    """wsgi.py refuses to start until HTTPS is set one way or the other: a forgotten setting
    would otherwise serve session cookies without Secure and no HSTS."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HTTPS", "DATABASE_URL")}
    env.update(SECRET_KEY="k" * 64, INSTANCE_DIR=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path / 'wsgi.sqlite'}",
               SEARCH_INDEX_DIR=str(tmp_path / "index"), UPLOAD_DIR=str(tmp_path / "uploads"))
    if https is not None:
        env["HTTPS"] = https
    probe = "import wsgi; print(wsgi.app.config['SESSION_COOKIE_SECURE'])"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if starts:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == str(https == "1")
    else:
        assert done.returncode != 0 and "Set HTTPS=1" in done.stderr
