"""Rendered fragments of catalogue pages that are the same for every viewer, cached per process.

A product card (``templates/catalog/_product_card.html``) costs a few milliseconds of Jinja
and a category page shows two dozen of them. Its markup depends only on the listing, its
institution and its category, so it is cached under a key made of *every value the card
shows*: a changed price, title, region or institution name is a different key, and a cached
card can never show stale data (no invalidation step to forget). The viewer's own parts (the
favourite star with its CSRF token and state) are rendered for each request and put in at a
marker. Entries are evicted least-recently-used beyond ``MAX_ENTRIES``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app, request
from markupsafe import Markup

STAR_MARKER = Markup("<!--favourite-star-->")
MAX_ENTRIES = 20_000

# Every attribute of a listing that the card shows (keep in step with card_static).
CARD_FIELDS = (
    "id", "pricing_mode", "featured", "title", "summary", "price_from", "currency",
    "amount_min", "amount_max", "rate_min_bp", "rate_max_bp", "term_min_months",
    "term_max_months", "delivery_days", "voucher_eligible", "provider_id", "category_id",
    "rating_x100", "rating_count",  # the rating beside the credibility badge
)


class FragmentCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


cards = FragmentCache()


def card_key(product) -> tuple:
    from marketplace.i18n import current_locale

    values = tuple(getattr(product, name) for name in CARD_FIELDS)
    provider, category = product.provider, product.category
    # The card's labels are in the viewer's language: one cached card per language.
    return (request.script_root, current_locale(), values, tuple(product.regions or ()),
            provider.name, category.name, category.name_zh,
            provider.credibility_score, provider.credibility_level)  # the credibility badge


def cached_product_card(product, favourite_star) -> Markup:
    from catalog.page_cache import note_scopes

    # A cached page showing this card is dropped when the listing or its institution changes.
    note_scopes(f"p:{product.id}", f"o:{product.provider_id}")
    key = card_key(product)
    html = cards.get(key)
    if html is None:
        macro = current_app.jinja_env.get_template("catalog/_product_card.html").module.card_static
        html = macro(product)
        cards.put(key, html)
    # Markup.replace escapes a plain-string star; the rendered include is already Markup.
    return html.replace(STAR_MARKER, favourite_star, 1)


HIT_LINK = Markup("<!--hit-link-->")
HIT_TITLE = Markup("<!--hit-title-->")
HIT_SNIPPET = Markup("<!--hit-snippet-->")
HIT_BUTTONS = Markup("<!--hit-buttons-->")
_URL_SENTINEL = 2147483647  # a listing id in a URL built once per page, replaced per hit
hits = FragmentCache()


def _hit_href(product_id: int, query: str | None) -> str:
    """The hit's link: through the click counter with the query, or straight to the listing.
    ``url_for`` once per page and query (a results page has two dozen hits), not per hit."""
    from flask import url_for

    patterns = getattr(request, "hit_url_patterns", None)
    if patterns is None:
        patterns = request.hit_url_patterns = {}
    pattern = patterns.get(query)
    if pattern is None:
        pattern = patterns[query] = (
            url_for("search_clicks.click", product_id=_URL_SENTINEL, q=query) if query
            else url_for("catalog.product", product_id=_URL_SENTINEL))
    # The query string is URL-encoded ("/" is %2F), so the path's "/<id>" is the only match.
    return pattern.replace(f"/{_URL_SENTINEL}", f"/{product_id}", 1)


def cached_search_hit(product, title_html, snippet_html, buttons, query) -> Markup:
    """A search result (``templates/search/_hit.html``): rendered once per listing state and
    language, like the product cards; the link with the query, the highlighted title and
    snippet and the viewer's buttons are put in at their markers."""
    key = (*card_key(product), product.sales_count, product.provider.institution_type)
    html = hits.get(key)
    if html is None:
        macro = current_app.jinja_env.get_template("search/_hit.html").module.hit_static
        html = macro(product)
        hits.put(key, html)
    link = Markup('href="{}"').format(_hit_href(product.id, query))
    if query:
        link += Markup(' rel="nofollow"')
    return (html.replace(HIT_LINK, link, 1).replace(HIT_TITLE, title_html, 1)
            .replace(HIT_SNIPPET, snippet_html, 1).replace(HIT_BUTTONS, buttons, 1))


visitor_fragments = FragmentCache()


def cache_for_visitors(*key, caller) -> Markup:
    """``{% call cache_for_visitors('name', id) %}...{% endcall %}``: the body rendered once per
    key and page URL for visitors who are not logged in (it may hold nothing user-specific for
    them: no CSRF token, no state), and rendered afresh for every logged-in viewer."""
    from flask_login import current_user

    if current_user.is_authenticated:
        return caller()
    from marketplace.i18n import current_locale

    full_key = (request.script_root, current_locale(), request.full_path, *key)
    html = visitor_fragments.get(full_key)
    if html is None:
        html = caller()
        visitor_fragments.put(full_key, html)
    return html


def register(app) -> None:
    app.jinja_env.globals["cached_product_card"] = cached_product_card
    app.jinja_env.globals["cached_search_hit"] = cached_search_hit
    from catalog.page_cache import shared_fragment

    app.jinja_env.globals["shared_fragment"] = shared_fragment
    app.jinja_env.globals["cache_for_visitors"] = cache_for_visitors
