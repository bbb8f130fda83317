"""Jinja filters and globals shared by every template."""

from urllib.parse import urlencode

from flask import current_app, has_request_context, request, url_for

from marketplace import i18n, reference
from marketplace.markdown import render_markdown
from orders.money import format_amount, format_compact, format_range, format_rate


def _url_with(**changes) -> str:
    """The current URL with some query parameters replaced (used by pagination links)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = [value]
    return this_page_url(args)


# What werkzeug leaves unescaped in a built URL's query string (werkzeug.urls._urlencode).
_QUERY_SAFE = "!$'()*,/:;?@"


def this_page_url(args) -> str:
    """``url_for(request.endpoint, **request.view_args, **args)``: this page with exactly
    these query arguments (a dict of values or lists of values; None drops one). The path is
    built once per request; a results page links every facet value and page number this way
    (about seventy ``url_for`` calls a page otherwise)."""
    path = getattr(request, "this_page_path", None)
    if path is None:  # on the request, not ``g``: an app context may outlive a request
        path = request.this_page_path = url_for(request.endpoint, **(request.view_args or {}))
    items = []
    for key, value in args.items():
        for one in (value if isinstance(value, list | tuple) else (value,)):
            if one is not None:
                items.append((key, one))
    return f"{path}?{urlencode(items, safe=_QUERY_SAFE)}" if items else path


URL_MEMO_MAX = 20_000


def memo_url_for(endpoint: str, **values) -> str:
    """``url_for`` for templates, remembered per application: a page builds thirty to a
    hundred links, most of them the same on every page (menus, forms, the footer), and
    werkzeug builds each one anew (tens of microseconds). A relative URL depends only on
    the endpoint, its values and the script root; static files (whose URL carries the
    file's current digest), relative endpoints and ``_external``-style options are built
    each time."""
    if (endpoint == "static" or endpoint.startswith(".") or not has_request_context()
            or any(key.startswith("_") for key in values)):
        return url_for(endpoint, **values)
    try:
        key = (request.script_root, endpoint, *sorted(values.items()))
        hash(key)
    except TypeError:  # a list or dict among the values
        return url_for(endpoint, **values)
    memo = current_app.extensions.setdefault("url_memo", {})
    url = memo.get(key)
    if url is None:
        url = url_for(endpoint, **values)
        if len(memo) >= URL_MEMO_MAX:
            memo.clear()  # bounded: distinct ids beyond this start again
        memo[key] = url
    return url


def reference_label(table, code) -> str:
    """The label of ``code`` in a reference table of (code, en, zh) rows, in the viewer's
    language (the code itself when unknown)."""
    chinese = i18n.is_chinese()
    for row_code, en, zh in table:
        if row_code == code:
            return zh if chinese else en
    return code or ""


def register(app):
    app.jinja_env.filters["money"] = lambda amount, currency="CNY": (
        "—" if amount is None else format_amount(amount, currency)
    )
    # Compact amounts count in 万/亿 for Chinese readers ("500万元"), k/M for English ones.
    app.jinja_env.filters["money_compact"] = lambda amount, currency="CNY": (
        "—" if amount is None else format_compact(amount, currency, i18n.is_chinese())
    )
    app.jinja_env.filters["money_range"] = lambda low, high, currency="CNY": (
        format_range(low, high, currency, i18n.is_chinese()))
    app.jinja_env.filters["rate"] = lambda bp: "—" if bp is None else format_rate(bp)
    app.jinja_env.filters["markdown"] = render_markdown
    # Reference labels in the viewer's language (marketplace/reference.py has both).
    app.jinja_env.filters["region"] = lambda code: reference_label(reference.REGIONS, code)
    app.jinja_env.filters["institution_type"] = lambda code: (
        reference_label(reference.INSTITUTION_TYPES, code))
    app.jinja_env.filters["industry"] = lambda code: reference_label(reference.INDUSTRIES, code)
    app.jinja_env.filters["company_size"] = lambda code: (
        reference_label(reference.COMPANY_SIZES, code))
    app.jinja_env.globals["url_with"] = _url_with
    app.jinja_env.globals["url_for"] = memo_url_for
    app.jinja_env.globals["this_page_url"] = this_page_url
    app.jinja_env.globals["reference"] = reference
    from orders import states

    app.jinja_env.globals["order_states"] = states  # the one table of order statuses
    app.jinja_env.filters["milestone_label"] = states.milestone_label
    app.jinja_env.filters["milestone_badge"] = states.milestone_badge
