"""Site-wide pages: the home page and shared template context."""

from flask import Blueprint, g, render_template

from catalog import page_cache
from catalog import services as catalog_services
from catalog.categories import top_level_categories
from catalog.views import category_counts
from marketplace.database import db

bp = Blueprint("main", __name__)


@bp.app_context_processor
def _navigation():
    # Two small queries per page; the category menu changes only when admins edit the tree.
    if g.get("database_unavailable"):  # the 503 page (marketplace/errors.py) queries nothing
        return {"nav_categories": []}
    return {"nav_categories": top_level_categories(db.session)}


@bp.get("/")
@page_cache.cached_for_visitors()
def home():
    # The category grid reuses ``nav_categories`` from the context processor.
    return render_template(
        "main/home.html",
        figures=catalog_services.storefront_figures(db.session),
        counts=category_counts(),
        featured=catalog_services.featured_products(db.session, limit=8),
        newest=catalog_services.newest_products(db.session, limit=8),
    )
