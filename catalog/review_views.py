"""Ratings pages: writing a review of a completed order, the institution's reply, the review
lists of listings and institutions (htmx fragments for paging) and staff moderation.

Thin views: the rules are in ``catalog.reviews``, the permission decisions in
``marketplace.permissions``.
"""


from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from catalog import page_cache, reviews
from catalog.models import Product, Review
from marketplace import reference
from marketplace.database import db, utcnow
from marketplace.errors import render_error
from marketplace.i18n import format_date, is_chinese
from marketplace.models import Organisation
from marketplace.paging import paginate, parse_page
from marketplace.permissions import (
    can_reply_to_review,
    can_view_buyer_rating,
    can_view_order_review,
    can_view_product,
    can_view_provider_profile,
    is_public_review,
    order_role,
    review_side,
    staff_required,
)
from orders import services as order_services
from orders.models import Order

bp = Blueprint("reviews", __name__, cli_group=None)

REVIEWS_PER_PAGE = 10
STAFF_PER_PAGE = 25


def _user():
    return current_user._get_current_object()


def _blind_days() -> int:
    return int(current_app.config.get("REVIEW_BLIND_DAYS") or reviews.DEFAULT_BLIND_DAYS)


def _order_url(order: Order, role: str | None) -> str:
    if role == "provider":
        return url_for("orders.provider_order", order_id=order.id)
    if role == "staff":
        return url_for("orders.staff_order", order_id=order.id)
    return url_for("orders.order_detail", order_id=order.id)


def _load_order(order_id: int) -> Order:
    order = order_services.load(db.session, order_id)
    if order is None:
        abort(404)
    return order


@bp.errorhandler(reviews.ReviewError)
def _refused(exc: reviews.ReviewError):
    """A rule said no (not a party, window closed, rated already...): nothing is kept."""
    db.session.rollback()
    return render_error(exc.status, exc.message)


# --------------------------------------------------------------------------- writing

@bp.route("/orders/<int:order_id>/review", methods=["GET", "POST"])
@login_required
def write(order_id):
    order = _load_order(order_id)
    side = review_side(current_user, order)
    now = utcnow()
    if request.method == "GET" or side is None:
        reviews.check_can_review(db.session, order, _user(), now, _blind_days())
    errors: dict[str, str] = {}
    if request.method == "POST":
        scores = {name: request.form.get(name) for name in reviews.SIDE_DIMENSIONS[side]}
        try:
            review = reviews.submit_review(db.session, order, _user(), scores,
                                           request.form.get("body"), now=now,
                                           blind_days=_blind_days())
        except reviews.ReviewInvalid as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            if review.published_at is not None:
                flash(_("Thank you. Both reviews are in, so both are now published."), "success")
            else:
                closes = format_date(reviews.blind_until(order, _blind_days()))
                if side == "buyer":
                    flash(_("Thank you. Your review is saved. It is published when the "
                            "institution has rated too, or on %(date)s at the latest.",
                            date=closes), "success")
                else:
                    flash(_("Thank you. Your review is saved. It is published when the buyer "
                            "has rated too, or on %(date)s at the latest.", date=closes),
                          "success")
            return redirect(_order_url(order, side) + "#rating")
    return render_template(
        "reviews/write.html", order=order, side=side, errors=errors, values=request.form,
        dimensions=[(name, *reviews.DIMENSION_LABELS[name])
                    for name in reviews.SIDE_DIMENSIONS[side]],
        closes=reviews.blind_until(order, _blind_days()), order_url=_order_url(order, side),
    )


@bp.post("/reviews/<int:review_id>/reply")
@login_required
def reply(review_id):
    review = db.session.get(Review, review_id)
    if review is None:
        abort(404)
    order = db.session.get(Order, review.order_id)
    try:
        reviews.reply_to_review(db.session, review, _user(), request.form.get("reply"))
    except reviews.ReviewInvalid as exc:
        db.session.rollback()
        flash(" ".join(exc.errors.values()), "danger")
    else:
        db.session.commit()
        flash(_("Your reply is published under the review."), "success")
    return redirect(_order_url(order, order_role(current_user, order)) + "#rating")


# --------------------------------------------------------------------------- lists

def _section(*, product: Product | None = None, org: Organisation | None = None) -> dict:
    scope = ({"product_id": product.id} if product is not None
             else {"subject_org_id": org.id})
    summary = reviews.rating_summary(db.session, side="buyer", **scope)
    # The summary counted the same reviews: no second count, and no list query when none.
    page = paginate(db.session, reviews.counted_reviews(db.session, side="buyer", **scope),
                    parse_page(request.args.get("rpage")), REVIEWS_PER_PAGE,
                    total=summary.count)
    # A cached page with these reviews shows a line about each author (size, industry).
    page_cache.note_scopes(*{f"o:{review.author_org_id}" for review in page.items})
    if product is not None:
        fragment = url_for("reviews.product_reviews", product_id=product.id)
        full = url_for("catalog.product", product_id=product.id)
    else:
        fragment = url_for("reviews.institution_reviews", org_id=org.id)
        full = url_for("providers.profile", org_id=org.id)
    return {"summary": summary, "page": page, "fragment_url": fragment, "page_url": full,
            "for_product": product is not None, "labels": reviews.DIMENSION_LABELS}


@bp.app_template_global()
def product_reviews_section(product: Product) -> dict:
    """What ``reviews/_section.html`` shows on a listing page."""
    return _section(product=product)


@bp.app_template_global()
def institution_reviews_section(org: Organisation) -> dict:
    """What ``reviews/_section.html`` shows on an institution's profile."""
    return _section(org=org)


@bp.get("/reviews/products/<int:product_id>")
def product_reviews(product_id):
    product = db.session.get(Product, product_id)
    if product is None or not can_view_product(current_user, product):
        abort(404)
    return render_template("reviews/_list.html", section=_section(product=product))


@bp.get("/reviews/institutions/<int:org_id>")
def institution_reviews(org_id):
    org = db.session.get(Organisation, org_id)
    if org is None or org.kind != "provider" or not can_view_provider_profile(current_user, org):
        abort(404)
    return render_template("reviews/_list.html", section=_section(org=org))


# --------------------------------------------------------------------------- order page panel

@bp.app_template_global()
def review_author_text(org: Organisation) -> str:
    """Who wrote a public review, without naming them: "A small software and internet
    enterprise in Suzhou Industrial Park" / "苏州工业园区的小型软件与互联网企业"."""
    chinese = is_chinese()

    def label(table, code, short=False):
        for row_code, en, zh in table:
            if row_code == code:
                text = zh if chinese else en
                return text.split(" (")[0] if short else text
        return ""

    size = label(reference.COMPANY_SIZES, org.size, short=True)
    industry = label(reference.INDUSTRIES, org.industry)
    if not chinese:
        size, industry = size.lower(), industry.lower()
    kind = " ".join(part for part in (size, industry) if part) if not chinese else size + industry
    if org.region:
        region = label(reference.REGIONS, org.region)
        if kind:
            return _("A %(kind)s enterprise in %(region)s", kind=kind, region=region)
        return _("An enterprise in %(region)s", region=region)
    if kind:
        return _("A %(kind)s enterprise", kind=kind)
    return _("An enterprise")


@bp.app_template_global()
def order_rating_panel(order: Order) -> dict:
    """What ``reviews/_order_panel.html`` shows on an order page, for the current viewer."""
    role = order_role(current_user, order)
    both = reviews.reviews_of_order(db.session, order.id)
    side = review_side(current_user, order)
    now = utcnow()
    closes = reviews.blind_until(order, _blind_days())
    can_write = False
    if side is not None and order.status in reviews.REVIEWABLE_STATUSES:
        try:
            reviews.check_can_review(db.session, order, _user(), now, _blind_days())
            can_write = True
        except reviews.ReviewError:
            can_write = False
    shown = {}
    for which in ("buyer", "provider"):
        review = both.of(which)
        shown[which] = review if review and can_view_order_review(current_user, review,
                                                                  order) else None
    other = {"buyer": "provider", "provider": "buyer"}.get(side or "")
    buyer_rating = None
    if can_view_buyer_rating(current_user, order):
        buyer_rating = reviews.rating_summary(db.session, side="provider",
                                              subject_org_id=order.buyer_org_id)
    return {
        "role": role, "side": side, "reviews": shown, "can_write": can_write,
        "closes": closes, "window_open": closes is not None and now < closes,
        "other_waiting": bool(other and both.of(other) and both.of(other).published_at is None),
        "mine": both.of(side) if side else None,
        "can_reply": bool(shown["buyer"] and can_reply_to_review(current_user, shown["buyer"])
                          and is_public_review(shown["buyer"]) and shown["buyer"].reply is None),
        "buyer_rating": buyer_rating,
        "labels": reviews.DIMENSION_LABELS,
        "dimensions": [(name, *reviews.DIMENSION_LABELS[name])
                       for name in reviews.SIDE_DIMENSIONS.get(side or "", ())],
        "reviewable": order.status in reviews.REVIEWABLE_STATUSES,
    }


# --------------------------------------------------------------------------- staff

@bp.get("/staff/reviews")
@staff_required
def staff_list():
    side = request.args.get("side") or None
    state = request.args.get("state") or None
    order_number = (request.args.get("order") or "").strip()[:32] or None
    try:
        subject = int(request.args.get("org") or 0) or None
    except ValueError:
        subject = None
    stmt = reviews.staff_reviews(side=side, state=state, subject_org_id=subject,
                                 order_number=order_number)
    page = paginate(db.session, stmt, parse_page(request.args.get("page")), STAFF_PER_PAGE)
    subject_org = db.session.get(Organisation, subject) if subject else None
    summary = None
    if subject_org is not None:
        summary = reviews.rating_summary(
            db.session, side="buyer" if subject_org.kind == "provider" else "provider",
            subject_org_id=subject_org.id)
    orders = {o.id: o for o in db.session.scalars(
        select(Order).where(Order.id.in_([r.order_id for r in page.items])))}
    return render_template("reviews/staff_list.html", page=page, side=side, state=state,
                           order_number=order_number, subject_org=subject_org,
                           summary=summary, orders=orders, labels=reviews.DIMENSION_LABELS)


def _staff_review(review_id: int) -> Review:
    review = db.session.get(Review, review_id)
    if review is None:
        abort(404)
    return review


def _back() -> str:
    target = request.form.get("next") or ""
    if target.startswith("/staff/reviews") and "//" not in target:
        return target
    return url_for("reviews.staff_list")


@bp.post("/staff/reviews/<int:review_id>/hide")
@staff_required
def hide(review_id):
    review = _staff_review(review_id)
    try:
        reviews.hide_review(db.session, review, _user(), request.form.get("reason"))
    except reviews.ReviewInvalid as exc:
        db.session.rollback()
        flash(" ".join(exc.errors.values()), "danger")
    except reviews.ReviewError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
    else:
        db.session.commit()
        flash(_("Review hidden. It no longer counts and is not shown publicly."), "success")
    return redirect(_back())


@bp.post("/staff/reviews/<int:review_id>/unhide")
@staff_required
def unhide(review_id):
    review = _staff_review(review_id)
    try:
        reviews.unhide_review(db.session, review, _user(), request.form.get("reason"))
    except reviews.ReviewError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
    else:
        db.session.commit()
        flash(_("Review shown again; it counts in the averages."), "success")
    return redirect(_back())
