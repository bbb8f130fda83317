"""The catalogue version, what each version changed, and the whole-page cache for visitors.

**Catalogue version.** One row (``catalog_version``, id 1) holds a counter. It is bumped in the
same transaction as every change that a public catalogue page shows, so a committed change and
its new version become visible together, in every process:

- explicitly by ``catalog/search/outbox.py`` (every listing change that reaches search);
- by two session events, for everything else: a flush that inserts, deletes or changes a
  listing, package, category, organisation (profile, verification, suspension, credibility),
  review or credibility snapshot, and an ORM ``update()``/``delete()``/``insert()`` statement
  on those tables (sales counts on completion, review publication, credibility recompute).
  Counters no public page shows (``view_count``, ``favourite_count``) do not bump it, so a
  product page view does not empty every cache; nor does anything about an enterprise's
  credibility (no public page shows it).

**Scopes.** Each bump also names what changed, in a ``catalog_change`` row written with the new
version (issue 17: invalidation that follows what changed):

- ``p:<listing>`` the listing's own page and every page showing its card or search hit;
- ``o:<organisation>`` pages showing that organisation: an institution's profile, cards and
  badges, or an enterprise's anonymised line under its reviews;
- ``op:<institution>`` the list of an institution's listings (its profile);
- ``c:<category>`` the listing pages of that category (which listings, in which order);
- ``home``, ``dir`` (institution directory), ``counts`` (category counts), and ``*`` for
  every page (a category edit, synonyms, anything not narrowed down).

A listing change touches its own ``p:``, its institution's ``op:`` and its category's ``c:``
(and ``home``/``dir``/``counts`` when it appears, vanishes, moves or is featured); a
credibility change of an institution touches its ``o:``, ``op:`` and ``dir``; a credibility
recompute that changes nothing shown, or an enterprise's credibility, writes nothing.

The increment itself runs as part of the commit (the scopes are collected from the changes,
the UPDATE is issued by ``before_commit``), so it commits or rolls back with them and holds the
row lock only for the commit. A rolled-back change leaves at worst one needless increment.

A request reads the version once (one single-row SELECT) *before* it reads anything else, so
whatever it renders is at least as new as the version it files the page under. When the
version moved since this process last looked, the ``catalog_change`` rows in between name
the scopes to drop (one more SELECT); a gap in them (pruned rows, a restore that put another
counter back) drops everything. When the version row is missing (a wiped database) nothing
is cached, and the next bump starts the counter at a random value so a recreated row never
repeats an old version.

**Page cache.** ``@cached_for_visitors()`` on a GET view (home, category, product, institution
directory and profile, search) serves the rendered HTML from a per-process LRU (bounded by
``PAGE_CACHE_MAX_BYTES``) when the visitor is not logged in, the session holds no flash
messages and no comparison picks, and the request is not an htmx partial. The key is the
database, host, script root, full path with query string and (search) the search index
generation; each page is filed under the scopes it showed (``note_scopes`` from the views,
the product cards, the review lists and the cached values such as the category counts), and
dropped when a change of one of them commits. The page is stored split at its CSRF token and
joined with the visitor's own token on every hit. Logged-in viewers, carts and checkout are
never served from it. Responses of these views carry ``Cache-Control: private, no-store``
(each page holds the visitor's CSRF token; no shared cache may keep it).
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import current_app, g, has_request_context, make_response, request, session
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import delete, event, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from catalog.compare import SESSION_KEY
from catalog.models import (
    CatalogChange,
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
CREDIBILITY_COLUMNS = frozenset({"credibility_score", "credibility_level",
                                 "credibility_updated_at"})
EVERYTHING = "*"
# More scopes than this in one change: drop everything instead (one short row, one clear).
MAX_SCOPES = 400
# Keep this many versions of catalog_change rows (pruned every PRUNE_EVERY versions); a
# process further behind drops all its pages.
KEEP_CHANGES, PRUNE_EVERY = 5000, 500

_version_table = CatalogVersion.__table__
_change_table = CatalogChange.__table__


# --------------------------------------------------------------------------- version

_VERSION_QUERY = select(_version_table.c.version).where(_version_table.c.id == VERSION_ROW)


def read_version(session: Session) -> int | None:
    """The current catalogue version, None when the row is missing (nothing is cached).
    A Core statement on the session's connection: a third of the cost of an ORM select."""
    return session.connection().execute(_VERSION_QUERY).scalar()


def bump(session: Session, scopes=(EVERYTHING,)) -> None:
    """Mark the catalogue changed in ``scopes`` (default: every page): the version goes up,
    with one ``catalog_change`` row naming them, when this transaction commits.

    The UPDATE runs in the commit itself (``before_commit``), so the row is locked only for
    the moment of the commit, not for the whole of a long transaction that changed a listing
    early on (PostgreSQL would make every other catalogue change wait for it)."""
    scopes = set(scopes)
    if scopes:
        session.info.setdefault(CHANGED, set()).update(scopes)


# Columns of a listing that decide which listings the home page, the directory and the
# category counts show (visibility, place, featuring); other columns change only pages that
# show the listing itself or order its category by them.
LISTING_SET_COLUMNS = frozenset({"status", "category_id", "provider_id", "featured",
                                 "published_at"})


def listing_scopes(product_id: int | None, provider_id: int | None,
                   category_id: int | None, listed: bool = True) -> set[str]:
    """What a change of one listing shows on: its page and cards, its institution's list,
    its category's pages, and when ``listed`` (it appears, vanishes, moves or is featured)
    the home page, the directory and the category counts."""
    scopes = {"home", "dir", "counts"} if listed else set()
    if product_id is not None:
        scopes.add(f"p:{product_id}")
    if provider_id is not None:
        scopes.add(f"op:{provider_id}")
    if category_id is not None:
        scopes.add(f"c:{category_id}")
    return scopes


def listings_scopes(session: Session, product_ids, listed: bool = True) -> set[str]:
    """``listing_scopes`` of many listings, read in one query."""
    ids = sorted({pid for pid in product_ids if pid is not None})
    scopes: set[str] = set()
    for start in range(0, len(ids), 500):
        for pid, provider_id, category_id in session.execute(
                select(Product.id, Product.provider_id, Product.category_id)
                .where(Product.id.in_(ids[start:start + 500]))):
            scopes |= listing_scopes(pid, provider_id, category_id, listed)
    return scopes


def institution_scopes(session: Session, org_id: int, columns=None) -> set[str]:
    """A change of an institution: only its own pages and badges for a credibility change;
    also the category pages of its listings for anything else (a suspension hides them)."""
    scopes = {f"o:{org_id}", f"op:{org_id}", "dir"}
    if columns is not None and not set(columns) - CREDIBILITY_COLUMNS - UNSHOWN_COLUMNS:
        return scopes
    scopes |= {"home", "counts"}
    scopes |= {f"c:{cid}" for cid in session.scalars(
        select(Product.category_id).where(Product.provider_id == org_id).distinct())}
    return scopes


def _increment(session: Session, scopes: set[str]) -> None:
    connection = session.connection()
    version = connection.execute(
        update(_version_table).where(_version_table.c.id == VERSION_ROW)
        .values(version=_version_table.c.version + 1)
        .returning(_version_table.c.version)).scalar()
    if version is None:
        # Only on a database without the row (the migration inserts it): a random start so a
        # process that cached pages of the old rows never meets the same number again.
        version = secrets.randbits(52)
        connection.execute(_version_table.insert().values(id=VERSION_ROW, version=version))
        scopes = {EVERYTHING}
    if EVERYTHING in scopes or len(scopes) > MAX_SCOPES:
        scopes = {EVERYTHING}
    connection.execute(_change_table.insert().values(version=version,
                                                     scopes=" ".join(sorted(scopes))))
    if version % PRUNE_EVERY == 0:
        connection.execute(delete(_change_table).where(
            _change_table.c.version < version - KEEP_CHANGES))


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
    scopes = session.info.pop(CHANGED, None)
    if scopes:
        _increment(session, scopes)


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


def _old_and_new(obj, name: str) -> set:
    history = inspect(obj).attrs[name].history
    values = {getattr(obj, name)} | set(history.deleted or ())
    return {value for value in values if value is not None}


def _organisation_kind(session: Session, org_id: int | None) -> str | None:
    if org_id is None:
        return None
    org = session.identity_map.get((Organisation, (org_id,), None)) or session.get(
        Organisation, org_id)
    return org.kind if org is not None else None


def _object_scopes(session: Session, obj, columns: set[str] | None) -> set[str]:
    """The scopes of one inserted/deleted (``columns`` None) or changed object."""
    if isinstance(obj, Product):
        scopes: set[str] = set()
        providers = _old_and_new(obj, "provider_id") if columns else {obj.provider_id}
        categories = _old_and_new(obj, "category_id") if columns else {obj.category_id}
        listed = columns is None or bool(columns & LISTING_SET_COLUMNS)
        for provider_id in providers or {None}:
            for category_id in categories or {None}:
                scopes |= listing_scopes(obj.id, provider_id, category_id, listed)
        return scopes
    if isinstance(obj, Package):
        product = obj.product
        if product is not None:
            return listing_scopes(product.id, product.provider_id, product.category_id,
                                  listed=False)
        return listings_scopes(session, [obj.product_id], listed=False)
    if isinstance(obj, Organisation):
        if obj.id is None or columns is None:  # a new organisation: counted on the home page
            return {"home", "dir"} if obj.id is None else {EVERYTHING}
        if obj.kind == "provider":
            return institution_scopes(session, obj.id, columns)
        if not columns - CREDIBILITY_COLUMNS:
            return set()  # an enterprise's credibility is shown on no public page
        return {f"o:{obj.id}", "home"}  # its line under its reviews
    if isinstance(obj, Review):
        return {scope for scope in (f"p:{obj.product_id}" if obj.product_id else None,
                                    f"o:{obj.subject_org_id}", f"op:{obj.subject_org_id}")
                if scope}
    if isinstance(obj, CredibilitySnapshot):
        if _organisation_kind(session, obj.organisation_id) == "provider":
            return {f"o:{obj.organisation_id}"}
        return set()
    return {EVERYTHING}  # a category: its name is in every page's menu


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session, _context, _instances):
    scopes: set[str] = set()
    for obj in session.new | session.deleted:
        if isinstance(obj, WATCHED_CLASSES):
            scopes |= _object_scopes(session, obj, None)
    for obj in session.dirty:
        if isinstance(obj, WATCHED_CLASSES):
            changed = _changed_columns(obj) - UNSHOWN_COLUMNS
            if changed:
                scopes |= _object_scopes(session, obj, changed)
    bump(session, scopes)


def _statement_columns(state) -> set[str]:
    names: set[str] = set()
    values = getattr(state.statement, "_values", None) or {}
    for key in values:
        names.add(getattr(key, "key", None) or getattr(key, "name", None) or str(key))
    params = state.parameters
    for row in params if isinstance(params, list | tuple) else [params or {}]:
        names.update(str(key) for key in row)
    return names


def _id_condition(element, table_name: str, column: str):
    """The ids of ``column == value`` / ``column IN (values)`` on ``table_name``, else None."""
    if not isinstance(element, BinaryExpression):
        return None
    left = element.left
    if getattr(left, "key", None) != column or getattr(
            getattr(left, "table", None), "name", None) != table_name:
        return None
    right = element.right
    if not isinstance(right, BindParameter):
        return None
    if element.operator is operators.eq:
        return [right.effective_value]
    if element.operator is operators.in_op and right.expanding:
        return list(right.effective_value or ())
    return None


def _statement_ids(state, table_name: str, column: str = "id") -> list | None:
    """Which rows a statement touches, when it says so plainly: by the rows of a bulk
    statement, or a WHERE that is (or is ANDed with) ``column == x`` or ``column IN (...)``."""
    params = state.parameters
    rows = params if isinstance(params, list | tuple) else [params] if params else []
    if rows and all(column in row for row in rows):
        return [row[column] for row in rows]
    where = getattr(state.statement, "whereclause", None)
    if where is None:
        return None
    parts = (where.clauses if isinstance(where, BooleanClauseList)
             and where.operator is operators.and_ else [where])
    for part in parts:
        ids = _id_condition(part, table_name, column)
        if ids is not None:
            return ids
    return None


def _statement_scopes(state, table_name: str, columns: set[str]) -> set[str]:
    session = state.session
    if table_name == "credibility_snapshot" and state.is_insert:
        ids = _statement_ids(state, table_name, "organisation_id")
        if ids is not None:
            return {f"o:{org_id}" for org_id in _providers(session, ids)}
        return {EVERYTHING}
    ids = _statement_ids(state, table_name)
    if ids is None or state.is_delete:
        return {EVERYTHING}
    if table_name == "product" and state.is_update:
        return listings_scopes(session, ids, listed=bool(columns & LISTING_SET_COLUMNS))
    if table_name == "organisation" and state.is_update:
        providers = _providers(session, ids)
        if not columns - CREDIBILITY_COLUMNS - UNSHOWN_COLUMNS:
            # Credibility of enterprises: shown on no public page.
            scopes: set[str] = set()
            for org_id in providers:
                scopes |= institution_scopes(session, org_id, columns)
            return scopes
        return {EVERYTHING}
    if table_name == "review" and state.is_update:
        scopes = set()
        for product_id, subject in session.execute(
                select(Review.product_id, Review.subject_org_id).where(Review.id.in_(ids))):
            scopes |= {f"o:{subject}", f"op:{subject}"}
            if product_id:
                scopes.add(f"p:{product_id}")
        return scopes
    return {EVERYTHING}


def _providers(session: Session, org_ids) -> list[int]:
    ids = sorted({org_id for org_id in org_ids if org_id is not None})
    found: list[int] = []
    for start in range(0, len(ids), 500):
        found += session.scalars(select(Organisation.id).where(
            Organisation.id.in_(ids[start:start + 500]), Organisation.kind == "provider"))
    return found


@event.listens_for(Session, "do_orm_execute")
def _bump_on_statement(state):
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    table_name = getattr(table, "name", None)
    if table_name not in WATCHED_TABLES:
        return
    columns = _statement_columns(state)
    if state.is_update and columns and not columns - UNSHOWN_COLUMNS:
        return
    bump(state.session, _statement_scopes(state, table_name, columns))


# --------------------------------------------------------------------------- scopes of a page

def note_scopes(*scopes: str) -> None:
    """File the page being rendered under these scopes too (a listing shown, a category)."""
    if has_request_context():
        noted = getattr(request, "page_scopes", None)
        if noted is None:
            noted = request.page_scopes = set()
        noted.update(scopes)


def noted_scopes() -> frozenset[str]:
    return frozenset(getattr(request, "page_scopes", ()) or ())


def synced_version() -> int | None:
    """The request's catalogue version, with this process's caches brought up to it."""
    version = request_version()
    if version is not None:
        _caches().sync(db.session, version)
    return version


# --------------------------------------------------------------------------- shared fragments

def shared_fragment(*key, scopes=(), caller) -> Markup:
    """``{% call shared_fragment('name', id, ...) %}...{% endcall %}``: a block that is the same
    for every viewer (visitors and members: no CSRF token, no viewer state), rendered once
    per process and language until a change in ``scopes`` (or one noted while it rendered,
    e.g. a review author) commits. A member's page reuses it instead of rendering it again;
    the page around it is filed under its scopes too."""
    version = synced_version() if has_request_context() else None
    if version is None:
        return caller()
    full = ("fragment", request.script_root, current_locale(), *key)
    caches = _caches()
    body = caches.pages.get(full)
    if body is not None:
        note_scopes(*(caches.pages.scopes_of(full) or ()))
        return Markup(body[0])  # noqa: S704 - markup rendered by the template below
    outer = getattr(request, "page_scopes", None)
    request.page_scopes = set(scopes)
    try:
        html = caller()
    finally:
        inner = request.page_scopes
        request.page_scopes = outer
    note_scopes(*inner)
    if caches.version == version:
        caches.pages.put(full, [str(html)], frozenset(inner),
                         int(current_app.config.get("PAGE_CACHE_MAX_BYTES") or 0))
    return html


# --------------------------------------------------------------------------- values by version

def by_version(name: str, compute: Callable[[], object], scope: str = "counts"):
    """``compute()`` once per process until a change in ``scope`` commits (e.g. the category
    counts); a page that shows the value is filed under ``scope`` too. The value is shared by
    every request: return plain data, not ORM objects."""
    note_scopes(scope)
    version = synced_version()
    if version is None:
        return compute()
    caches = _caches()
    cached = caches.values.get(name)
    if cached is not None:
        return cached[1]
    value = compute()
    caches.put_value(name, scope, version, value)
    return value


# --------------------------------------------------------------------------- page cache

class PageCache:
    """Rendered pages by key, least recently used dropped beyond ``max_bytes``, each filed
    under the scopes it shows. A page is kept as its UTF-8 bytes split where the CSRF token
    was, ready to be joined with another."""

    def __init__(self):
        self._entries: OrderedDict[tuple, tuple[list[bytes], frozenset[str]]] = OrderedDict()
        self._by_scope: dict[str, set[tuple]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> list[bytes] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: tuple, body: list[bytes], scopes: frozenset[str], max_bytes: int) -> None:
        size = _size(body)
        if size > max_bytes:
            return
        with self._lock:
            self._remove(key)
            self._entries[key] = (body, scopes)
            for scope in scopes:
                self._by_scope.setdefault(scope, set()).add(key)
            self._size += size
            while self._size > max_bytes:
                self._remove(next(iter(self._entries)))

    def _remove(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._size -= _size(entry[0])
        for scope in entry[1]:
            keys = self._by_scope.get(scope)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_scope[scope]

    def drop(self, scopes) -> int:
        """Drop the pages filed under any of ``scopes``; the number dropped."""
        with self._lock:
            if EVERYTHING in scopes:
                dropped = len(self._entries)
                self._entries.clear()
                self._by_scope.clear()
                self._size = 0
                return dropped
            dropped = 0
            for scope in scopes:
                for key in list(self._by_scope.get(scope, ())):
                    self._remove(key)
                    dropped += 1
            return dropped

    def clear(self) -> None:
        self.drop({EVERYTHING})

    def scopes_of(self, key: tuple) -> frozenset[str] | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)


def _size(parts: list[bytes]) -> int:
    return sum(len(part) for part in parts)


_CHANGES_QUERY = select(_change_table.c.version, _change_table.c.scopes)


class _Caches:
    """One process's pages and values, and the catalogue version they are up to."""

    def __init__(self):
        self.pages = PageCache()
        self.values: dict[str, tuple[str, object]] = {}
        self.version: int | None = None  # every change up to this one is applied
        self._lock = threading.Lock()

    def sync(self, session: Session, version: int) -> None:
        """Bring the caches up to ``version``: drop what the changes since then touched."""
        if version == self.version:
            return
        with self._lock:
            seen = self.version
            if version == seen:
                return
            if seen is None or version < seen or version - seen > KEEP_CHANGES:
                scopes = {EVERYTHING}
            else:
                rows = session.connection().execute(_CHANGES_QUERY.where(
                    _change_table.c.version > seen, _change_table.c.version <= version)).all()
                if len(rows) != version - seen:
                    scopes = {EVERYTHING}  # a gap: pruned rows or another counter
                else:
                    scopes = set()
                    for _version, names in rows:
                        scopes.update(names.split())
            self.pages.drop(scopes)
            if EVERYTHING in scopes:
                self.values.clear()
            else:
                for name, (scope, _value) in list(self.values.items()):
                    if scope in scopes:
                        self.values.pop(name, None)
            self.version = version

    def put_value(self, name: str, scope: str, version: int, value) -> None:
        if version == self.version:  # computed at the version the caches are up to
            self.values[name] = (scope, value)


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
    version = synced_version()
    if version is None:
        return None
    request.page_version = version
    return (request.endpoint, request.host, request.script_root, request.full_path,
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
    caches = _caches()
    # Filed only if no change committed since this request read its version (another
    # request of this process may have dropped those scopes meanwhile).
    if caches.version == request.page_version:
        caches.pages.put(key, parts, noted_scopes(),
                         int(current_app.config["PAGE_CACHE_MAX_BYTES"]))
    return "miss"


def _hit(parts: list[bytes]):
    from flask_wtf.csrf import generate_csrf

    body = generate_csrf().encode().join(parts) if len(parts) > 1 else parts[0]
    response = current_app.response_class(body, mimetype="text/html")
    response.headers[CACHE_HEADER] = "hit"
    return response


def cached_for_visitors(extra_key: Callable[[], object] | None = None,
                        on_hit: Callable[..., None] | None = None,
                        scopes: Callable[..., object] | None = None):
    """Serve the view's page from the cache for visitors who are not logged in.

    ``extra_key()`` adds anything else the page depends on (the search index generation);
    ``on_hit(**view_args)`` runs on a cache hit for side effects the view would have had (a
    product page counts the view); ``scopes(**view_args)`` names scopes the page is filed
    under besides those noted while it rendered (``note_scopes``)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            key = _visitor_key(extra_key)
            if key is not None and scopes is not None:
                note_scopes(*scopes(**kwargs))
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
