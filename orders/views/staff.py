"""Platform staff's order page and money interventions: rulings, refunds, transfers received."""

import logging

from flask import (
    abort,
    flash,
    redirect,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.database import db
from marketplace.permissions import has_role
from orders import forms, payments, services, workflow
from orders.stripe_gateway import GatewayError
from orders.views import bp
from orders.views.common import (
    Refused,
    _flash_outcome,
    _load_order,
    _post_form,
    _user,
    back_on_refusal,
    order_url,
)
from orders.views.order_page import _detail

log = logging.getLogger(__name__)


@bp.get("/staff/orders/<int:order_id>")
@login_required
def staff_order(order_id):
    if not has_role(current_user, "staff"):
        abort(403)
    return _detail(order_id)


def staff_detail_page(order_id: int, status: int = 200, **extra):
    """The staff order page with refused console forms re-shown (marketplace/console)."""
    return _detail(order_id, status, **extra)


# --------------------------------------------------------------------------- staff actions

@bp.post("/orders/<int:order_id>/resolve")
@login_required
def resolve(order_id):
    order, _role = _load_order(order_id)
    workflow.check(order, "resolve", _user(), note="-")
    form = _post_form(forms.RulingForm, "ruling")
    if form is None:
        return redirect(order_url(order))
    with back_on_refusal(order_url(order), services.OrderError, payments.HoldLapsed):
        outcome = services.resolve(db.session, order, _user(), form.ruling.data,
                                   form.refund.amount, form.note.data)
    _flash_outcome(outcome, _("Ruling recorded and the money moved accordingly."))
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/refund")
@login_required
def refund(order_id):
    order, _role = _load_order(order_id)
    if not has_role(current_user, "staff"):
        abort(403, _("Only platform staff can issue refunds."))
    form = _post_form(forms.RefundForm, "refund")
    if form is None:
        return redirect(order_url(order))
    try:
        with back_on_refusal(order_url(order), payments.PaymentError):
            done = payments.staff_refund(db.session, order, _user(), form.amount.amount,
                                         form.reason.data, form_token=form.token.data)
            db.session.commit()
    except GatewayError as exc:
        raise Refused(_("Stripe refused the refund: %(error)s", error=exc.message),
                      order_url(order)) from exc
    from orders.money import format_amount

    if done.voucher:
        message = _("Refunded %(total)s: %(cash)s to the buyer and %(voucher)s to the innovation "
                    "voucher (in proportion to the voucher's share of the price).",
                    total=format_amount(done.total, order.currency),
                    cash=format_amount(done.cash, order.currency),
                    voucher=format_amount(done.voucher, order.currency))
    else:
        message = _("Refunded %(total)s.", total=format_amount(done.total, order.currency))
    flash(message, "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/clawback")
@login_required
def clawback(order_id):
    """Staff refund money already released to the institution, recorded as a clawback
    against its next statement (issue 13)."""
    order, _role = _load_order(order_id)
    if not has_role(current_user, "staff"):
        abort(403, _("Only platform staff can record a clawback."))
    form = _post_form(forms.ClawbackForm, "clawback")
    if form is None:
        return redirect(order_url(order))
    try:
        with back_on_refusal(order_url(order), payments.PaymentError):
            payments.staff_clawback(db.session, order, _user(), form.amount.amount,
                                    form.reason.data, form_token=form.token.data)
            db.session.commit()
    except GatewayError as exc:
        raise Refused(_("Stripe refused the refund: %(error)s", error=exc.message),
                      order_url(order)) from exc
    from orders.money import format_amount

    flash(_("Clawback recorded: %(amount)s refunded to the buyer and deducted from the "
            "institution's next statement.",
            amount=format_amount(form.amount.amount, order.currency)), "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/transfer-received")
@login_required
def transfer_received(order_id):
    order, _role = _load_order(order_id)
    workflow.check(order, "pay", _user())
    form = _post_form(forms.TransferReceivedForm, "transfer")
    if form is None:
        return redirect(order_url(order))
    with back_on_refusal(order_url(order), payments.PaymentError):
        payments.mark_transfer_received(db.session, order, _user(), form.amount.amount,
                                        form.reference.data or "")
        db.session.commit()
    flash(_("Transfer recorded: the order is paid and the institution has been told."),
          "success")
    return redirect(order_url(order))
