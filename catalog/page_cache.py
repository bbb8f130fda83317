"""The catalogue version and the whole-page cache for visitors who are not logged in.

**Catalogue version.** One row (``catalog_version``, id 1) holds a counter. It is bumped in the
same transaction as every change that a public catalogue page shows, so a committed change and
its new version become visible together, in every process:

- explicitly by ``catalog/search/outbox.py`` (every listing change that reaches search);
- by two session events, for everything else: a flush that inserts, deletes or changes a
  listing, package, category, organisation (profile, verification, suspension, credibility),
  review or credibility snapshot, and an ORM ``update()``/``delete()``/``insert()`` statement
  on those tables (sales counts on completion, review publication, credibility recompute).
  Counters no public page shows (``view_count``, ``favourite_count``) do not bump it, so a
  product page view does not empty every cache.

The increment itself runs as part of the commit (the flag is set by the changes, the UPDATE
is issued by ``before_commit``), so it commits or rolls back with them and holds the row lock
only for the commit. A rolled-back change leaves at worst one needless increment.

A request reads the version once (one single-row SELECT) *before* it reads anything else, so
whatever it renders is at least as new as the version it files the page under. When the row is
missing (a wiped database) nothing is cached, and the next bump starts the counter at a random
value so a recreated row never repeats an old version.

**Page cache.** ``@cached_for_visitors()`` on a GET view (home, category, product, institution
directory and profile, search) serves the rendered HTML from a per-process LRU (bounded by
``PAGE_CACHE_MAX_BYTES``) when the visitor is not logged in, the session holds no flash
messages and no comparison picks, and the request is not an htmx partial. The key is the
database, host, script root, full path with query string, the catalogue version and (search)
the search index generation. The page is stored split at its CSRF token and joined with the visitor's own
token on every hit. Logged-in viewers, carts and checkout are never
served from it. Responses of these views carry ``Cache-Control: private, no-store`` (each page
holds the visitor's CSRF token; no shared cache may keep it).
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import current_app, g, has_request_context, make_response, request, session
from flask_login import current_user
from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from catalog.compare import SESSION_KEY
from catalog.models import (
    CatalogVersion,
    Category,
    Package,
    Product,
    Review,
)
from marketplace.database import db
from marketplace.i18n import current_locale
from marketplace.models import Organisation
from providers.models import CredibilitySnapshot

VERSION_ROW = 1
CACHE_HEADER = "X-Page-Cache"
CHANGED = "catalogue_changed"  # session.info flag: this transaction changed the catalogue
NO_STORE = "private, no-store"

# Outbox rows bump explicitly when queued (search_outbox.enqueue); the drain deleting them
# changes no page (the search index generation is part of a search page's key).
WATCHED_CLASSES = (Product, Package, Category, Organisation, Review, CredibilitySnapshot)
WATCHED_TABLES = frozenset(cls.__tablename__ for cls in WATCHED_CLASSES)
# Columns that change without changing any public page (counters shown only to the
# institution, and ``updated_at`` set to itself by those counter updates).
UNSHOWN_COLUMNS = frozenset({"view_count", "favourite_count", "updated_at", "id"})

_version_table = CatalogVersion.__table__


# --------------------------------------------------------------------------- version

_VERSION_QUERY = select(_version_table.c.version).where(_version_table.c.id == VERSION_ROW)


def read_version(session: Session) -> int | None:
    """The current catalogue version, None when the row is missing (nothing is cached).
    A Core statement on the session's connection: a third of the cost of an ORM select."""
    return session.connection().execute(_VERSION_QUERY).scalar()


def bump(session: Session) -> None:
    """Mark the catalogue changed: the version goes up when this transaction commits.

    The UPDATE runs in the commit itself (``before_commit``), so the row is locked only for
    the moment of the commit, not for the whole of a long transaction that changed a listing
    early on (PostgreSQL would make every other catalogue change wait for it)."""
    session.info[CHANGED] = True


def _increment(session: Session) -> None:
    connection = session.connection()
    result = connection.execute(
        update(_version_table).where(_version_table.c.id == VERSION_ROW)
        .values(version=_version_table.c.version + 1))
    if result.rowcount == 0:
        # Only on a database without the row (the migration inserts it): a random start so a
        # process that cached pages of the old rows never meets the same number again.
        connection.execute(_version_table.insert().values(
            id=VERSION_ROW, version=secrets.randbits(52)))


def start_new_era(session: Session) -> int:
    """Jump the version to a fresh random number, e.g. after a restore put an older counter
    back: running processes may hold pages filed under that older number, and a plain
    increment could meet it again. Commits."""
    version = secrets.randbits(52)
    result = session.execute(update(_version_table).where(_version_table.c.id == VERSION_ROW)
                             .values(version=version))
    if result.rowcount == 0:
        session.execute(_version_table.insert().values(id=VERSION_ROW, version=version))
    session.commit()
    return version


@event.listens_for(Session, "before_commit")
def _increment_on_commit(session):
    if session.new or session.dirty or session.deleted:
        session.flush()  # commit flushes after this hook; changes must be seen first
    if session.info.pop(CHANGED, False):
        _increment(session)


def request_version() -> int | None:
    """The version for this request, read once (the first thing the request reads). Kept on
    the request object, not ``g``: an application context may outlive one request."""
    if not has_request_context():
        return read_version(db.session)
    if not hasattr(request, "catalogue_version"):
        request.catalogue_version = read_version(db.session)
    return request.catalogue_version


def _changed_columns(obj) -> set[str]:
    state = inspect(obj)
    return {attr.key for attr in state.attrs if attr.history.has_changes()}


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session, _context, _instances):
    for obj in session.new | session.deleted:
        if isinstance(obj, WATCHED_CLASSES):
            bump(session)
            return
    for obj in session.dirty:
        if isinstance(obj, WATCHED_CLASSES) and _changed_columns(obj) - UNSHOWN_COLUMNS:
            bump(session)
            return


def _statement_columns(state) -> set[str]:
    names: set[str] = set()
    values = getattr(state.statement, "_values", None) or {}
    for key in values:
        names.add(getattr(key, "key", None) or getattr(key, "name", None) or str(key))
    params = state.parameters
    for row in params if isinstance(params, list | tuple) else [params or {}]:
        names.update(str(key) for key in row)
    return names


@event.listens_for(Session, "do_orm_execute")
def _bump_on_statement(state):
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in WATCHED_TABLES:
        return
    if state.is_update:
        columns = _statement_columns(state)
        if columns and not columns - UNSHOWN_COLUMNS:
            return
    bump(state.session)


# --------------------------------------------------------------------------- values by version

def by_version(name: str, compute: Callable[[], object]):
    """``compute()`` once per catalogue version in this process (e.g. the category counts).
    The value is shared by every request: return plain data, not ORM objects."""
    version = request_version()
    if version is None:
        return compute()
    values = _caches().values
    cached = values.get(name)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = compute()
    values[name] = (version, value)  # one dict assignment: atomic under threads
    return value


# --------------------------------------------------------------------------- page cache

class PageCache:
    """Rendered pages by key, least recently used dropped beyond ``max_bytes``. A page is kept
    as its UTF-8 bytes split where the CSRF token was, ready to be joined with another."""

    def __init__(self):
        self._entries: OrderedDict[tuple, list[bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.version: int | None = None

    def get(self, key: tuple) -> list[bytes] | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: tuple, body: list[bytes], version: int, max_bytes: int) -> None:
        size = _size(body)
        if size > max_bytes:
            return
        with self._lock:
            if version != self.version:
                # A new catalogue version: every entry filed under an older one is dead.
                self._entries.clear()
                self._size = 0
                self.version = version
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= _size(old)
            self._entries[key] = body
            self._size += size
            while self._size > max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self._size -= _size(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)


def _size(parts: list[bytes]) -> int:
    return sum(len(part) for part in parts)


class _Caches:
    def __init__(self):
        self.pages = PageCache()
        self.values: dict[str, tuple[int, object]] = {}


def _caches() -> _Caches:
    """This application's caches (one per ``create_app``, i.e. per worker process)."""
    caches = current_app.extensions.get("page_cache")
    if caches is None:
        caches = current_app.extensions.setdefault("page_cache", _Caches())
    return caches


def pages() -> PageCache:
    return _caches().pages


def _session_is_plain() -> bool:
    """No flash messages waiting and no comparison picks: nothing of this visitor's own
    (besides the CSRF token) is on the page."""
    return not session.get("_flashes") and not session.get(SESSION_KEY)


def _visitor_key(extra: Callable[[], object] | None) -> tuple | None:
    if not current_app.config.get("PAGE_CACHE_MAX_BYTES"):
        return None
    if request.method != "GET" or request.headers.get("HX-Request"):
        return None
    if current_user.is_authenticated or not _session_is_plain():
        return None
    version = request_version()
    if version is None:
        return None
    return (request.endpoint, request.host, request.script_root, request.full_path, version,
            extra() if extra else None, current_locale())


def _csrf_field() -> str:
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")


def _store(key: tuple, response) -> str:
    if (response.status_code != 200 or response.mimetype != "text/html"
            or response.direct_passthrough or current_user.is_authenticated
            or not _session_is_plain()):
        return "bypass"
    body = response.get_data()
    token = g.get(_csrf_field())
    parts = body.split(token.encode()) if token else [body]
    pages().put(key, parts, key[4], int(current_app.config["PAGE_CACHE_MAX_BYTES"]))
    return "miss"


def _hit(parts: list[bytes]):
    from flask_wtf.csrf import generate_csrf

    body = generate_csrf().encode().join(parts) if len(parts) > 1 else parts[0]
    response = current_app.response_class(body, mimetype="text/html")
    response.headers[CACHE_HEADER] = "hit"
    return response


def cached_for_visitors(extra_key: Callable[[], object] | None = None,
                        on_hit: Callable[..., None] | None = None):
    """Serve the view's page from the cache for visitors who are not logged in.

    ``extra_key()`` adds anything else the page depends on (the search index generation);
    ``on_hit(**view_args)`` runs on a cache hit for side effects the view would have had (a
    product page counts the view)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            key = _visitor_key(extra_key)
            if key is not None:
                body = pages().get(key)
                if body is not None:
                    if on_hit is not None:
                        on_hit(**kwargs)
                    return _no_store(_hit(body))
            response = make_response(view(**kwargs))
            response.headers[CACHE_HEADER] = "bypass" if key is None else _store(key, response)
            return _no_store(response)

        return wrapper

    return decorator


def _no_store(response):
    response.headers.setdefault("Cache-Control", NO_STORE)
    return response
