"""Public catalogue queries: what visitors may see, category browsing, product detail.

Every function takes a SQLAlchemy session and returns plain results, so web pages, CLI
commands and tests share the same rules. The visibility rule of DESIGN.md §3 lives in
marketplace.permissions (``is_public_listing`` / ``public_listings_filter``);
``visible_products_condition`` is its catalogue-side name.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, false, func, or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.elements import ColumnElement

from catalog.models import PRICING_MODES, Category, Product
from marketplace import permissions, reference
from marketplace.models import Organisation
from marketplace.paging import Page, paginate, parse_page  # noqa: F401 (also imported from here)

SORTS = {
    "newest": _l("Newest first"),
    "price_asc": _l("Price: low to high"),
    "price_desc": _l("Price: high to low"),
    "sales": _l("Most sold"),
}
DEFAULT_SORT = "newest"
MODE_LABELS = {"packaged": _l("Packaged"), "quote": _l("Quote"), "financial": _l("Financial")}
REGION_CODES = {code for code, _en, _zh in reference.REGIONS}
INSTITUTION_TYPE_CODES = {code for code, _en, _zh in reference.INSTITUTION_TYPES}


# --------------------------------------------------------------------------- visibility

def listed_providers_condition() -> ColumnElement[bool]:
    """Institutions whose published listings the public may see (marketplace.permissions)."""
    return permissions.listed_providers_filter()


def visible_products_condition() -> ColumnElement[bool]:
    """THE public visibility rule in SQL, from marketplace.permissions (its one home)."""
    return permissions.public_listings_filter(Product)


def visible_ids(session: Session, product_ids) -> set[int]:
    """Which of ``product_ids`` the public may see right now (the catalogue's one rule)."""
    ids = list(product_ids)
    if not ids:
        return set()
    return set(session.scalars(
        select(Product.id).where(Product.id.in_(ids), visible_products_condition())))


def card_options():
    """Loader options for product cards: provider and category in the same query."""
    return (joinedload(Product.provider), joinedload(Product.category))


# --------------------------------------------------------------------------- home page

def storefront_figures(session: Session) -> dict[str, int]:
    """Live figures for the hero band, in one round trip."""
    published = (
        select(func.count(Product.id)).where(visible_products_condition()).scalar_subquery()
    )
    institutions = (
        select(func.count(Organisation.id)).where(listed_providers_condition()).scalar_subquery()
    )
    enterprises = (
        select(func.count(Organisation.id))
        .where(Organisation.kind == "enterprise")
        .scalar_subquery()
    )
    row = session.execute(select(published, institutions, enterprises)).one()
    return {"products": row[0] or 0, "institutions": row[1] or 0, "enterprises": row[2] or 0}


def category_counts(session: Session) -> dict[int, int]:
    """Visible products per category id, with each top-level category holding its total.

    Listings may be filed under a sub-category or (rarely) directly under a top-level one.
    """
    rows = session.execute(
        select(Product.category_id, Category.parent_id, func.count(Product.id))
        .join(Category, Category.id == Product.category_id)
        .where(visible_products_condition())
        .group_by(Product.category_id, Category.parent_id)
    ).all()
    counts: dict[int, int] = {}
    for category_id, parent_id, count in rows:
        counts[category_id] = counts.get(category_id, 0) + count
        if parent_id is not None:
            counts[parent_id] = counts.get(parent_id, 0) + count
    return counts


def featured_products(session: Session, limit: int = 8) -> list[Product]:
    stmt = (
        select(Product)
        .where(visible_products_condition(), Product.featured.is_(True))
        .options(*card_options())
        .order_by(Product.published_at.desc(), Product.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())


def newest_products(session: Session, limit: int = 8) -> list[Product]:
    stmt = (
        select(Product)
        .where(visible_products_condition())
        .options(*card_options())
        .order_by(Product.published_at.desc(), Product.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())


# --------------------------------------------------------------------------- category page

@dataclass
class ProductFilters:
    """Validated browse filters; unknown values are dropped rather than rejected."""

    sort: str = DEFAULT_SORT
    mode: str | None = None
    region: str | None = None
    voucher: bool = False

    @classmethod
    def from_args(cls, args) -> "ProductFilters":
        sort = args.get("sort", DEFAULT_SORT)
        mode = args.get("mode") or None
        region = args.get("region") or None
        return cls(
            sort=sort if sort in SORTS else DEFAULT_SORT,
            mode=mode if mode in PRICING_MODES else None,
            region=region if region in REGION_CODES else None,
            voucher=args.get("voucher") in ("1", "on", "true", "yes"),
        )

    @property
    def active(self) -> bool:
        return bool(self.mode or self.region or self.voucher)


def json_list_contains(column, code: str) -> ColumnElement[bool]:
    """Whether a JSON list of short codes contains ``code``, portably (SQLite and PostgreSQL).

    The lists hold reference codes ([a-z_]) serialised by json.dumps, so matching the quoted
    code in the JSON text is exact: '"suzhou"' does not match "suzhou_sip".
    """
    return cast(column, String).like(f'%"{code}"%')


def region_condition(column, region: str) -> ColumnElement[bool]:
    """Serves ``region``: listed explicitly, or nationwide."""
    if region == "national":
        return json_list_contains(column, "national")
    return or_(json_list_contains(column, region), json_list_contains(column, "national"))


def _product_order(sort: str):
    if sort == "price_asc":
        return (Product.price_from.asc().nulls_last(), Product.id.asc())
    if sort == "price_desc":
        return (Product.price_from.desc().nulls_last(), Product.id.desc())
    if sort == "sales":
        return (Product.sales_count.desc(), Product.published_at.desc(), Product.id.desc())
    return (Product.published_at.desc(), Product.id.desc())


def get_category(session: Session, slug: str) -> Category | None:
    return session.scalar(
        select(Category)
        .where(Category.slug == slug)
        .options(joinedload(Category.parent), selectinload(Category.children))
    )


def browse_products(session: Session, *, category_ids: list[int] | None = None,
                    provider_id: int | None = None, filters: ProductFilters | None = None,
                    page: int = 1, page_size: int = 24, public: bool = True) -> Page:
    """Products for a category page or a provider profile, filtered, sorted and paginated.

    ``public=False`` is the owner/staff preview of an institution that is not listed yet:
    its published listings, regardless of the institution's own status.
    """
    filters = filters or ProductFilters()
    conditions = [visible_products_condition() if public else Product.status == "published"]
    if category_ids is not None:
        conditions.append(Product.category_id.in_(category_ids) if category_ids else false())
    if provider_id is not None:
        conditions.append(Product.provider_id == provider_id)
    if filters.mode:
        conditions.append(Product.pricing_mode == filters.mode)
    if filters.region:
        conditions.append(region_condition(Product.regions, filters.region))
    if filters.voucher:
        conditions.append(Product.voucher_eligible.is_(True))
    stmt = (
        select(Product)
        .where(*conditions)
        .options(*card_options())
        .order_by(*_product_order(filters.sort))
    )
    return paginate(session, stmt, page, page_size)


# --------------------------------------------------------------------------- product detail

def get_product(session: Session, product_id: int) -> Product | None:
    """A product with everything its detail page shows, whatever its status.

    Callers decide visibility with ``permissions.can_view_product``.
    """
    return session.scalar(
        select(Product)
        .where(Product.id == product_id)
        .options(
            joinedload(Product.provider),
            joinedload(Product.category).joinedload(Category.parent),
            selectinload(Product.packages),
        )
    )


class _ViewCounter:
    """Views counted in this process, handed out for writing at most every ``interval``
    seconds (or when many listings wait), so a busy product page is not one UPDATE and one
    commit per view."""

    MAX_PENDING = 500

    def __init__(self):
        self._pending: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._written = time.monotonic()

    def add(self, product_id: int, interval: float) -> dict[int, int]:
        with self._lock:
            self._pending[product_id] += 1
            now = time.monotonic()
            if (interval > 0 and now - self._written < interval
                    and len(self._pending) < self.MAX_PENDING):
                return {}
            due, self._pending = dict(self._pending), Counter()
            self._written = now
            return due


_views = _ViewCounter()


def record_view(session: Session, product_id: int, interval: float = 0) -> bool:
    """Count one view; write the views counted so far in this process when ``interval``
    seconds have passed since the last write (at once with 0). True if it wrote (the caller
    commits).

    One UPDATE per listing (no read-modify-write race between workers); ``updated_at`` is set
    to itself so a page view does not look like an edit.
    """
    due = _views.add(product_id, interval)
    for pid, views in sorted(due.items()):
        session.execute(
            update(Product)
            .where(Product.id == pid)
            .values(view_count=Product.view_count + views, updated_at=Product.updated_at)
            .execution_options(synchronize_session=False)
        )
    return bool(due)
