"""Public catalogue pages: categories and product detail."""

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from catalog import page_cache, services
from marketplace.database import db
from marketplace.permissions import can_view_product, has_role, is_member_of

bp = Blueprint("catalog", __name__)


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def category_counts() -> dict[int, int]:
    """Visible listings per category, counted once per catalogue version per process."""
    return page_cache.by_version("category_counts", lambda: services.category_counts(db.session))


def _record_view(product_id: int) -> None:
    if services.record_view(db.session, product_id,
                            current_app.config.get("VIEW_COUNT_INTERVAL") or 0):
        db.session.commit()


def _count_view(product_id: int) -> None:
    # A cached product page is only ever a public one, shown to a visitor: count the view.
    _record_view(product_id)


@bp.get("/c/<slug>")
@page_cache.cached_for_visitors()
def category(slug):
    selected = services.get_category(db.session, slug)
    if selected is None:
        abort(404)
    top = selected.parent or selected
    category_ids = [selected.id] + [child.id for child in selected.children]
    page_cache.note_scopes(*(f"c:{category_id}" for category_id in category_ids))
    filters = services.ProductFilters.from_args(request.args)
    page = services.browse_products(
        db.session,
        category_ids=category_ids,
        filters=filters,
        page=services.parse_page(request.args.get("page")),
        page_size=_page_size(),
    )
    return render_template(
        "catalog/category.html",
        category=selected,
        top=top,
        page=page,
        filters=filters,
        counts=category_counts(),
        sorts=services.SORTS,
        modes=services.MODE_LABELS,
    )


@bp.get("/products/<int:product_id>")
@page_cache.cached_for_visitors(on_hit=_count_view)
def product(product_id):
    listing = services.get_product(db.session, product_id)
    if listing is None or not can_view_product(current_user, listing):
        abort(404)
    page_cache.note_scopes(f"p:{listing.id}", f"o:{listing.provider_id}")
    # Visibility for an anonymous visitor is the public rule for this one object.
    public = can_view_product(None, listing)
    insider = has_role(current_user, "staff") or is_member_of(current_user, listing.provider_id)
    if public and not insider:
        _record_view(listing.id)
    return render_template(
        "catalog/product.html",
        product=listing,
        preview=not public,
        modes=services.MODE_LABELS,
    )
