"""Jinja filters and globals shared by every template."""

from flask import request, url_for

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
    return url_for(request.endpoint, **(request.view_args or {}), **args)


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
    app.jinja_env.globals["reference"] = reference
    from orders import states

    app.jinja_env.globals["order_states"] = states  # the one table of order statuses
    app.jinja_env.filters["milestone_label"] = states.milestone_label
    app.jinja_env.filters["milestone_badge"] = states.milestone_badge
