"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL when
TEST_DATABASE_URL points at one), a Flask app and client, and helpers for forms with CSRF
tokens.

Every test starts from empty tables plus the seeded category tree.
"""

import os
import re
import threading
from pathlib import Path

import pytest
from pseudo_locale import PSEUDO_LOCALE
from sqlalchemy import create_engine, make_url, text

from catalog.categories import seed_categories
from marketplace import create_app
from marketplace.database import Base, db
from marketplace.migrate import upgrade

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _reset_schema(url: str) -> None:
    """Start the session from an empty database so migrations run from scratch."""
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def _test_database_url() -> str | None:
    """TEST_DATABASE_URL, never DATABASE_URL: the suite drops the schema of the database it
    is given, so an exported production DATABASE_URL must not reach it by accident. The
    database name must end in ``_test`` for the same reason."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url and not url.startswith("sqlite"):
        name = make_url(url).database or ""
        if not name.endswith("_test"):
            raise pytest.UsageError(
                f"TEST_DATABASE_URL names the database {name!r}; the tests drop its schema, "
                "so they only run against a database whose name ends in _test.")
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = _test_database_url()
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    _reset_schema(url)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def translations_dir(tmp_path_factory):
    """The committed catalogues compiled afresh (the app loads only .mo files), plus the
    test-only pseudo-locale (tests/pseudo_locale.py)."""
    from pseudo_locale import compile_catalogues

    return compile_catalogues(tmp_path_factory.mktemp("translations"))


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory, translations_dir):
    instance = tmp_path_factory.mktemp("instance")
    application = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SEARCH_INDEX_DIR": str(instance / "search-index"),
        "UPLOAD_DIR": str(instance / "uploads"),
        "JOB_LOCK_DIR": str(instance / "locks"),
        "MAIL_BACKEND": "outbox",
        # Not the test client's "localhost": emails must carry SITE_URL, not the Host header.
        "SITE_URL": "https://supermarket.example.cn",
        # Most tests pin the English texts; tests/test_i18n.py checks the Chinese default.
        "DEFAULT_LOCALE": "en",
        "TRANSLATIONS_DIR": str(translations_dir),
        "BABEL_TRANSLATION_DIRECTORIES": str(translations_dir),
        "EXTRA_LOCALES": [PSEUDO_LOCALE],
        # Every listing view written at once (tests read the count after each page);
        # tests/test_page_cache.py checks the batched writes of production.
        "VIEW_COUNT_INTERVAL": 0,
        "SEARCH_ANALYTICS_INTERVAL": 0,  # the same for search analytics
    })
    return application


@pytest.fixture(scope="session")
def is_postgres(database_url):
    return database_url.startswith("postgresql")


def _wipe(engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture(autouse=True)
def clean_database(app):
    """Empty tables and the seeded category tree before every test."""
    _wipe(db.engine)
    with app.app_context():
        seed_categories(db.session)
        db.session.commit()
    yield
    db.session.remove()


@pytest.fixture
def session(app):
    """A database session inside an application context, for service-level tests."""
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, path: str = "/") -> str:
    """The CSRF token a browser would have after loading ``path``."""
    response = client.get(path)
    match = CSRF_META.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1)


def post_form(client, path: str, data: dict, **kwargs):
    """POST like a browser does: with the CSRF token the page would have given."""
    payload = {"csrf_token": csrf_token(client), **data}
    return client.post(path, data=payload, **kwargs)


@pytest.fixture
def live_server(app):
    """The app served on a random loopback port in a background thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "headless": True,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ],
    }


@pytest.fixture
def screenshots(request):
    """Save a full-page screenshot per step under test-artifacts/<test name>/."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    counter = {"n": 0}

    def shoot(page, step: str):
        counter["n"] += 1
        page.screenshot(path=str(folder / f"{counter['n']:02d}-{step}.png"), full_page=True)

    return shoot
