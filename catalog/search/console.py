"""Staff pages of search (issue 18): synonyms and search analytics; and the public
click-through that counts which listing a search led to.

Thin views: rules live in catalog.search.synonyms and catalog.search.analytics.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from catalog.models import Product
from catalog.search import analytics as search_analytics
from catalog.search import synonyms
from marketplace.database import db
from marketplace.i18n import select_locale
from marketplace.permissions import staff_required

log = logging.getLogger(__name__)

bp = Blueprint("search_console", __name__, url_prefix="/staff/search")
public_bp = Blueprint("search_clicks", __name__)


# --------------------------------------------------------------------------- logging searches

def request_locale() -> str:
    """The interface language the search was made in, as far as analytics cares (zh or en):
    the visitor's chosen or accepted language (marketplace.i18n)."""
    return select_locale().split("_", 1)[0].lower()


# Result counts of recently rendered search pages by path: a page served from the page cache
# (catalog.page_cache) does not run the view, but its count is the one rendered with it.
_recent_totals: OrderedDict[str, int] = OrderedDict()
_recent_lock = threading.Lock()
_RECENT_MAX = 5000


def note_results(total: int) -> None:
    """Called by the search view with the page's result count."""
    g.search_total = total
    with _recent_lock:
        _recent_totals[request.full_path] = total
        _recent_totals.move_to_end(request.full_path)
        while len(_recent_totals) > _RECENT_MAX:
            _recent_totals.popitem(last=False)


def logs_searches(view):
    """Count first result pages of typed queries in the analytics (outside the page cache,
    so cached pages count too). Never fails the search: a logging error is only logged."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        response = view(*args, **kwargs)
        query = request.args.get("q", "")
        first_page = request.args.get("page", "1") in ("", "1")
        if (query.strip() and first_page and response.status_code == 200
                and request.headers.get("HX-Request") != "true"
                and current_app.config.get("SEARCH_ANALYTICS", True)):
            total = g.get("search_total", _recent_totals.get(request.full_path))
            if total is not None:
                due = _searches.add(query, total, request_locale(),
                                    current_app.config.get("SEARCH_ANALYTICS_INTERVAL") or 0)
                if due:
                    _record(lambda s: _write_searches(s, due))
        return response

    return wrapper


class _SearchCounts:
    """Searches counted in this process and written together at most every ``interval``
    seconds: a search page served from the page cache then costs no write and commit."""

    MAX_PENDING = 500

    def __init__(self):
        self._pending: dict[tuple, list[int]] = {}
        self._lock = threading.Lock()
        self._written = time.monotonic()

    def add(self, query: str, total: int, locale: str, interval: float) -> list:
        key = (search_analytics.today(), query, locale)
        with self._lock:
            counts = self._pending.setdefault(key, [0, 0, 0])
            counts[0] += 1
            counts[1] += int(total == 0)
            counts[2] = total
            now = time.monotonic()
            if (interval > 0 and now - self._written < interval
                    and len(self._pending) < self.MAX_PENDING):
                return []
            due, self._pending = list(self._pending.items()), {}
            self._written = now
            return due


_searches = _SearchCounts()


def _write_searches(session, due) -> None:
    for (day, query, locale), (searches, zero, latest) in due:
        search_analytics.record_search(session, query, latest, locale, day=day,
                                       searches=searches, zero_results=zero)


def _record(action) -> None:
    """Write analytics in a short transaction of their own (not the request's)."""
    try:
        with Session(bind=db.engine) as session:
            action(session)
            session.commit()
    except Exception:  # analytics must never break searching
        log.exception("search analytics not recorded")


@public_bp.get("/search/go/<int:product_id>")
def click(product_id: int):
    """A search hit's link: count the click for the query, then open the listing."""
    query = request.args.get("q", "")
    if query.strip() and db.session.get(Product, product_id) is not None:
        _record(lambda s: search_analytics.record_click(s, query, product_id,
                                                        request_locale()))
    return redirect(url_for("catalog.product", product_id=product_id))


# --------------------------------------------------------------------------- forms

class SynonymForm(FlaskForm):
    phrases = TextAreaField(_l("Phrases that mean the same (one per line, or separated by |)"),
                            validators=[DataRequired(), Length(max=2000)],
                            render_kw={"rows": 2})
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class QuerySynonymForm(FlaskForm):
    query = HiddenField(validators=[DataRequired(), Length(max=200)])
    meaning = StringField(_l("Means"), validators=[DataRequired(), Length(max=60)])


class DeleteForm(FlaskForm):
    pass


def _staff():
    return current_user._get_current_object()


# --------------------------------------------------------------------------- synonyms

@bp.get("/synonyms")
@staff_required
def synonym_list():
    needle = request.args.get("q", "")[:60]
    return render_template(
        "search_console/synonyms.html", groups=synonyms.list_groups(db.session, needle),
        needle=needle, form=SynonymForm(formdata=None), delete_form=DeleteForm(formdata=None),
        console_active="search")


@bp.post("/synonyms")
@staff_required
def synonym_create():
    form = SynonymForm()
    if form.validate_on_submit():
        try:
            group = synonyms.create_group(db.session, _staff(), form.phrases.data,
                                          form.note.data)
        except synonyms.SynonymError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(_("Synonym group added: %(phrases)s.", phrases=" / ".join(group.phrases)),
                  "success")
    else:
        flash(_form_problem(form), "danger")
    return redirect(url_for("search_console.synonym_list"))


@bp.post("/synonyms/<int:group_id>")
@staff_required
def synonym_update(group_id: int):
    form = SynonymForm()
    if form.validate_on_submit():
        try:
            synonyms.update_group(db.session, _staff(), group_id, form.phrases.data,
                                  form.note.data)
        except synonyms.SynonymError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(_("Synonym group saved."), "success")
    else:
        flash(_form_problem(form), "danger")
    return redirect(url_for("search_console.synonym_list", _anchor=f"group-{group_id}"))


@bp.post("/synonyms/<int:group_id>/delete")
@staff_required
def synonym_delete(group_id: int):
    if not DeleteForm().validate_on_submit():
        abort(400)
    try:
        synonyms.delete_group(db.session, _staff(), group_id)
    except synonyms.SynonymError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash(_("Synonym group deleted."), "success")
    return redirect(url_for("search_console.synonym_list"))


def _form_problem(form) -> str:
    for errors in form.errors.values():
        if errors:
            return _("Not saved: %(problem)s", problem=errors[0])
    return _("Not saved.")


# --------------------------------------------------------------------------- analytics

@bp.get("/analytics")
@staff_required
def analytics():
    period = search_analytics.Period.from_args(request.args)
    reports = {kind: search_analytics.report(db.session, kind, period)
               for kind in search_analytics.REPORTS}
    return render_template(
        "search_console/analytics.html", period=period, reports=reports,
        titles=search_analytics.REPORTS, totals=search_analytics.totals(db.session, period),
        synonym_form=QuerySynonymForm(formdata=None), console_active="search")


@bp.get("/analytics/<kind>.csv")
@staff_required
def analytics_csv(kind: str):
    if kind not in search_analytics.REPORTS:
        abort(404)
    period = search_analytics.Period.from_args(request.args)
    rows = search_analytics.report(db.session, kind, period, limit=None)
    filename = f"search-{kind}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(search_analytics.report_csv(rows, period), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/analytics/synonym")
@staff_required
def analytics_synonym():
    """One step from a query that found nothing to a synonym of what it means."""
    form = QuerySynonymForm()
    back = url_for("search_console.analytics", **{k: v for k, v in request.args.items()
                                                  if k in ("from", "to")})
    if not form.validate_on_submit():
        flash(_form_problem(form), "danger")
        return redirect(back)
    try:
        group = synonyms.add_query_as_synonym(db.session, _staff(), form.query.data,
                                              form.meaning.data)
    except synonyms.SynonymError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(_("“%(query)s” now searches like: %(phrases)s.", query=form.query.data,
                phrases=" / ".join(group.phrases)), "success")
    return redirect(back)

