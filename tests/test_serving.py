"""Serving: health check, request ids and logs, fingerprinted static files, gzip, 500 page."""

import gzip
import json
import logging
import re

import factories
import pytest
from order_support import login
from sqlalchemy import create_engine

from catalog.search.index import open_index
from catalog.search.pool import forget_index
from marketplace.database import db
from marketplace.serving import IMMUTABLE, REQUEST_LOGGER

STATIC_LINK = re.compile(r'/static/css/site\.css\?v=([0-9a-f]{16})"')


@pytest.fixture
def request_log():
    """The JSON objects logged on the request logger during the test."""
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logger = logging.getLogger(REQUEST_LOGGER)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.fixture
def index_dir(app):
    path = app.config["SEARCH_INDEX_DIR"]
    open_index(path)  # an empty but valid index
    return path


# --------------------------------------------------------------------------- /healthz

def test_healthz_reports_database_and_index(client, index_dir, session):
    factories.product(session)
    session.commit()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["search_index"] == "ok"
    assert isinstance(body["documents"], int)
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_fails_when_the_index_is_missing(app, client, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "never-built"))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["search_index"].startswith("failed")
    assert not (tmp_path / "never-built").exists(), "a health check must not create an index"


def test_healthz_fails_when_the_index_is_broken(app, client, tmp_path, monkeypatch):
    broken = tmp_path / "broken-index"
    open_index(broken)
    for toc in broken.glob("*.toc"):
        toc.write_bytes(b"not a whoosh table of contents")
    forget_index(broken)
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(broken))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["search_index"].startswith("failed")
    forget_index(broken)


def test_healthz_fails_when_the_database_is_unreachable(client, index_dir, tmp_path):
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")
    good = db.engine
    db.session.remove()
    db.session.configure(bind=unreachable)
    try:
        response = client.get("/healthz")
    finally:
        db.session.remove()
        db.session.configure(bind=good)
        unreachable.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"].startswith("failed")
    assert body["search_index"] == "ok"
    assert client.get("/healthz").status_code == 200


# --------------------------------------------------------------------------- request logs and ids

def test_each_request_logs_one_json_line(client, request_log, session):
    buyer = factories.user(session, factories.enterprise(session))
    session.commit()
    client.get("/", headers={"X-Request-ID": "trace-42"})
    assert len(request_log) == 1
    line = request_log[0]
    assert line["method"] == "GET"
    assert line["path"] == "/"
    assert line["status"] == 200
    assert line["request_id"] == "trace-42"
    assert line["user_id"] is None
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert set(line) >= {"ts", "method", "path", "status", "duration_ms", "user_id",
                         "request_id"}

    login(client, buyer)
    request_log.clear()
    client.get("/products/999999")
    assert request_log[0]["status"] == 404
    assert request_log[0]["user_id"] == buyer.id


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/", headers={"X-Request-ID": "abc-123.def"})
    assert echoed.headers["X-Request-ID"] == "abc-123.def"

    generated = client.get("/")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    assert client.get("/").headers["X-Request-ID"] != generated.headers["X-Request-ID"]

    # A header that could forge log lines or is absurdly long is replaced.
    for bad in ("two words", "x" * 200, 'quote"inside'):
        replaced = client.get("/", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)


# --------------------------------------------------------------------------- static files

def test_pages_link_fingerprinted_static_files_cached_for_a_year(client):
    html = client.get("/").get_data(as_text=True)
    match = STATIC_LINK.search(html)
    assert match, "the home page should link site.css with its content hash"
    versioned = client.get(f"/static/css/site.css?v={match.group(1)}")
    assert versioned.status_code == 200
    assert versioned.headers["Cache-Control"] == IMMUTABLE
    # Without the current hash (e.g. fonts named inside a CSS file) the lifetime is short.
    plain = client.get("/static/css/site.css")
    assert plain.status_code == 200
    assert "immutable" not in plain.headers["Cache-Control"]
    assert "max-age=3600" in plain.headers["Cache-Control"]


def test_fingerprint_changes_when_the_file_changes(app, client, tmp_path, monkeypatch):
    folder = tmp_path / "static"
    folder.mkdir()
    asset = folder / "app.css"
    asset.write_text("body { color: black; }")
    monkeypatch.setattr(app, "static_folder", str(folder))
    monkeypatch.setattr(app.extensions["static_digests"], "folder", str(folder))

    with app.test_request_context():
        from flask import url_for

        first = url_for("static", filename="app.css")
        assert url_for("static", filename="app.css") == first
        asset.write_text("body { color: navy; }")
        second = url_for("static", filename="app.css")
    assert first != second
    assert first.split("?v=")[0] == second.split("?v=")[0] == "/static/app.css"

    fresh = client.get(second)
    assert fresh.headers["Cache-Control"] == IMMUTABLE
    assert fresh.get_data(as_text=True) == "body { color: navy; }"
    # The old URL still answers (a page cached before the deploy) but is not pinned for a year.
    stale = client.get(first)
    assert stale.status_code == 200
    assert "immutable" not in stale.headers["Cache-Control"]


def test_missing_static_file_gets_no_fingerprint(app):
    with app.test_request_context():
        from flask import url_for

        assert url_for("static", filename="css/no-such-file.css") == "/static/css/no-such-file.css"
        assert url_for("static", filename="../setup.cfg") == "/static/../setup.cfg"


# --------------------------------------------------------------------------- compression

def test_html_is_gzipped_for_clients_that_accept_it(client, session):
    factories.product(session)
    session.commit()
    plain = client.get("/")
    assert "Content-Encoding" not in plain.headers
    zipped = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    body = gzip.decompress(zipped.get_data())
    assert body.startswith(b"<!doctype html>") or body.lower().startswith(b"<!doctype html>")
    assert len(zipped.get_data()) < len(plain.get_data()) / 2


def test_stylesheets_are_gzipped_too(client):
    response = client.get("/static/vendor/bootstrap/bootstrap.min.css",
                          headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.get_data()).startswith(b"@charset")


# --------------------------------------------------------------------------- errors

def test_production_500_page_never_shows_the_exception(app, client, monkeypatch, request_log):
    def broken_view():
        raise RuntimeError("database password is hunter2")

    monkeypatch.setitem(app.config, "TESTING", False)
    monkeypatch.setitem(app.config, "SEARCH_DRAIN_IN_PROCESS", False)
    monkeypatch.setitem(app.view_functions, "main.home", broken_view)
    response = client.get("/", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong" in html
    assert "hunter2" not in html
    assert "RuntimeError" not in html
    assert "Traceback" not in html
    assert response.headers["X-Request-ID"] == "boom-1"
    assert request_log[-1]["status"] == 500


def test_hello_route_only_when_benchmarking(client):
    assert client.get("/bench/hello").status_code == 404


# --------------------------------------------------------------------------- cached fragments

def test_cached_product_cards_never_show_stale_data(client, session):
    """Cards are cached by every value they show: an edit shows on the next page view."""
    listing = factories.product(session, title="Cached card listing", prices=(500000,))
    session.commit()
    first = client.get("/c/patent-application").get_data(as_text=True)
    assert "Cached card listing" in first and "5,000" in first
    assert client.get("/c/patent-application").get_data(as_text=True) == first  # from the cache

    listing.price_from = 730000
    listing.provider.name = "Renamed Patent Office"
    session.commit()
    second = client.get("/c/patent-application").get_data(as_text=True)
    assert "7,300" in second and "5,000" not in second
    assert "Renamed Patent Office" in second


def test_cached_cards_keep_each_viewers_own_star(app, client):
    # No app context is held open here: the test client would reuse it, and its ``g``,
    # across clients, which a real server never does.
    with app.app_context():
        listing = factories.product(db.session, title="Starred listing")
        buyer = factories.user(db.session, factories.enterprise(db.session))
        other_buyer = factories.user(db.session, factories.enterprise(db.session))
        db.session.commit()
        listing_id = listing.id
    visitor_html = client.get("/c/patent-application").get_data(as_text=True)
    assert 'data-testid="favourite-login"' in visitor_html

    from conftest import post_form

    login(client, buyer)
    post_form(client, "/favourites/toggle", {"product_id": listing_id})
    member_html = client.get("/c/patent-application").get_data(as_text=True)
    assert 'data-testid="favourite-login"' not in member_html
    assert 'data-state="on"' in member_html
    token = re.search(r'name="csrf_token" value="([^"]+)"', member_html).group(1)

    other = app.test_client()
    login(other, other_buyer)
    other_html = other.get("/c/patent-application").get_data(as_text=True)
    assert 'data-state="off"' in other_html and 'data-state="on"' not in other_html
    assert token not in other_html, "one viewer's CSRF token must never reach another"


# --------------------------------------------------------------------------- secrets in logs

SECRET = "s3cr3t-Reset-Token.abc_DEF"


@pytest.fixture
def every_log(app):
    """Every record on any logger during the test, formatted, tracebacks included."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(logging.Formatter().format(record))

    handler = Collect(level=logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger(REQUEST_LOGGER), app.logger,
               logging.getLogger("marketplace.security"), logging.getLogger("marketplace.errors")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_reset_link_request_logs_the_route_not_the_token(client, request_log, every_log):
    client.get(f"/password/reset/{SECRET}")
    client.post(f"/password/reset/{SECRET}", data={"new_password": "x"})
    assert [line["path"] for line in request_log] == ["/password/reset/<token>"] * 2
    assert not any(SECRET in record for record in every_log)


def test_team_invitation_codes_and_near_misses_are_redacted_too(client, request_log, every_log):
    client.get(f"/team/join/{SECRET}")
    client.post(f"/team/join/{SECRET}/signup", data={})
    client.get(f"/password/reset/{SECRET}/")  # no such route (404): still a secret
    client.put(f"/password/reset/{SECRET}")  # 405
    paths = [line["path"] for line in request_log]
    assert paths[:2] == ["/team/join/<code>", "/team/join/<code>/signup"]
    assert [line["status"] for line in request_log[2:]] == [404, 405]
    assert all(path.startswith("/password/reset/<token>") for path in paths[2:]), paths
    assert not any(SECRET in record for record in every_log)
    client.get("/products/12345")  # other paths are logged as they are
    assert request_log[-1]["path"] == "/products/12345"


def test_an_error_on_a_secret_route_logs_no_token(app, client, monkeypatch, request_log,
                                                  every_log):
    def broken_view(token):
        raise RuntimeError("broken")

    monkeypatch.setitem(app.config, "TESTING", False)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setitem(app.config, "SEARCH_DRAIN_IN_PROCESS", False)
    monkeypatch.setitem(app.view_functions, "accounts.reset_password", broken_view)
    assert client.get(f"/password/reset/{SECRET}").status_code == 500
    assert request_log[-1]["path"] == "/password/reset/<token>"
    assert any("/password/reset/<token>" in record for record in every_log)  # it was logged
    assert not any(SECRET in record for record in every_log)


def test_a_rate_limited_reset_post_logs_no_token(app, client, monkeypatch, every_log):
    from conftest import csrf_token

    from marketplace.security import limiter

    monkeypatch.setitem(app.config, "RATELIMIT_ON", True)
    limiter.reset()
    token = csrf_token(client, "/password/forgot")
    try:
        statuses = [client.post(f"/password/reset/{SECRET}",
                                data={"csrf_token": token}).status_code for _ in range(30)]
    finally:
        limiter.reset()
    assert statuses[-1] == 429
    assert any("rate limit hit" in record for record in every_log)
    assert not any(SECRET in record for record in every_log)
