"""Site-wide pages: the home page and shared template context."""

from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_login import current_user

from catalog import page_cache
from catalog import services as catalog_services
from catalog.categories import category_menu
from catalog.views import category_counts
from marketplace import i18n
from marketplace.database import db

bp = Blueprint("main", __name__)


@bp.app_context_processor
def _navigation():
    # The category menu changes only when admins edit the tree (which drops every cached
    # value): built once per process, not two queries on every page.
    if g.get("database_unavailable"):  # the 503 page (marketplace/errors.py) queries nothing
        return {"nav_categories": []}
    return {"nav_categories": page_cache.by_version(
        "category_menu", lambda: category_menu(db.session), scope="menu")}


@bp.get("/")
@page_cache.cached_for_visitors(scopes=lambda: ("home",))
def home():
    # The category grid reuses ``nav_categories`` from the context processor.
    return render_template(
        "main/home.html",
        figures=catalog_services.storefront_figures(db.session),
        counts=category_counts(),
        featured=catalog_services.featured_products(db.session, limit=8),
        newest=catalog_services.newest_products(db.session, limit=8),
    )


@bp.post("/language")
def choose_language():
    """The navbar's 中文 / English switch: kept on the account for members (it follows them
    to every device) and in a cookie for everyone (visitors, and the next login page)."""
    locale = i18n.normalise_locale(request.form.get("locale"))
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    # Only back to a page of this site: a path, never another host.
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = url_for("main.home")
    response = redirect(target)
    if locale is None or locale not in i18n.LANGUAGES:
        return response
    if current_user.is_authenticated:
        current_user.locale = locale
        db.session.commit()
    response.set_cookie(i18n.LOCALE_COOKIE, locale, max_age=i18n.COOKIE_MAX_AGE,
                        samesite="Lax", httponly=True,
                        secure=bool(request.is_secure))
    return response
