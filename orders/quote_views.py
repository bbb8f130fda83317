"""Quote requests (buyer and institution sides) and applications for financial products."""

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
from flask_babel import gettext as _
from flask_login import current_user

from catalog.services import get_product, parse_page
from marketplace.database import db, utcnow
from marketplace.permissions import can_view_quote_request, role_required
from orders import files as order_files
from orders import forms, quotes
from orders.models import OrderFile, Quote
from orders.views import file_response, order_url
from providers import uploads

bp = Blueprint("quotes", __name__)


def _user():
    return current_user._get_current_object()


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def _product_or_404(product_id: int, mode: str):
    product = get_product(db.session, product_id)
    if product is None or product.pricing_mode != mode:
        abort(404)
    return product


@bp.route("/products/<int:product_id>/quote", methods=["GET", "POST"])
@role_required("enterprise")
def request_quote(product_id):
    product = _product_or_404(product_id, "quote")
    form = forms.QuoteRequestForm()
    form.budget.currency = product.currency
    if form.validate_on_submit():
        upload_dir = current_app.config["UPLOAD_DIR"]
        pending = None
        try:
            pending = order_files.check_uploads(form.files.data or [])
            request_ = quotes.request_quote(db.session, _user(), product, form.need.data,
                                            form.budget.amount, form.deadline.data)
            pending.save(db.session, upload_dir, purpose="quote_request", user=_user(),
                         quote_request_id=request_.id)
            db.session.commit()
        except uploads.UploadError as exc:
            db.session.rollback()
            form.files.errors = [exc.message]
        except quotes.QuoteError as exc:
            db.session.rollback()
            if pending:
                pending.discard(upload_dir)
            if exc.status != 400:
                abort(exc.status, exc.message)
            form.form_errors.append(exc.message)
        else:
            flash(_("Quote request sent. The institution will answer with a price, a due date "
                    "and milestones."), "success")
            return redirect(url_for("quotes.buyer_request", request_id=request_.id))
    return render_template("orders/quote_request_form.html", product=product, form=form)


@bp.get("/quotes")
@role_required("enterprise")
def buyer_requests():
    return render_template("orders/quote_requests.html", side="buyer",
                           page=quotes.requests_for(
                               db.session, page=parse_page(request.args.get("page")),
                               page_size=_page_size(), buyer_org_id=current_user.organisation_id),
                           statuses=quotes.request_statuses("buyer"))


@bp.get("/provider/quotes")
@role_required("provider")
def provider_requests():
    if current_user.organisation_id is None:
        abort(403)  # no institution: without this filter every institution's requests show
    status = request.args.get("status")
    status = status if status in quotes.REQUEST_STATUS else None
    return render_template("orders/quote_requests.html", side="provider",
                           page=quotes.requests_for(
                               db.session, page=parse_page(request.args.get("page")),
                               page_size=_page_size(),
                               provider_org_id=current_user.organisation_id, status=status),
                           statuses=quotes.request_statuses("provider"), status=status)


def _load_request(request_id: int):
    found = quotes.load_request(db.session, request_id)
    if found is None or not can_view_quote_request(current_user, found):
        abort(404)
    return found


@bp.get("/quotes/<int:request_id>")
@role_required("enterprise", "staff")
def buyer_request(request_id):
    found = _load_request(request_id)
    return render_template("orders/quote_detail.html", request_=found, side="buyer",
                           quote=quotes.current_quote(found),
                           statuses=quotes.request_statuses("buyer"), now=utcnow())


@bp.route("/provider/quotes/<int:request_id>", methods=["GET", "POST"])
@role_required("provider")
def provider_request(request_id):
    found = _load_request(request_id)
    form = forms.QuoteForm()
    form.price.currency = found.currency
    if not form.is_submitted():
        form.valid_days.data = int(current_app.config.get("QUOTE_VALID_DAYS", 14))
    if form.validate_on_submit():
        try:
            milestones = quotes.parse_milestones(form.milestones.data or "")
            quotes.send_quote(db.session, _user(), found, form.price.amount, form.due_date.data,
                              form.note.data or "", milestones, form.valid_days.data)
            db.session.commit()
        except quotes.QuoteError as exc:
            db.session.rollback()
            if exc.status != 400:
                abort(exc.status, exc.message)
            form.form_errors.append(exc.message)
        else:
            flash(_("Quote sent to the buyer."), "success")
            return redirect(url_for("quotes.provider_request", request_id=found.id))
    return render_template("orders/quote_detail.html", request_=found, side="provider",
                           quote=quotes.current_quote(found), form=form,
                           statuses=quotes.request_statuses("provider"), now=utcnow())


@bp.post("/quotes/<int:request_id>/quotes/<int:quote_id>/<any(accept, decline):decision>")
@role_required("enterprise")
def decide(request_id, quote_id, decision):
    found = _load_request(request_id)
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.request_id != found.id:
        abort(404)
    try:
        order = quotes.decide(db.session, _user(), quote, accept=decision == "accept")
        db.session.commit()
    except quotes.QuoteError as exc:
        db.session.rollback()
        abort(exc.status if exc.status in (403, 404, 409) else 400, exc.message)
    if order is None:
        flash(_("Quote declined. The institution has been told."), "info")
        return redirect(url_for("quotes.buyer_request", request_id=found.id))
    flash(_("Quote accepted: order %(number)s was created. Pay it to start the work.",
            number=order.number), "success")
    return redirect(url_for("orders.pay", order_id=order.id))


@bp.get("/quotes/<int:request_id>/files/<int:file_id>")
@role_required("enterprise", "provider", "staff")
def request_file(request_id, file_id):
    found = _load_request(request_id)
    row = db.session.get(OrderFile, file_id)
    if row is None or row.quote_request_id != found.id:
        abort(404)
    return file_response(row)


@bp.route("/products/<int:product_id>/apply", methods=["GET", "POST"])
@role_required("enterprise")
def apply(product_id):
    product = _product_or_404(product_id, "financial")
    form = forms.ApplicationForm()
    form.amount.currency = product.currency
    if form.validate_on_submit():
        try:
            order = quotes.apply(db.session, _user(), product, form.amount.amount,
                                 form.term_months.data, form.need.data)
            db.session.commit()
        except quotes.QuoteError as exc:
            db.session.rollback()
            if exc.status != 400:
                abort(exc.status, exc.message)
            form.form_errors.append(exc.message)
        else:
            if order.status == "pending_payment":
                flash(_("Application created. Pay the service fee to send it to the "
                        "institution."), "info")
                return redirect(url_for("orders.pay", order_id=order.id))
            flash(_("Application sent. The institution will approve or decline it."), "success")
            return redirect(order_url(order, "buyer"))
    return render_template("orders/apply_form.html", product=product, form=form)
