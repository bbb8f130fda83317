"""The monitors' console (staff only): dashboard, order progress with SLA status,
interventions and the staff audit log.

Views are thin: they parse input, call ``marketplace.console_service`` and render.
"""

from datetime import UTC

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeLocalField, RadioField, SelectField, TextAreaField
from wtforms.validators import Optional

from marketplace import audit as audit_trail
from marketplace import console_service
from marketplace.database import db, utcnow
from marketplace.i18n import format_date, local_name, platform_zone
from marketplace.paging import parse_page
from marketplace.permissions import has_role, staff_required
from orders import services as order_services
from orders import sla, states, workflow
from orders.forms import RulingForm, choices
from orders.views import order_page, staff_detail_page
from providers.credibility.score import level_label as credibility_level_label

bp = Blueprint("console", __name__, url_prefix="/staff", cli_group=None)


# (key, label, icon, endpoint candidates). A link shows only when its endpoint is registered,
# so pages other areas add later appear by themselves and missing ones never break the nav.
NAV_ITEMS = (
    ("dashboard", _l("Dashboard"), "bi-speedometer2", ("staff.console",)),
    ("progress", _l("Progress"), "bi-hourglass-split", ("console.progress",)),
    ("orders", _l("Orders"), "bi-receipt", ("orders_admin.orders",)),
    ("credibility", _l("Credibility"), "bi-shield-shaded", ("credibility.console_index",)),
    ("settlement", _l("Settlement"), "bi-cash-coin", ("settlement.batches",)),
    ("reconciliation", _l("Reconciliation"), "bi-arrow-left-right", ("settlement.reconciliation",)),
    ("reviews", _l("Reviews"), "bi-star-half",
     ("reviews.staff_list",)),
    ("verification", _l("Verification"), "bi-patch-check", ("review.verification_queue",)),
    ("moderation", _l("Moderation"), "bi-shield-check", ("review.moderation_queue",)),
    ("needs", _l("Needs"), "bi-megaphone", ("demand.staff_needs",)),
    ("vouchers", _l("Vouchers"), "bi-ticket-perforated", ("orders_admin.voucher_programmes",)),
    ("commissions", _l("Commissions"), "bi-percent", ("orders_admin.commissions",)),
    ("audit", _l("Audit log"), "bi-journal-text", ("console.audit",)),
    ("search", _l("Search"), "bi-search", ("search_console.analytics",)),
)
ADMIN_ONLY = {"commissions"}
# A dispute ruling as staff pages show it (orders.services.RULINGS holds the codes).
RULING_LABELS = {"full": _l("Full refund"), "partial": _l("Partial refund"),
                 "none": _l("No refund")}


def nav_items(user) -> list[tuple[str, str, str, str]]:
    """(key, label, icon, endpoint) for every console page that exists and ``user`` may open."""
    items = []
    for key, label, icon, candidates in NAV_ITEMS:
        if key in ADMIN_ONLY and not has_role(user, "admin"):
            continue
        endpoint = next((e for e in candidates if e in current_app.view_functions), None)
        if endpoint:
            items.append((key, label, icon, endpoint))
    return items


@bp.app_context_processor
def _console_nav():
    return {"console_nav_items": nav_items,
            "console_has_endpoint": lambda endpoint: endpoint in current_app.view_functions,
            "audit_action_label": audit_trail.action_label,
            "audit_target_label": audit_trail.target_label,
            "audit_detail_label": audit_trail.detail_label,
            "ruling_label": lambda ruling: RULING_LABELS.get(ruling, ruling)}


# The credibility badge is on public pages too, some rendered outside a request's context
# processors (cached fragments): a global of the Jinja environment.
bp.add_app_template_global(credibility_level_label, "credibility_level_label")


# --------------------------------------------------------------------------- forms

ROWS = {"rows": 2}


class NoteForm(FlaskForm):
    reason = TextAreaField(_l("Note (shown to both parties)"), validators=[Optional()],
                           render_kw=ROWS)


class ExtendForm(FlaskForm):
    new_deadline = DateTimeLocalField(_l("New deadline (Beijing time)"), format="%Y-%m-%dT%H:%M",
                                      validators=[Optional()])
    reason = TextAreaField(_l("Reason"), validators=[Optional()], render_kw=ROWS)


class MilestoneExtendForm(FlaskForm):
    milestone = SelectField(_l("Milestone"), coerce=int, choices=[], validate_choice=False,
                            validators=[Optional()])
    new_due_date = DateField(_l("New due date (Beijing calendar day)"), validators=[Optional()])
    reason = TextAreaField(_l("Reason"), validators=[Optional()], render_kw=ROWS)


class NudgeForm(FlaskForm):
    party = RadioField(_l("Remind"), choices=choices([("provider", _l("The institution")),
                                                     ("buyer", _l("The buyer"))]),
                       default="provider", validators=[Optional()], validate_choice=False)
    reason = TextAreaField(_l("What should they do?"), validators=[Optional()], render_kw=ROWS)


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason for cancelling (shown to both parties)"),
                           validators=[Optional()], render_kw=ROWS)


INTERVENTION_FORMS = {"note": NoteForm, "extend": ExtendForm,
                      "milestone": MilestoneExtendForm, "nudge": NudgeForm,
                      "cancel": CancelForm}


@order_page.STAFF_PANELS.append
def intervention_context(order, bound: dict | None = None) -> dict:
    """Forms and SLA status for the staff order page (blank forms unless one is bound)."""
    forms = {name: cls(prefix=name, formdata=None) for name, cls in INTERVENTION_FORMS.items()}
    forms.update(bound or {})
    now = utcnow()
    # Milestones staff may extend: those still awaiting the institution's submission, while
    # the work is under way (the page shows the milestones then: no extra query).
    extendable = [m for m in order.milestones if m.status in sla.AWAITING_SUBMISSION] \
        if console_service.milestones_extendable(order) else []
    forms["milestone"].milestone.choices = [
        (m.id, f"{m.title} ({format_date(m.due_date)})" if m.due_date else m.title)
        for m in extendable]
    return {"console_forms": forms, "console_sla": sla.classify(order, now, _warning_days()),
            "console_extendable_milestones": extendable,
            "console_deadline_field": sla.deadline_field(order),
            # which interventions apply, decided here (the templates only render them)
            "console_is_open": states.is_open(order.status),
            "console_can_cancel": workflow.can(order, "cancel", _staff())}


# --------------------------------------------------------------------------- helpers

def _staff():
    return current_user._get_current_object()


def _warning_days() -> int:
    return int(current_app.config.get("SLA_WARNING_DAYS", sla.DEFAULT_WARNING_DAYS))


def _order(order_id: int):
    order = order_services.load(db.session, order_id)
    if order is None:
        abort(404)
    return order


def _apply_errors(form, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        target = getattr(form, name, None) if name else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*list(target.errors or []), message]
        else:
            form.form_errors.append(message)


def _rerender(order_id: int, name: str, form):
    """The staff order page again, with the refused form and its messages (HTTP 400)."""
    db.session.rollback()
    if name == "ruling":
        return staff_detail_page(order_id, status=400, ruling_form=form, console_open=name)
    return staff_detail_page(order_id, status=400, console_bound={name: form},
                             console_open=name)


def _field_errors(form) -> dict[str, str]:
    return {name: errors[0] for name, errors in form.errors.items()
            if errors and name != "csrf_token"}


# --------------------------------------------------------------------------- dashboard

def dashboard_page():
    """The console dashboard (served at /staff by ``staff.console``)."""
    period = request.args.get("period", "30d")
    data = console_service.dashboard(
        db.session, utcnow(), period=period, currency=current_app.config.get("CURRENCY", "CNY"),
        warning_days=_warning_days())
    chart = {
        "labels": data.series.labels,
        "gmv": [amount / 100 for amount in data.series.gmv],
        "orders": data.series.orders,
        "states": {"labels": [workflow.status_label(s) for s in data.by_state],
                   "values": list(data.by_state.values())},
        "categories": {"labels": [local_name(f.category) if f.category else _("No category")
                                  for f in data.by_category],
                       "values": [f.orders for f in data.by_category]},
        "currency": data.currency,
        # the charts' words in the page's language ({name} slots are filled by console.js)
        "text": {"gmv": _("GMV"), "orders": _("Orders placed"),
                 "gmv_tooltip": _("GMV {amount}"), "orders_tooltip": _("{count} orders")},
    }
    return render_template("console/dashboard.html", data=data, chart=chart,
                           periods=console_service.PERIODS,
                           overview=console_service.overview(db.session),
                           status_label=workflow.status_label)


# --------------------------------------------------------------------------- progress

@bp.get("/progress")
@staff_required
def progress():
    filters = console_service.ProgressFilters.from_args(request.args)
    result = console_service.progress(
        db.session, filters, utcnow(), page=parse_page(request.args.get("page")),
        page_size=int(current_app.config.get("PAGE_SIZE") or 24), warning_days=_warning_days(),
        after=request.args.get("after"), before=request.args.get("before"))
    return render_template("console/progress.html", result=result, filters=filters,
                           sorts=console_service.SORTS,
                           states=console_service.OPEN_STATUSES, sla_labels=sla.SLA_LABELS,
                           status_label=workflow.status_label, status_badge=workflow.status_badge)


# --------------------------------------------------------------------------- interventions

def _intervene(order_id: int, name: str, action, success: str):
    order = _order(order_id)
    form = INTERVENTION_FORMS[name](prefix=name)
    if not form.validate_on_submit():
        return _rerender(order_id, name, form)
    try:
        outcome = action(order, form)
        db.session.commit()
    except console_service.InterventionError as exc:
        _apply_errors(form, exc.errors)
        return _rerender(order_id, name, form)
    except workflow.WorkflowError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        return _rerender(order_id, name, form)
    warning = getattr(outcome, "warning", None)
    flash(success, "success")
    if warning:
        flash(warning, "warning")
    return redirect(url_for("orders.staff_order", order_id=order.id))


@bp.post("/orders/<int:order_id>/note")
@staff_required
def note(order_id):
    return _intervene(order_id, "note", lambda order, form: console_service.add_note(
        db.session, order, _staff(), form.reason.data), _("Note added to the timeline; both "
        "parties have been told."))


@bp.post("/orders/<int:order_id>/extend")
@staff_required
def extend(order_id):
    def action(order, form):
        value = form.new_deadline.data
        return console_service.extend_deadline(
            db.session, order, _staff(),
            # typed in the platform's time zone, like every time the console shows
            value.replace(tzinfo=platform_zone()).astimezone(UTC) if value else None,
            form.reason.data, utcnow())

    return _intervene(order_id, "extend", action, _("Deadline extended; both parties have been "
                      "told."))


@bp.post("/orders/<int:order_id>/milestone-extend")
@staff_required
def extend_milestone(order_id):
    return _intervene(order_id, "milestone", lambda order, form: console_service.extend_milestone(
        db.session, order, _staff(), form.milestone.data, form.new_due_date.data,
        form.reason.data, utcnow()), _("Milestone extended; both parties have been told."))


@bp.post("/orders/<int:order_id>/nudge")
@staff_required
def nudge(order_id):
    return _intervene(order_id, "nudge", lambda order, form: console_service.nudge(
        db.session, order, _staff(), form.party.data, form.reason.data),
        _("Reminder sent (notification and email)."))


@bp.post("/orders/<int:order_id>/cancel")
@staff_required
def cancel(order_id):
    return _intervene(order_id, "cancel", lambda order, form: console_service.cancel_with_refund(
        db.session, order, _staff(), form.reason.data),
        _("Order cancelled; held funds released and received money refunded."))


@bp.post("/orders/<int:order_id>/rule")
@staff_required
def rule(order_id):
    order = _order(order_id)
    form = RulingForm(prefix="ruling")
    form.validate_on_submit()
    errors = _field_errors(form)
    if "csrf_token" in form.errors:
        abort(400, _("The form expired; reload the page and try again."))
    if form.refund.data and "refund" not in errors and form.ruling.data == "partial" \
            and form.refund.amount is None:
        errors["refund"] = _("Enter an amount like 1,200.00.")
    try:
        if errors:
            raise console_service.InterventionError(errors)
        outcome = console_service.rule(db.session, order, _staff(), form.ruling.data,
                                       form.refund.amount, form.note.data or "")
    except console_service.InterventionError as exc:
        for key in list(form.errors):
            getattr(form, key).errors = []
        _apply_errors(form, {"note" if k == "reason" else k: v for k, v in exc.errors.items()})
        return _rerender(order_id, "ruling", form)
    except (workflow.WorkflowError, order_services.OrderError) as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        return _rerender(order_id, "ruling", form)
    flash(_("Ruling recorded and the money moved accordingly."), "success")
    if outcome.warning:
        flash(outcome.warning, "warning")
    return redirect(url_for("orders.staff_order", order_id=order.id))


# --------------------------------------------------------------------------- audit log

@bp.get("/audit")
@staff_required
def audit():
    filters = console_service.AuditFilters.from_args(request.args)
    page = console_service.audit_page(db.session, filters,
                                      page=parse_page(request.args.get("page")))
    actions, target_types = console_service.audit_choices(db.session)
    return render_template("console/audit.html", page=page, filters=filters, actions=actions,
                           target_types=target_types)
