"""Staff and admin pages of the buying area: every order (with bank transfers to confirm and
disputes to rule on), voucher programmes and grants, commission rates."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from catalog.categories import top_level_categories
from catalog.models import Category
from catalog.services import parse_page
from marketplace.database import db
from marketplace.i18n import local_name, local_today
from marketplace.models import Organisation
from marketplace.permissions import admin_required, has_role, staff_required
from marketplace.reference import REGION_LABELS, REGIONS
from marketplace.reference import choices as reference_choices
from orders import commission, forms, queries, vouchers
from orders.models import Voucher, VoucherProgramme
from orders.money import MoneyError, parse_share

bp = Blueprint("orders_admin", __name__, url_prefix="/staff")


def _user():
    return current_user._get_current_object()


@bp.get("/orders")
@staff_required
def orders():
    filters = queries.OrderFilters.from_args(request.args)
    page = queries.list_orders(db.session, filters, "staff",
                               page=parse_page(request.args.get("page")),
                               page_size=int(current_app.config.get("PAGE_SIZE") or 24))
    return render_template("orders/list.html", page=page, filters=filters,
                           counts=queries.group_counts(db.session, "staff"), side="staff",
                           title=_("All orders"), groups=queries.GROUP_LABELS,
                           awaiting_transfer=queries.awaiting_transfer_count(db.session))


# --------------------------------------------------------------------------- vouchers

def _category_choices():
    choices = []
    for top in top_level_categories(db.session):
        choices.append((top.id, local_name(top)))
        for child in top.children:
            choices.append((child.id, f"— {local_name(child)}"))
    return forms.choices(choices)


@bp.route("/vouchers", methods=["GET", "POST"])
@staff_required
def voucher_programmes():
    form = forms.ProgrammeForm()
    form.categories.choices = _category_choices()
    form.regions.choices = forms.choices(reference_choices(REGIONS))
    if request.method == "POST":
        if not has_role(current_user, "admin"):
            abort(403, _("Only platform admins create voucher programmes."))
        if form.validate_on_submit():
            try:
                category_ids = list(form.categories.data or [])
                programme = vouchers.create_programme(db.session, _user(), vouchers.ProgrammeInput(
                    name=form.name.data, funder=form.funder.data, budget=form.budget.amount,
                    valid_from=form.valid_from.data, valid_until=form.valid_until.data,
                    max_share_bp=form.max_share.share, eligible_category_ids=category_ids,
                    regions=list(form.regions.data or []),
                    currency=current_app.config.get("CURRENCY", "CNY")))
                db.session.commit()
            except (vouchers.VoucherError, ValueError) as exc:
                db.session.rollback()
                form.form_errors.append(getattr(exc, "message", str(exc)))
            else:
                flash(_("Voucher programme “%(name)s” created.", name=programme.name), "success")
                return redirect(url_for("orders_admin.voucher_programme",
                                        programme_id=programme.id))
    return render_template("orders/admin_vouchers.html", programmes=vouchers.programmes(db.session),
                           form=form, today=local_today())


@bp.route("/vouchers/<int:programme_id>", methods=["GET", "POST"])
@staff_required
def voucher_programme(programme_id):
    programme = db.session.get(VoucherProgramme, programme_id)
    if programme is None:
        abort(404)
    form = forms.GrantForm()
    form.amount.currency = programme.currency
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None or organisation.kind != "enterprise":
            form.organisation_id.errors = [_("Pick the enterprise from the list.")]
        else:
            try:
                voucher = vouchers.grant(db.session, _user(), programme, organisation,
                                         form.amount.amount, form.note.data or "")
                db.session.commit()
            except vouchers.VoucherError as exc:
                db.session.rollback()
                form.form_errors.append(exc.message)
            else:
                flash(_("Voucher %(code)s granted to %(name)s (%(code_of)s).", code=voucher.code,
                        name=organisation.name, code_of=organisation.credit_code), "success")
                return redirect(url_for("orders_admin.voucher_programme",
                                        programme_id=programme.id))
    needle = (request.values.get("q") or "").strip()[:200]
    matches = []
    if needle:
        matches = db.session.scalars(
            select(Organisation).where(
                Organisation.kind == "enterprise",
                or_(Organisation.credit_code == needle.upper().replace(" ", ""),
                    Organisation.name.ilike("%" + needle.replace("\\", "\\\\")
                                            .replace("%", "\\%").replace("_", "\\_") + "%",
                                            escape="\\")))
            .order_by(Organisation.name, Organisation.id).limit(50)).all()
    # The grantees in one query (kept referenced while the page renders, so each voucher's
    # enterprise comes from the session, not from a query per voucher).
    grantees = db.session.scalars(select(Organisation).join(Voucher, Voucher.organisation_id == Organisation.id)
                       .where(Voucher.programme_id == programme.id)).all()
    categories = {c.id: c for c in db.session.scalars(select(Category))}
    return render_template("orders/admin_voucher_programme.html", programme=programme, form=form,
                           report=vouchers.programme_report(db.session, programme),
                           categories=categories, needle=needle, matches=matches,
                           grantees=grantees,
                           region_covers=vouchers.region_covers,
                           region_labels=REGION_LABELS)


# --------------------------------------------------------------------------- commissions

@bp.route("/commissions", methods=["GET", "POST"])
@admin_required
def commissions():
    if request.method == "POST":
        kind = request.form.get("kind")
        raw = (request.form.get("rate") or "").strip()
        try:
            rate = parse_share(raw) if raw else None
            if kind == "category":
                category_id = int(request.form.get("category_id", ""))
                if db.session.get(Category, category_id) is None:
                    abort(404)
                commission.set_category_rate(db.session, category_id, rate, actor=_user())
            elif kind == "provider":
                provider_id = int(request.form.get("provider_id", ""))
                provider = db.session.get(Organisation, provider_id)
                if provider is None or provider.kind != "provider":
                    abort(404)
                commission.set_provider_rate(db.session, provider_id, rate,
                                             request.form.get("note", ""), actor=_user())
            else:
                abort(400)
            db.session.commit()
        except (MoneyError, commission.CommissionError, ValueError) as exc:
            db.session.rollback()
            flash(_("Not saved: %(error)s", error=exc), "danger")
        else:
            flash(_("Commission rate saved.") if rate is not None else _("Rate removed."), "success")
        return redirect(url_for("orders_admin.commissions"))
    return render_template(
        "orders/admin_commissions.html", tops=top_level_categories(db.session),
        rates=commission.category_rates(db.session),
        overrides=commission.provider_rates(db.session),
        default_rate=int(current_app.config.get("COMMISSION_DEFAULT_BP",
                                                commission.DEFAULT_RATE_BP)),
        providers=db.session.scalars(select(Organisation).where(Organisation.kind == "provider")
                                     .order_by(Organisation.name)).all())
