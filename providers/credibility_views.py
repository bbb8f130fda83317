"""Credibility pages: the public explanation, and the monitors' console page (staff only)
listing providers and enterprises by score with trend, alerts, detail and actions.

Views are thin: they parse input, call providers.credibility and render. Templates show a
breakdown through ``credibility_view(org)`` (a context helper), so the pages of other areas
(institution profile, account) include ``credibility/_breakdown.html`` without new view code.
"""

from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from catalog.services import paginate, parse_page
from marketplace.database import db, utcnow
from marketplace.errors import render_error
from marketplace.models import Organisation
from marketplace.permissions import staff_required
from providers import credibility, forms
from providers.errors import PermissionDenied, RuleError

bp = Blueprint("credibility", __name__)


@dataclass
class CredibilityView:
    org: Organisation
    result: credibility.CredibilityResult
    chart: dict

    @property
    def description(self) -> str:
        return credibility.LEVEL_DESCRIPTIONS.get(self.result.level, "")


def credibility_view(org: Organisation | None) -> CredibilityView | None:
    """The breakdown as it stands now and the history chart data of ``org``."""
    if org is None or org.kind not in ("provider", "enterprise"):
        return None
    now = utcnow()
    result = credibility.current(db.session, org, now)
    return CredibilityView(org=org, result=result,
                           chart=credibility.chart_data(db.session, org, now, result))


@bp.app_context_processor
def _helpers():
    return {"credibility_view": credibility_view, "credibility_levels": credibility.LEVELS}


@bp.errorhandler(PermissionDenied)
def _forbidden(exc):
    db.session.rollback()
    return render_error(403)


# --------------------------------------------------------------------------- public

@bp.get("/credibility")
def explained():
    return render_template("credibility/explained.html", weights=credibility.WEIGHTS,
                           labels=credibility.PART_LABELS, levels=credibility.LEVELS,
                           descriptions=credibility.LEVEL_DESCRIPTIONS)


# --------------------------------------------------------------------------- console

def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def _threshold() -> int:
    return int(current_app.config.get("CREDIBILITY_ALERT_BELOW",
                                      credibility.DEFAULT_ALERT_BELOW))


@bp.get("/staff/credibility")
@staff_required
def console_index():
    filters = credibility.ConsoleFilters.from_args(request.args)
    threshold = _threshold()
    page = paginate(db.session, credibility.console_statement(filters, threshold),
                    parse_page(request.args.get("page")), _page_size())
    now = utcnow()
    trends = credibility.trends(db.session, [org.id for org in page.items], now)
    alerts = credibility.low_credibility_alerts(db.session, 8, threshold=threshold, now=now)
    return render_template(
        "credibility/console_index.html", page=page, filters=filters, trends=trends,
        alerts=alerts, threshold=threshold, levels=credibility.LEVELS,
        sorts=credibility.CONSOLE_SORTS,
        counts={kind: credibility.level_counts(db.session, kind)
                for kind in ("provider", "enterprise")})


def _organisation(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None or org.kind not in ("provider", "enterprise"):
        abort(404)
    return org


def _detail_page(org: Organisation, form=None, action: str | None = None, status: int = 200):
    return render_template(
        "credibility/console_detail.html", org=org, cred=credibility_view(org),
        form=form or forms.ReasonForm(formdata=None), action=action,
        trend=credibility.trends(db.session, [org.id], utcnow()).get(org.id),
        orders=credibility.recent_orders(db.session, org, 10),
        decisions=credibility.actions_history(db.session, org),
        action_labels=credibility.ACTION_LABELS, threshold=_threshold()), status


@bp.get("/staff/credibility/<int:org_id>")
@staff_required
def console_detail(org_id):
    return _detail_page(_organisation(org_id))


ACTIONS = {
    "watch": (_l("%(name)s is on watch."), "info"),
    "unwatch": (_l("%(name)s is no longer on watch."), "success"),
    "suspend": (_l("%(name)s is suspended."), "warning"),
    "reinstate": (_l("%(name)s is reinstated."), "success"),
    "verify": (_l("%(name)s is verified."), "success"),
    "unverify": (_l("%(name)s is no longer verified."), "info"),
}


@bp.post("/staff/credibility/<int:org_id>/"
         "<any(watch, unwatch, suspend, reinstate, verify, unverify):action>")
@staff_required
def console_action(org_id, action):
    org = _organisation(org_id)
    form = forms.ReasonForm()
    if not form.validate_on_submit():
        return _detail_page(org, form, action, status=422)
    staff = current_user._get_current_object()
    try:
        if action in ("watch", "unwatch"):
            credibility.set_watch(db.session, staff, org, action == "watch", form.reason.data)
        elif action in ("verify", "unverify"):
            credibility.set_enterprise_verified(db.session, staff, org, action == "verify",
                                                form.reason.data)
        elif action == "suspend":
            credibility.suspend(db.session, staff, org, form.reason.data)
        else:
            credibility.reinstate(db.session, staff, org, form.reason.data)
    except RuleError as exc:
        db.session.rollback()
        if exc.field == "reason":
            form.reason.errors = [*form.reason.errors, exc.message]
            return _detail_page(org, form, action, status=422)
        flash(exc.message, "warning")
        return _detail_page(org, forms.ReasonForm(formdata=None), status=409)
    db.session.commit()
    message, category = ACTIONS[action]
    flash(str(message) % {"name": org.name}, category)
    return redirect(url_for("credibility.console_detail", org_id=org.id))
