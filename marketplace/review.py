"""Staff review screens: institution verification and listing moderation.

Every route is staff-only; every decision goes through providers.onboarding / listings, which
record who decided, when and why, notify the institution and queue search updates.
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from catalog.models import Category, Product
from marketplace.database import db
from marketplace.errors import render_error
from marketplace.models import Organisation, User
from marketplace.paging import parse_page
from marketplace.permissions import staff_required
from providers import forms, listings, onboarding
from providers.errors import PermissionDenied, RuleError
from providers.models import DOCUMENT_KINDS

bp = Blueprint("review", __name__, url_prefix="/staff")


@bp.errorhandler(PermissionDenied)
def _forbidden(exc):
    db.session.rollback()
    return render_error(403)


@bp.errorhandler(RuleError)
def _conflict(exc):
    db.session.rollback()
    return render_error(409, exc.message)


def _staff() -> User:
    return current_user._get_current_object()


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def _institution(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None or org.kind != "provider":
        abort(404)
    return org


# --------------------------------------------------------------------------- verification

@bp.get("/verification")
@staff_required
def verification_queue():
    status = request.args.get("status", "pending")
    if status not in onboarding.QUEUES:
        status = "pending"
    page = onboarding.queue(db.session, status, page=parse_page(request.args.get("page")),
                            page_size=_page_size())
    return render_template(
        "review/verification_queue.html", page=page, orgs=page.items, status=status,
        queues=onboarding.QUEUES, counts=onboarding.queue_counts(db.session),
        document_counts=onboarding.document_counts(db.session, [o.id for o in page.items]))


def _verification_page(org, form=None, status=200):
    listing_counts = dict(db.session.execute(
        select(Product.status, func.count()).where(Product.provider_id == org.id)
        .group_by(Product.status)).all())
    return render_template(
        "review/verification_detail.html", org=org, form=form or forms.ReasonForm(formdata=None),
        documents=onboarding.documents(db.session, org),
        checklist=onboarding.checklist(db.session, org),
        history=onboarding.history(db.session, org), action_labels=onboarding.ACTION_LABELS,
        document_kinds=DOCUMENT_KINDS, listing_counts=listing_counts,
        members=db.session.scalars(select(User).where(User.organisation_id == org.id)
                                   .order_by(User.is_org_owner.desc(), User.id)).all(),
        statuses=listings.STATUS_LABELS), status


@bp.get("/verification/<int:org_id>")
@staff_required
def verification_detail(org_id):
    return _verification_page(_institution(org_id))


DECISIONS = {
    "approve": (onboarding.approve, "{name} is now verified.", "success"),
    "reject": (onboarding.reject, "The application of {name} was rejected.", "info"),
    "request-info": (onboarding.request_more_info,
                     "{name} has been asked for more documents.", "info"),
    "suspend": (onboarding.suspend, "{name} is suspended; all its listings are hidden.", "warning"),
    "reinstate": (onboarding.reinstate, "{name} is reinstated; its listings are visible again.",
                  "success"),
}


@bp.post("/verification/<int:org_id>/<any(approve, reject, 'request-info', suspend, reinstate):decision>")
@staff_required
def verification_decide(org_id, decision):
    org = _institution(org_id)
    form = forms.ReasonForm()
    if not form.validate_on_submit():
        return _verification_page(org, form, status=422)
    action, message, category = DECISIONS[decision]
    try:
        action(db.session, _staff(), org, form.reason.data)
    except RuleError as exc:
        db.session.rollback()
        if exc.field != "reason":
            raise
        form.reason.errors = [*form.reason.errors, exc.message]
        form.decision = decision
        return _verification_page(org, form, status=422)
    db.session.commit()
    flash(message.format(name=org.name), category)
    if decision in ("suspend", "reinstate"):
        return redirect(url_for("review.verification_detail", org_id=org.id))
    return redirect(url_for("review.verification_queue"))


# --------------------------------------------------------------------------- moderation

@bp.get("/moderation")
@staff_required
def moderation_queue():
    items = listings.moderation_queue(db.session, page=parse_page(request.args.get("page")),
                                      page_size=_page_size())
    suspended = listings.suspended_listings(
        db.session, page=parse_page(request.args.get("suspended_page")), page_size=_page_size())
    return render_template("review/moderation_queue.html", items=items, suspended=suspended,
                           modes=listings.MODE_LABELS)


def _product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product


def _moderation_page(product, form=None, status=200):
    item = listings.pending_item(db.session, product)
    changes = (listings.diff(db.session, item.published, item.proposed) if item
               else listings.diff(db.session, None, listings.read_product(product)))
    return render_template(
        "review/moderation_detail.html", product=product, item=item, changes=changes,
        form=form or forms.ReasonForm(formdata=None), statuses=listings.STATUS_LABELS,
        history=listings.history(db.session, product), action_labels=listings.ACTION_LABELS,
        latest=listings.latest_revision(db.session, product)), status


@bp.get("/moderation/<int:product_id>")
@staff_required
def moderation_detail(product_id):
    return _moderation_page(_product(product_id))


@bp.get("/moderation/<int:product_id>/preview")
@staff_required
def moderation_preview(product_id):
    product = _product(product_id)
    item = listings.pending_item(db.session, product)
    data = item.proposed if item else listings.read_product(product)
    return render_template("portal/listing_preview.html", product=product, data=data,
                           category=db.session.get(Category, data.category_id),
                           org=product.provider, statuses=listings.STATUS_LABELS,
                           modes=listings.MODE_LABELS, staff_view=True, item=item)


MODERATION = {
    "approve": (listings.approve, "Approved: “{title}” is published.", "success"),
    "reject": (listings.reject, "Rejected: the institution has been told why.", "info"),
    "suspend": (listings.suspend_listing, "“{title}” is suspended and hidden from buyers.",
                "warning"),
    "reinstate": (listings.reinstate_listing, "“{title}” is published again.", "success"),
}


@bp.post("/moderation/<int:product_id>/<any(approve, reject, suspend, reinstate):decision>")
@staff_required
def moderation_decide(product_id, decision):
    product = _product(product_id)
    form = forms.ReasonForm()
    if not form.validate_on_submit():
        return _moderation_page(product, form, status=422)
    action, message, category = MODERATION[decision]
    try:
        action(db.session, _staff(), product, form.reason.data)
    except RuleError as exc:
        db.session.rollback()
        if exc.field != "reason":
            raise
        form.reason.errors = [*form.reason.errors, exc.message]
        form.decision = decision
        return _moderation_page(product, form, status=422)
    db.session.commit()
    flash(message.format(title=product.title), category)
    if decision in ("approve", "reject"):
        return redirect(url_for("review.moderation_queue"))
    return redirect(url_for("review.moderation_detail", product_id=product.id))
