"""Public institution pages: directory and provider profiles."""

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from catalog import page_cache
from catalog import services as catalog_services
from marketplace.database import db
from marketplace.permissions import can_view_provider_profile
from providers import services

bp = Blueprint("providers", __name__)


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


@bp.get("/institutions")
@page_cache.cached_for_visitors(scopes=lambda: ("dir",))
def directory():
    filters = services.DirectoryFilters.from_args(request.args)
    page = services.directory(
        db.session, filters, catalog_services.parse_page(request.args.get("page")), _page_size()
    )
    return render_template("providers/directory.html", page=page, filters=filters)


@bp.get("/institutions/<int:org_id>")
@page_cache.cached_for_visitors(scopes=lambda org_id: (f"o:{org_id}", f"op:{org_id}"))
def profile(org_id):
    org = services.get_provider(db.session, org_id)
    if org is None or not can_view_provider_profile(current_user, org):
        abort(404)
    public = can_view_provider_profile(None, org)
    products = catalog_services.browse_products(
        db.session,
        provider_id=org.id,
        page=catalog_services.parse_page(request.args.get("page")),
        page_size=_page_size(),
        public=public,
    )
    return render_template(
        "providers/profile.html", org=org, products=products, preview=not public
    )
