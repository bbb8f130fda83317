"""The order page every party sees (buyer, institution, staff), its workflow buttons,
messages and files."""

import logging
from collections.abc import Callable

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from marketplace.database import db, utcnow
from orders import files as order_files
from orders import forms, ledger, milestones, payments, services, sla, vouchers, workflow
from orders.models import Order, OrderFile
from orders.money import format_amount
from orders.views import bp
from orders.views.common import (
    _bank_details,
    _flash_outcome,
    _load_order,
    _post_form,
    _user,
    back_on_refusal,
    order_url,
)
from providers import uploads

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- order page

def _detail(order_id: int, status: int = 200, **extra):
    order, role = _load_order(order_id)
    files = db.session.query(OrderFile).filter(OrderFile.order_id == order.id).order_by(
        OrderFile.id).all()
    redemption = vouchers.redemption_for(db.session, order.id)
    rows = ledger.entries(db.session, order.id)  # read once for every money figure below
    context = dict(
        order=order, role=role,
        # buttons and form flags, once: the template renders them (orders.workflow)
        **workflow.page_actions(order, _user(), role,
                                set(STAFF_DO_ELSEWHERE) if role == "staff" else set()),
        timeline=services.timeline(db.session, order.id),
        messages=services.messages(db.session, order.id),
        requirement_files=[f for f in files if f.purpose == "requirements"],
        buyer_money=ledger.buyer_view(db.session, order),
        provider_money=ledger.provider_view(db.session, order, rows),
        balances=ledger.balances_of(rows) if role == "staff" else None,
        entries=rows if role == "staff" else None,
        redemption=redemption, bank=_bank_details(),
        milestone_form=forms.MilestoneForm(prefix="milestone"),
        milestone_amounts=milestones.amounts(order),
        milestone_days=milestones.auto_approve_days(),
        milestone_submit_forms={m.id: forms.MilestoneSubmitForm(prefix=f"ms{m.id}")
                                for m in order.milestones},
        milestone_changes_forms={m.id: forms.MilestoneChangesForm(prefix=f"mc{m.id}")
                                 for m in order.milestones},
        money_panel=ledger.money_panel(db.session, order, rows),
        clawback_limit=payments.clawback_limit(db.session, order, rows) if role == "staff"
        else 0,
        clawback_form=forms.ClawbackForm(prefix="clawback"),
        progress_form=forms.ProgressForm(prefix="progress"),
        deliver_form=forms.DeliverForm(prefix="deliver"),
        message_form=forms.MessageForm(prefix="message"),
        ruling_form=forms.RulingForm(prefix="ruling"),
        refund_form=forms.RefundForm(prefix="refund"),
        transfer_form=forms.TransferReceivedForm(prefix="transfer"),
        payment=order.live_payment,
        # milestones past their due day without a submission (marked on the page)
        overdue_milestone_ids={m.id for m in sla.overdue_milestones(order, utcnow())},
        failed_payment=next((p for p in reversed(order.payments) if p.status == "failed"), None),
    ) | extra
    if role == "staff":  # monitors' console: SLA status and interventions (marketplace/console)
        bound = extra.pop("console_bound", None)
        for panel in STAFF_PANELS:
            context |= panel(order, bound)
        context |= extra
    return render_template("orders/detail.html", **context), status


# What the staff order page shows besides the order: the console adds its SLA status and
# intervention forms here when it is imported (marketplace/console.py), so the buying area
# shows the panels without importing the app shell above it. Each panel takes the order and
# the forms a refused intervention re-shows, and returns template context.
STAFF_PANELS: list[Callable[[Order, dict | None], dict]] = []


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id):
    return _detail(order_id)


@bp.get("/provider/orders/<int:order_id>")
@login_required
def provider_order(order_id):
    return _detail(order_id)


# --------------------------------------------------------------------------- order actions

SIMPLE_ACTIONS = {
    "accept": (_l("Order accepted. The buyer has been told."),
               lambda o, u, note: services.accept(db.session, o, u, note)),
    "decline": (_l("Order declined; the buyer's money is released."),
                lambda o, u, note: services.decline(db.session, o, u, note)),
    "start": (_l("Marked as in progress."),
              lambda o, u, note: services.start(db.session, o, u, note)),
    "request_revision": (_l("Revision requested."),
                         lambda o, u, note: services.request_revision(db.session, o, u, note)),
    "complete": (_l("Delivery accepted: the order is complete and the payment captured."),
                 lambda o, u, note: services.complete(db.session, o, u, note)),
    "dispute": (_l("Dispute opened. Platform staff will review it."),
                lambda o, u, note: services.dispute(db.session, o, u, note)),
    "cancel": (_l("Order cancelled."),
               lambda o, u, note: services.cancel(db.session, o, u, note)),
    "settle": (_l("Order marked as settled with the institution."),
               lambda o, u, note: services.settle(db.session, o, u, note)),
}


# Workflow steps staff take elsewhere, never with the plain order buttons: a cancel goes
# through the console intervention (refund of what was paid, reason, audit row) and an order
# settles when its settlement statement is paid (a hand-settled order would leave every
# settlement batch, so the institution would never be paid through a statement).
STAFF_DO_ELSEWHERE = {
    "cancel": _l("Staff cancel an order with “Cancel with refund”, giving the reason."),
    "settle": _l("Orders settle when their settlement statement is marked paid "
                 "(Settlement in the staff console)."),
}


@bp.post("/orders/<int:order_id>/actions/<name>")
@login_required
def order_action(order_id, name):
    order, role = _load_order(order_id)
    if name not in SIMPLE_ACTIONS:
        abort(404)
    if role == "staff" and name in STAFF_DO_ELSEWHERE:
        flash(str(STAFF_DO_ELSEWHERE[name]), "warning")
        return redirect(order_url(order))
    message, action = SIMPLE_ACTIONS[name]
    note = (request.form.get("note") or "").strip()[:5000]
    if name == "dispute":  # on the order, or on one of its milestones
        raw = request.form.get("milestone_id") or ""
        milestone_id = int(raw) if raw.isdigit() else None
        action = (lambda o, u, note_: services.dispute(db.session, o, u, note_,  # noqa: E731
                                                        milestone_id=milestone_id))
    with back_on_refusal(order_url(order), workflow.NoteRequired, payments.HoldLapsed,
                         payments.CaptureFailed, services.OrderError):
        outcome = action(order, _user(), note)
    _flash_outcome(outcome, message)
    return redirect(order_url(order))


# --------------------------------------------------------------------------- milestones

@bp.post("/orders/<int:order_id>/milestones/<int:milestone_id>/approve")
@login_required
def milestone_approve(order_id, milestone_id):
    """The buyer approves a submitted milestone: its share is released from escrow."""
    order, _role = _load_order(order_id)
    with back_on_refusal(order_url(order) + "#milestones", services.OrderError):
        milestone = milestones.approve(db.session, order, _user(), milestone_id)
        db.session.commit()
    flash(_("Milestone approved: %(amount)s released to the institution.",
            amount=format_amount(milestone.released_amount, order.currency)), "success")
    return redirect(order_url(order) + "#milestones")


@bp.post("/orders/<int:order_id>/milestones/<int:milestone_id>/changes")
@login_required
def milestone_changes(order_id, milestone_id):
    """The buyer sends a submitted milestone back, with the reason."""
    order, _role = _load_order(order_id)
    if workflow.role_of(order, _user()) != "buyer":
        abort(403)
    form = _post_form(forms.MilestoneChangesForm, f"mc{milestone_id}")
    if form is None:
        return redirect(order_url(order) + "#milestones")
    with back_on_refusal(order_url(order) + "#milestones", services.OrderError):
        milestones.request_changes(db.session, order, _user(), milestone_id, form.reason.data)
        db.session.commit()
    flash(_("Changes requested. The institution has been told."), "success")
    return redirect(order_url(order) + "#milestones")


@bp.post("/orders/<int:order_id>/messages")
@login_required
def message(order_id):
    order, _role = _load_order(order_id)
    form = _post_form(forms.MessageForm, "message")
    if form is None:
        return redirect(order_url(order) + "#messages")
    upload_dir = current_app.config["UPLOAD_DIR"]
    pending = None
    try:
        with back_on_refusal(order_url(order) + "#messages", uploads.UploadError,
                             services.OrderError):
            pending = order_files.check_uploads(form.files.data or [])
            posted = services.post_message(db.session, order, _user(), form.body.data)
            pending.save(db.session, upload_dir, purpose="message", user=_user(),
                         order_id=order.id, message_id=posted.id)
            db.session.commit()
    except workflow.WorkflowError:
        if pending:
            pending.discard(upload_dir)
        raise
    flash(_("Message sent."), "success")
    return redirect(order_url(order) + "#messages")


@bp.get("/orders/<int:order_id>/files/<int:file_id>")
@login_required
def download_file(order_id, file_id):
    order, _role = _load_order(order_id)
    row = db.session.get(OrderFile, file_id)
    if row is None or row.order_id != order.id:
        abort(404)
    return file_response(row)


def file_response(row: OrderFile):
    try:
        path = uploads.path_for(current_app.config["UPLOAD_DIR"], row.stored_name)
    except uploads.UploadError:
        abort(404)
    if not path.is_file():
        abort(404)
    inline = request.args.get("inline") == "1" and row.content_type.startswith("image/")
    response = send_file(path, mimetype=row.content_type, as_attachment=not inline,
                         download_name=row.original_name, max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
