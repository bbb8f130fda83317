"""Settlement pages: staff batches, statements, payouts, CSV exports and the reconciliation
with Stripe (under /staff), and the institution's own read-only statements (/provider).

Thin: parse input, call orders.settlement / orders.reconciliation, render.
"""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import BooleanField, DateField, RadioField, StringField
from wtforms.validators import Length, Optional

from catalog.services import parse_page
from marketplace.database import db
from marketplace.i18n import local_today
from marketplace.permissions import can_view_statement, provider_required, staff_required
from orders import ledger, settlement
from orders import reconciliation as recon
from orders.models import (
    Order,
    SettlementBatch,
    SettlementItem,
    SettlementStatement,
    VoucherProgramme,
)
from orders.settlement import SettlementError, UnfinishedPeriod

bp = Blueprint("settlement", __name__)


def _user():
    return current_user._get_current_object()


def _currency() -> str:
    return current_app.config.get("CURRENCY", "CNY")


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


class RunForm(FlaskForm):
    kind = RadioField(_l("Period"), choices=[("month", _l("A calendar month")),
                                             ("range", _l("From / to dates"))], default="month")
    month = StringField(_l("Month"), validators=[Optional(), Length(max=7)],
                        description=_l("YYYY-MM, e.g. 2026-11"))
    start = DateField(_l("First day"), validators=[Optional()])
    end = DateField(_l("Last day"), validators=[Optional()])
    # Shown once a run for a period that is not over yet was refused.
    confirm_unfinished = BooleanField(_l("Settle this period although it is not over yet"))


class PayForm(FlaskForm):
    reference = StringField(_l("Bank transfer reference"), validators=[Length(max=200)],
                            description=_l("As printed on the bank's transfer receipt."))


class RefreshForm(FlaskForm):
    pass


def _csv_response(chunks, filename: str) -> Response:
    """A CSV download streamed as ``chunks`` (text) are produced: a month's batch is tens of
    thousands of rows, never held in memory whole, and the first bytes leave at once."""
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _batch(batch_id: int) -> SettlementBatch:
    batch = db.session.get(SettlementBatch, batch_id, options=[
        selectinload(SettlementBatch.statements).joinedload(SettlementStatement.provider)])
    if batch is None:
        abort(404)
    return batch


def _statement(statement_id: int) -> SettlementStatement:
    # The page lists every order of the statement: load them with it, not one by one.
    statement = db.session.get(SettlementStatement, statement_id, options=[
        joinedload(SettlementStatement.batch), joinedload(SettlementStatement.provider),
        selectinload(SettlementStatement.items).joinedload(SettlementItem.order)
        .joinedload(Order.buyer)])
    if statement is None or not can_view_statement(current_user, statement):
        abort(404)  # never reveal that another institution's statement exists
    return statement


# --------------------------------------------------------------------------- batches

def _batches_page(form: RunForm, status: int = 200):
    page = settlement.list_batches(db.session, parse_page(request.args.get("page")),
                                   _page_size())
    today = local_today()
    backlog, oldest = settlement.unbatched_backlog(db.session, today.replace(day=1), _currency())
    programmes = db.session.scalars(select(VoucherProgramme).order_by(
        VoucherProgramme.valid_from.desc(), VoucherProgramme.id.desc())).all()
    return render_template("settlement/batches.html", page=page, form=form, backlog=backlog,
                           oldest=oldest, programmes=programmes,
                           default_month=settlement.previous_month(today),
                           batch_status=settlement.batch_status,
                           status_labels=settlement.STATUS_LABELS,
                           batch_number=settlement.batch_number), status


@bp.get("/staff/settlement")
@staff_required
def batches():
    form = RunForm(formdata=None)
    form.month.data = settlement.previous_month(local_today())
    return _batches_page(form)


@bp.post("/staff/settlement/run")
@staff_required
def run():
    form = RunForm()
    if not form.validate_on_submit():
        return _batches_page(form, 400)
    try:
        if form.kind.data == "range":
            period = settlement.period_between(form.start.data, form.end.data)
        else:
            period = settlement.month(form.month.data or "")
        settlement.ensure_period_over(period, local_today(), form.confirm_unfinished.data)
        result = settlement.run_period(db.session, period, _user(), _currency())
    except SettlementError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        form.needs_confirmation = isinstance(exc, UnfinishedPeriod)
        return _batches_page(form, exc.status)
    db.session.commit()
    waiting = (" " + ngettext("%(num)d order of the period is waiting for its money to be "
                              "final and will join a later run.",
                              "%(num)d orders of the period are waiting for their money to be "
                              "final and will join a later run.", len(result.waiting))
               if result.waiting else "")
    if result.batch is None:
        flash(_("No orders to settle for %(period)s.", period=period.label) + waiting, "info")
        return redirect(url_for("settlement.batches"))
    number = settlement.batch_number(result.batch)
    if result.created:
        flash(_("Settlement batch %(number)s created: %(count)s orders.", number=number,
                count=result.batch.order_count) + waiting, "success")
    else:
        flash(_("%(period)s is already settled in batch %(number)s; no new orders since.",
                period=period.label, number=number) + waiting, "info")
    return redirect(url_for("settlement.batch", batch_id=result.batch.id))


@bp.get("/staff/settlement/<int:batch_id>")
@staff_required
def batch(batch_id):
    b = _batch(batch_id)
    return render_template("settlement/batch.html", batch=b,
                           number=settlement.batch_number(b),
                           period=settlement.Period(b.period_start, b.period_end),
                           status=settlement.batch_status(b),
                           status_labels=settlement.STATUS_LABELS)


@bp.get("/staff/settlement/<int:batch_id>/export.csv")
@staff_required
def batch_csv(batch_id):
    b = _batch(batch_id)
    return _csv_response(settlement.iter_batch_csv(db.session, b), settlement.batch_filename(b))


# --------------------------------------------------------------------------- statements

def _statement_page(statement: SettlementStatement, form: PayForm, status: int = 200,
                    side: str = "staff"):
    items = statement.items
    entries = ledger.entries_by_order(db.session, [item.order_id for item in items])
    stale = settlement.stale_items(db.session, statement) if statement.paid_at is None else []
    b = statement.batch
    return render_template(
        "settlement/statement.html", statement=statement, batch=b, items=items,
        entries=entries, stale=stale, form=form, refresh_form=RefreshForm(), side=side,
        number=settlement.batch_number(b), period=settlement.Period(b.period_start, b.period_end),
        account_label=ledger.account_label, posting_label=ledger.posting_label,
        milestone_titles=settlement.milestone_titles(db.session, items)), status


@bp.get("/staff/settlement/statements/<int:statement_id>")
@staff_required
def statement(statement_id):
    return _statement_page(_statement(statement_id), PayForm(formdata=None))


@bp.post("/staff/settlement/statements/<int:statement_id>/pay")
@staff_required
def pay(statement_id):
    s = _statement(statement_id)
    form = PayForm()
    if not form.validate_on_submit():
        return _statement_page(s, form, 400)
    try:
        settlement.mark_paid(db.session, s, _user(), form.reference.data)
    except SettlementError as exc:
        db.session.rollback()
        if exc.status == 400:
            form.reference.errors = [*form.reference.errors, exc.message]
        else:
            flash(exc.message, "danger")
        return _statement_page(db.session.get(SettlementStatement, statement_id), form,
                               exc.status)
    db.session.commit()
    flash(_("Statement of %(institution)s marked paid (reference %(reference)s); %(count)s "
            "order(s) settled and the institution notified.", institution=s.provider.name,
            reference=s.payout_reference, count=s.order_count), "success")
    return redirect(url_for("settlement.statement", statement_id=s.id))


@bp.post("/staff/settlement/statements/<int:statement_id>/refresh")
@staff_required
def refresh(statement_id):
    s = _statement(statement_id)
    form = RefreshForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        changed = settlement.refresh_statement(db.session, s, _user())
    except SettlementError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("settlement.statement", statement_id=statement_id))
    db.session.commit()
    flash(_("Figures refreshed from the ledger: %(count)s order(s) changed.", count=changed)
          if changed else _("The figures already match the ledger."),
          "success" if changed else "info")
    return redirect(url_for("settlement.statement", statement_id=statement_id))


@bp.get("/staff/settlement/statements/<int:statement_id>/export.csv")
@staff_required
def statement_csv(statement_id):
    s = _statement(statement_id)
    return _csv_response(settlement.iter_statement_csv(db.session, s),
                         settlement.statement_filename(s))


# --------------------------------------------------------------------------- voucher report

@bp.get("/staff/settlement/vouchers")
@staff_required
def vouchers():
    programme = None
    raw = request.args.get("programme", "")
    if raw.isdigit():
        programme = db.session.get(VoucherProgramme, int(raw))
    if programme is None:
        abort(404)
    try:
        period = settlement.month(request.args.get("month", ""))
    except SettlementError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("settlement.batches"))
    if request.args.get("format") == "csv":
        report = settlement.voucher_report(db.session, programme, period, page_size=0)
        return _csv_response(settlement.iter_voucher_csv(db.session, report),
                             settlement.voucher_filename(report))
    report = settlement.voucher_report(db.session, programme, period,
                                       parse_page(request.args.get("page")),
                                       settlement.VOUCHER_PAGE_SIZE)
    return render_template("settlement/vouchers.html", report=report)


# --------------------------------------------------------------------------- reconciliation

@bp.get("/staff/reconciliation")
@staff_required
def reconciliation():
    raw = (request.args.get("month") or f"{local_today():%Y-%m}").strip()
    try:
        period = settlement.month(raw)
    except SettlementError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("settlement.reconciliation"))
    error = report = page = None
    try:
        report = recon.reconcile(db.session, period, recon.gateway())
    except recon.ReconciliationError as exc:
        error = exc.message
    if report is not None:
        page = report.page(parse_page(request.args.get("page")), 50)
    return render_template("settlement/reconciliation.html", period=period, report=report,
                           page=page, error=error, month=raw, kind_labels=recon.KIND_LABELS)


# --------------------------------------------------------------------------- provider side

@bp.get("/provider/statements")
@provider_required
def provider_statements():
    org = current_user.organisation
    if org is None or org.kind != "provider":
        abort(403)
    page = settlement.statements_of_provider(db.session, org.id,
                                             parse_page(request.args.get("page")), _page_size())
    return render_template("settlement/provider_statements.html", page=page, org=org,
                           batch_number=settlement.batch_number, Period=settlement.Period)


@bp.get("/provider/statements/<int:statement_id>")
@provider_required
def provider_statement(statement_id):
    s = _statement(statement_id)
    return _statement_page(s, PayForm(formdata=None), side="provider")


@bp.get("/provider/statements/<int:statement_id>/export.csv")
@provider_required
def provider_statement_csv(statement_id):
    s = _statement(statement_id)
    return _csv_response(settlement.iter_statement_csv(db.session, s),
                         settlement.statement_filename(s))
