"""Search, favourites and comparison pages (blueprint "search")."""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from catalog import compare, favourites, page_cache
from catalog.search.console import logs_searches, note_results
from catalog.search.index import open_index
from catalog.search.query import RATING_OPTIONS, SORTS, CategoryTree, SearchParams, search
from catalog.search.worker import kick_background_drain
from marketplace.database import db
from marketplace.navigation import is_safe_next
from marketplace.paging import parse_page
from marketplace.permissions import role_required

bp = Blueprint("search", __name__)


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _back(default: str) -> str:
    target = request.form.get("next") or request.args.get("next")
    return target if is_safe_next(target) else default


def _int_field(name: str) -> int:
    try:
        value = int(request.form.get(name, ""))
    except ValueError:
        abort(400)
    if value <= 0:
        abort(400)
    return value


# --------------------------------------------------------------------------- template helpers
# Jinja globals rather than context variables: the star and compare buttons are included from
# macros that other templates import without context (product cards), where only globals exist.

def favourite_state() -> favourites.FavouriteIds:
    """The signed-in user's starred ids, looked up once per request."""
    if "favourite_ids" not in g:
        g.favourite_ids = favourites.favourite_ids(db.session, current_user)
    return g.favourite_ids


def viewer_signed_in() -> bool:
    return bool(current_user.is_authenticated)


def viewer_can_collect() -> bool:
    return favourites.can_collect(current_user)


def compare_ids() -> list[int]:
    return compare.clean_ids(session.get(compare.SESSION_KEY))


def current_path() -> str:
    """This page's path and query string, for "come back here" form fields."""
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


# Where a listing's id goes in buttons rendered once per request (``listing_buttons``). It
# is markup: anything a user typed is escaped on the way out, so it can only come from here.
LISTING_ID_MARKER = Markup("<!--listing-id-->")


def listing_buttons(product_id: int, compare_button: bool = True) -> Markup:
    """The viewer's small favourite star (and compare button) of one listing in a list.

    Between the listings of a page they differ only in the id and in being on or off, so
    each on/off variant is rendered once per request with a marker for the id and the
    listing's id put in; a results page otherwise renders two includes per listing, each
    in a new template context.
    """
    fav_on = viewer_can_collect() and product_id in favourite_state().products
    cmp_on = compare_button and product_id in compare_ids()
    variants = getattr(request, "listing_button_variants", None)
    if variants is None:  # on the request, not ``g``: an app context may outlive a request
        variants = request.listing_button_variants = {}
    key = (fav_on, cmp_on, compare_button)
    html = variants.get(key)
    if html is None:
        html = variants[key] = Markup(render_template(  # noqa: S704 - an autoescaped template
            "catalog/_listing_buttons.html", listing_id=LISTING_ID_MARKER, fav_on=fav_on,
            cmp_on=cmp_on, compare_button=compare_button))
    return html.replace(LISTING_ID_MARKER, escape(int(product_id)))


TEMPLATE_GLOBALS = {
    "listing_buttons": listing_buttons,
    "favourite_state": favourite_state,
    "viewer_signed_in": viewer_signed_in,
    "can_collect": viewer_can_collect,
    "compare_ids": compare_ids,
    "compare_max": compare.MAX_COMPARE,
    "current_path": current_path,
}


# --------------------------------------------------------------------------- search

def _index_generation() -> int:
    # Search pages come from the index, which the outbox drain updates after the change's
    # commit: the generation is part of a cached search page's key.
    return open_index(current_app.config["SEARCH_INDEX_DIR"]).latest_generation()


@bp.get("/search")
@logs_searches
@page_cache.cached_for_visitors(extra_key=_index_generation)
def search_page():
    # The category tree changes only with an admin's edit (which drops every cached value).
    tree = page_cache.by_version("search_category_tree",
                                 lambda: CategoryTree.load(db.session), scope="menu")
    params = SearchParams.from_args(request.args, tree)
    page_size = int(current_app.config.get("PAGE_SIZE") or 24)
    results = search(db.session, current_app.config["SEARCH_INDEX_DIR"], params,
                     page_size=page_size, tree=tree)
    note_results(results.total)  # search analytics (catalog.search.console)
    for hit in results.hits:  # the cached page shows these listings and institutions
        page_cache.note_scopes(f"p:{hit.product.id}", f"o:{hit.product.provider_id}")
    selected_category = tree.by_slug.get(params.category) if params.category else None
    return render_template(
        "search/results.html",
        results=results,
        params=params,
        search_query=params.q,
        sorts=SORTS,
        rating_options=RATING_OPTIONS,
        selected_category=selected_category,
        tree=tree,
    )


# --------------------------------------------------------------------------- favourites

@bp.get("/favourites")
@role_required("enterprise")
def favourites_page():
    page_size = int(current_app.config.get("PAGE_SIZE") or 24)
    listing = favourites.list_favourites(
        db.session, current_user, product_page=parse_page(request.args.get("page")),
        provider_page=parse_page(request.args.get("institutions_page")), page_size=page_size)
    return render_template("favourites/index.html", favourites=listing)


@bp.post("/favourites/toggle")
@login_required
def toggle_favourite():
    product_id = request.form.get("product_id")
    provider_id = request.form.get("provider_id")
    if bool(product_id) == bool(provider_id):
        abort(400)
    if not favourites.can_collect(current_user):
        abort(403, _("Only enterprise members can collect listings and institutions."))
    try:
        if product_id:
            target_id = _int_field("product_id")
            collected = favourites.toggle_product(db.session, current_user, target_id)
        else:
            target_id = _int_field("provider_id")
            collected = favourites.toggle_provider(db.session, current_user, target_id)
    except favourites.FavouriteError as exc:
        db.session.rollback()
        if _is_htmx():  # the button stays as it was and says why
            return _favourite_button(product_id, target_id, message=str(exc))
        flash(str(exc), "warning")
        return redirect(_back(url_for("main.home")))
    db.session.commit()
    g.pop("favourite_ids", None)
    if _is_htmx():
        return _favourite_button(product_id, target_id)
    flash(_("Added to your favourites.") if collected else _("Removed from your favourites."),
          "success")
    return redirect(_back(url_for("search.favourites_page")))


def _favourite_button(product_id, target_id: int, message: str | None = None):
    return render_template(
        "catalog/_favourite_button.html",
        fav_kind="product" if product_id else "provider",
        fav_id=target_id,
        fav_size=request.form.get("size", ""),
        fav_next=_back(url_for("main.home")),
        fav_message=message,
    )


# --------------------------------------------------------------------------- comparison

@bp.get("/compare")
def compare_page():
    ids = compare_ids()
    comparison = compare.load_comparison(db.session, ids)
    if comparison.missing:
        session[compare.SESSION_KEY] = [p.id for p in comparison.products]
        flash(_("Some listings you picked are no longer available and were removed."), "info")
    return render_template("compare/index.html", comparison=comparison)


@bp.post("/compare/toggle")
def toggle_compare():
    product_id = _int_field("product_id")
    ids = compare_ids()
    message = None
    if product_id in ids:
        ids = compare.remove(ids, product_id)
    elif not compare.is_comparable(db.session, product_id):
        message = _("This listing is not available.")
    else:
        try:
            ids = compare.add(ids, product_id)
        except compare.CompareFull as exc:
            message = str(exc)
    session[compare.SESSION_KEY] = ids
    if _is_htmx():
        return render_template("compare/_button.html", cmp_id=product_id, cmp_message=message,
                               cmp_size=request.form.get("size", ""), cmp_oob=True,
                               cmp_next=_back(url_for("search.compare_page")))
    if message:
        flash(message, "warning")
    elif product_id in ids:
        flash(_("Added to comparison (%(count)d of %(max)d).", count=len(ids),
                max=compare.MAX_COMPARE), "success")
    else:
        flash(_("Removed from comparison."), "info")
    return redirect(_back(url_for("search.compare_page")))


@bp.post("/compare/clear")
def clear_compare():
    session.pop(compare.SESSION_KEY, None)
    flash(_("Comparison cleared."), "info")
    return redirect(url_for("search.compare_page"))


@bp.record_once
def _install_template_globals(state) -> None:
    state.app.jinja_env.globals.update(TEMPLATE_GLOBALS)


@bp.after_app_request
def _kick_search_drain(response):
    kick_background_drain(current_app)
    return response
