"""The institution's pages: orders received, and the work it reports on an order
(delivery, milestones, progress)."""

import logging

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
)
from flask_babel import gettext as _
from flask_login import login_required

from catalog.services import parse_page
from marketplace.database import db
from marketplace.permissions import role_required
from orders import files as order_files
from orders import forms, milestones, queries, services, workflow
from orders.views import bp
from orders.views.common import (
    _load_order,
    _page_size,
    _post_form,
    _user,
    back_on_refusal,
    order_url,
)
from providers import uploads

log = logging.getLogger(__name__)


@bp.get("/provider/orders")
@role_required("provider")
def provider_orders():
    user = _user()
    if user.organisation_id is None:
        abort(403)
    filters = queries.OrderFilters.from_args(request.args)
    page = queries.list_orders(db.session, filters, "provider", page=parse_page(
        request.args.get("page")), page_size=_page_size(), provider_org_id=user.organisation_id)
    counts = queries.group_counts(db.session, "provider", provider_org_id=user.organisation_id)
    return render_template("orders/list.html", page=page, filters=filters, counts=counts,
                           side="provider", title=_("Orders received"),
                           groups=queries.GROUP_LABELS)


@bp.post("/orders/<int:order_id>/deliver")
@login_required
def deliver(order_id):
    order, _role = _load_order(order_id)
    workflow.check(order, "deliver", _user())
    form = _post_form(forms.DeliverForm, "deliver")
    if form is None:
        return redirect(order_url(order))
    upload_dir = current_app.config["UPLOAD_DIR"]
    with back_on_refusal(order_url(order), uploads.UploadError, services.OrderError):
        pending = order_files.check_uploads(form.files.data or [])
        _outcome, delivery = services.deliver(db.session, order, _user(), form.note.data)
        pending.save(db.session, upload_dir, purpose="delivery", user=_user(),
                     order_id=order.id, progress_update_id=delivery.id)
        db.session.commit()
    flash(_("Delivered. The buyer has been asked to review the work."), "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/milestones")
@login_required
def add_milestone(order_id):
    order, _role = _load_order(order_id)
    form = _post_form(forms.MilestoneForm, "milestone")
    if form is None:
        return redirect(order_url(order))
    with back_on_refusal(order_url(order), services.OrderError):
        services.add_milestone(db.session, order, _user(), form.title.data, form.share.share,
                               form.due_date.data)
    db.session.commit()
    flash(_("Milestone added."), "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/milestones/<int:milestone_id>/submit")
@login_required
def milestone_submit(order_id, milestone_id):
    """The institution submits a milestone (note, files) for the buyer's approval."""
    order, _role = _load_order(order_id)
    if workflow.role_of(order, _user()) != "provider":
        abort(403)
    form = _post_form(forms.MilestoneSubmitForm, f"ms{milestone_id}")
    if form is None:
        return redirect(order_url(order) + "#milestones")
    upload_dir = current_app.config["UPLOAD_DIR"]
    pending = None
    try:
        with back_on_refusal(order_url(order) + "#milestones", uploads.UploadError,
                             services.OrderError):
            pending = order_files.check_uploads(form.files.data or [])
            _milestone, update_ = milestones.submit(db.session, order, _user(), milestone_id,
                                                    form.note.data)
            pending.save(db.session, upload_dir, purpose="progress", user=_user(),
                         order_id=order.id, progress_update_id=update_.id)
            db.session.commit()
    except Exception:
        if pending:
            pending.discard(upload_dir)
        raise
    flash(_("Milestone submitted. The buyer has been asked to approve it."), "success")
    return redirect(order_url(order) + "#milestones")


@bp.post("/orders/<int:order_id>/progress")
@login_required
def progress(order_id):
    order, _role = _load_order(order_id)
    form = _post_form(forms.ProgressForm, "progress")
    if form is None:
        return redirect(order_url(order))
    upload_dir = current_app.config["UPLOAD_DIR"]
    pending = None
    try:
        with back_on_refusal(order_url(order), uploads.UploadError, services.OrderError):
            pending = order_files.check_uploads(form.files.data or [])
            update_ = services.post_progress(db.session, order, _user(), form.percent.data,
                                             form.note.data)
            pending.save(db.session, upload_dir, purpose="progress", user=_user(),
                         order_id=order.id, progress_update_id=update_.id)
            db.session.commit()
    except workflow.WorkflowError:
        if pending:
            pending.discard(upload_dir)
        raise
    flash(_("Progress posted."), "success")
    return redirect(order_url(order))
