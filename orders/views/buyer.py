"""The enterprise buyer's pages: cart, checkout, paying an order, my orders, my vouchers."""

import logging

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from catalog.services import parse_page
from marketplace.database import db, utcnow
from orders import cart as carts
from orders import checkout as checkouts
from orders import files as order_files
from orders import forms, payments, queries, vouchers
from orders.models import Checkout, Order
from orders.stripe_gateway import GatewayError
from orders.views import bp
from orders.views.common import (
    Refused,
    _bank_details,
    _form_errors,
    _load_order,
    _page_size,
    _test_mode,
    _user,
    back_on_refusal,
    enterprise_required,
    order_url,
)
from providers import uploads

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- cart

@bp.get("/cart")
@enterprise_required
def cart():
    view = carts.view(db.session, _user())
    return render_template("cart/cart.html", cart=view)


@bp.post("/cart/add")
@enterprise_required
def cart_add():
    try:
        package_id = int(request.form.get("package_id", ""))
        quantity = int(request.form.get("quantity") or 1)
    except ValueError:
        abort(400, "Choose a package.")
    try:
        line = carts.add(db.session, _user(), package_id, quantity)
    except carts.CartError as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    db.session.commit()
    flash(f"Added “{line.product.title} · {line.package.name}” to your cart.", "success")
    return redirect(url_for("orders.cart"))


@bp.post("/cart/lines/<int:line_id>")
@enterprise_required
def cart_update(line_id):
    try:
        quantity = int(request.form.get("quantity", ""))
    except ValueError:
        flash("Enter a quantity.", "danger")
        return redirect(url_for("orders.cart"))
    try:
        carts.set_quantity(db.session, _user(), line_id, quantity)
    except carts.CartError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "danger")
        return redirect(url_for("orders.cart"))
    db.session.commit()
    flash("Cart updated.", "success")
    return redirect(url_for("orders.cart"))


@bp.post("/cart/lines/<int:line_id>/remove")
@enterprise_required
def cart_remove(line_id):
    try:
        carts.remove(db.session, _user(), line_id)
    except carts.CartError:
        abort(404)
    db.session.commit()
    flash("Removed from your cart.", "success")
    return redirect(url_for("orders.cart"))


# --------------------------------------------------------------------------- checkout

def _voucher_arg(raw) -> int | None:
    try:
        return int(raw) if raw not in (None, "", "none") else None
    except ValueError:
        return None


@bp.get("/checkout")
@enterprise_required
def checkout():
    user = _user()
    voucher_id = _voucher_arg(request.args.get("voucher"))
    today = utcnow().date()
    try:
        plan = checkouts.preview(db.session, user, voucher_id, today)
    except checkouts.CheckoutError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("orders.checkout"))
    cart_view = carts.view(db.session, user)
    if cart_view.empty:
        flash("Your cart is empty.", "info")
        return redirect(url_for("orders.cart"))
    return render_template(
        "checkout/checkout.html", plan=plan, cart=cart_view, token=checkouts.new_token(),
        vouchers=vouchers.usable_vouchers(db.session, user.organisation_id, today),
        voucher_id=voucher_id, methods=payments.selectable(),
        card_form=forms.TestCardForm(), test_mode=_test_mode(),
        method=request.args.get("method") or payments.selectable()[0].name)


@bp.post("/checkout")
@enterprise_required
def checkout_submit():
    user = _user()
    method = request.form.get("payment_method", "")
    chosen = _chosen_method(method)
    card_form = forms.TestCardForm()
    if chosen is not None and chosen.collects_card and _test_mode() and not card_form.validate():
        flash("Card details: " + _form_errors(card_form), "danger")
        return redirect(url_for("orders.checkout", voucher=request.form.get("voucher_id"),
                                method=method))
    requirements = {}
    for key, value in request.form.items():
        if key.startswith("requirements-"):
            try:
                requirements[int(key.removeprefix("requirements-"))] = value
            except ValueError:
                continue
    try:
        pending = {pid: order_files.check_uploads(request.files.getlist(f"files-{pid}"))
                   for pid in requirements}
    except uploads.UploadError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("orders.checkout"))
    data = checkouts.CheckoutInput(
        token=request.form.get("token", ""), payment_method=method,
        voucher_id=_voucher_arg(request.form.get("voucher_id")), requirements=requirements)
    upload_dir = current_app.config["UPLOAD_DIR"]
    try:
        result = checkouts.place_orders(db.session, user, data)
        if not result.replayed:
            for order in result.checkout.orders:
                if order.provider_org_id in pending:
                    pending[order.provider_org_id].save(
                        db.session, upload_dir, purpose="requirements", user=user,
                        order_id=order.id)
        db.session.commit()
    except checkouts.CheckoutError as exc:
        db.session.rollback()
        for item in pending.values():
            item.discard(upload_dir)
        flash(exc.message, "danger")
        return redirect(url_for("orders.cart") if exc.status == 409 else
                        url_for("orders.checkout"))
    except Exception:
        db.session.rollback()
        for item in pending.values():
            item.discard(upload_dir)
        raise
    token = result.checkout.token
    if result.replayed:
        flash("This checkout was already submitted; here are its orders.", "info")
        return redirect(url_for("orders.checkout_result", token=token))
    if chosen.collects_card:
        card_orders = [o for o in result.checkout.orders
                       if o.status == "pending_payment" and o.amount_due > 0]
        if not _test_mode():
            return redirect(url_for("orders.checkout_pay", token=token))
        card = card_form.card()
        for order in card_orders:
            _pay_by_test_card(order, card)
    return redirect(url_for("orders.checkout_result", token=token))


def _chosen_method(name: str) -> payments.PaymentMethod | None:
    """The payment method a buyer chose, if it is one they may choose."""
    return next((m for m in payments.selectable() if m.name == name), None)


def _pay_by_test_card(order: Order, card) -> None:
    try:
        payment = payments.begin_card_payment(db.session, order)
        db.session.commit()
        payments.pay_with_test_card(db.session, payment, card)
    except payments.PaymentError as exc:
        db.session.rollback()
        flash(f"Order {order.number}: {exc.message}", "warning")
    except GatewayError as exc:
        db.session.rollback()
        log.warning("card payment for %s: %s", order.number, exc)
        flash(f"Order {order.number}: the payment service did not answer ({exc.message}). "
              "Nothing was charged; retry from the order page.", "danger")


def _own_checkout(token: str) -> Checkout:
    found = checkouts.find_checkout(db.session, token)
    if found is None or found.user_id != current_user.id:
        abort(404)
    return found


@bp.get("/checkout/<token>")
@enterprise_required
def checkout_result(token):
    found = _own_checkout(token)
    if request.args.get("return"):  # back from Stripe.js
        for order in found.orders:
            live = order.live_payment
            if live is not None and payments.get(live.method).asks_provider \
                    and live.status != "held":
                try:
                    payments.get(live.method).confirm(db.session, live)
                    db.session.commit()
                except GatewayError:
                    db.session.rollback()
    return render_template("checkout/result.html", checkout=found, orders=found.orders,
                           bank=_bank_details())


@bp.get("/checkout/<token>/pay")
@enterprise_required
def checkout_pay(token):
    """Real Stripe only: Stripe.js Elements confirms each order's PaymentIntent."""
    found = _own_checkout(token)
    secrets_ = []
    for order in found.orders:
        if order.status != "pending_payment" or order.amount_due <= 0:
            continue
        try:
            payment = payments.begin_card_payment(db.session, order)
            db.session.commit()
            secrets_.append(payments.create_browser_intent(db.session, payment))
        except (payments.PaymentError, GatewayError) as exc:
            db.session.rollback()
            flash(f"Order {order.number}: {exc.message}", "danger")
    return render_template("checkout/_card_stripe_elements.html", client_secrets=secrets_,
                           publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
                           return_url=url_for("orders.checkout_result", token=token,
                                              _external=True, **{"return": 1}),
                           orders=found.orders)


# --------------------------------------------------------------------------- paying one order

@bp.route("/orders/<int:order_id>/pay", methods=["GET", "POST"])
@enterprise_required
def pay(order_id):
    order, role = _load_order(order_id)
    if role != "buyer":
        abort(403)
    if order.status != "pending_payment":
        flash("This order is not awaiting payment.", "info")
        return redirect(order_url(order))
    user = _user()
    today = utcnow().date()
    redemption = vouchers.redemption_for(db.session, order.id)
    usable = [] if redemption else [
        v for v in vouchers.usable_vouchers(db.session, user.organisation_id, today)
        if order.product and vouchers.product_eligible(v.programme, order.product)]
    card_form = forms.TestCardForm()
    if request.method == "POST":
        chosen = _chosen_method(request.form.get("payment_method")
                                or payments.selectable()[0].name)
        voucher_id = _voucher_arg(request.form.get("voucher_id"))
        if chosen is None:
            flash("Choose how to pay.", "danger")
            return redirect(url_for("orders.pay", order_id=order.id))
        if chosen.collects_card and _test_mode() and not card_form.validate():
            flash("Card details: " + _form_errors(card_form), "danger")
            return redirect(url_for("orders.pay", order_id=order.id))
        back = url_for("orders.pay", order_id=order.id)
        try:
            with back_on_refusal(back, payments.PaymentError, vouchers.VoucherError):
                if voucher_id and not redemption:
                    voucher = next((v for v in usable if v.id == voucher_id), None)
                    if voucher is None:
                        raise payments.PaymentError("That voucher cannot be used on this order.",
                                                    400)
                    payments.voucher.apply(db.session, voucher, order)
                if order.status == "pending_payment":
                    payment = chosen.begin(db.session, order)
                    db.session.commit()
                    if not chosen.collects_card:
                        away = chosen.redirect_after_begin(
                            db.session, payment,
                            url_for("orders.payment_return", order_id=order.id, _external=True))
                        if away:
                            return redirect(away)
                        flash(chosen.begun_message, "info")
                        return redirect(order_url(order))
                    if not _test_mode():
                        payments.create_browser_intent(db.session, payment)
                        return redirect(url_for("orders.authenticate", order_id=order.id))
                    payments.pay_with_test_card(db.session, payment, card_form.card())
                else:
                    db.session.commit()
        except GatewayError as exc:
            raise Refused(f"The payment service did not answer ({exc.message}). Nothing was "
                          "charged; please try again.", back) from exc
        db.session.refresh(order)
        _flash_payment_result(order)
        return redirect(order_url(order))
    last_failure = next((p for p in reversed(order.payments) if p.status == "failed"), None)
    return render_template("checkout/pay.html", order=order, card_form=card_form,
                           test_mode=_test_mode(), vouchers=usable, redemption=redemption,
                           last_failure=last_failure, methods=payments.selectable())


def _flash_payment_result(order: Order) -> None:
    payment = order.payments[-1] if order.payments else None
    if order.status == "paid":
        flash("Payment received. The funds are held until you accept the work.", "success")
    elif payment is not None and payment.status == "failed":
        flash(f"Payment failed: {payment.failure_message} You can retry.", "danger")
    elif payment is not None and payment.status == "requires_action":
        flash("Your bank asks you to confirm this payment (3-D Secure).", "info")


@bp.route("/orders/<int:order_id>/authenticate", methods=["GET", "POST"])
@enterprise_required
def authenticate(order_id):
    """3-D Secure. Test mode: a simulated bank page completing the authentication through
    localstripe. Real Stripe: Stripe.js handles the next action in the browser."""
    order, role = _load_order(order_id)
    if role != "buyer":
        abort(403)
    payment = order.live_payment
    if payment is None or not payments.get(payment.method).collects_card \
            or payment.status not in (
            "requires_action", "pending"):
        flash("This order has no card payment waiting for confirmation.", "info")
        return redirect(order_url(order))
    if not _test_mode():
        return render_template("checkout/_card_stripe_elements.html",
                               client_secrets=[payment.stripe_client_secret],
                               publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
                               return_url=url_for("orders.payment_return", order_id=order.id,
                                                  _external=True),
                               orders=[order])
    if request.method == "POST":
        success = request.form.get("outcome") == "success"
        try:
            payments.authenticate_test_payment(db.session, payment, success)
        except (payments.PaymentError, GatewayError) as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(order_url(order))
        db.session.refresh(order)
        _flash_payment_result(order)
        return redirect(order_url(order))
    return render_template("checkout/authenticate_test.html", order=order, payment=payment)


@bp.get("/orders/<int:order_id>/payment-return")
@enterprise_required
def payment_return(order_id):
    order, role = _load_order(order_id)
    if role != "buyer":
        abort(403)
    payment = order.live_payment
    if payment is not None and payments.get(payment.method).asks_provider:
        try:
            payments.get(payment.method).confirm(db.session, payment)
            db.session.commit()
        except GatewayError:
            db.session.rollback()
    db.session.refresh(order)
    _flash_payment_result(order)
    return redirect(order_url(order))


# --------------------------------------------------------------------------- order lists

@bp.get("/orders")
@enterprise_required
def my_orders():
    user = _user()
    filters = queries.OrderFilters.from_args(request.args)
    page = queries.list_orders(db.session, filters, "buyer", page=parse_page(request.args.get(
        "page")), page_size=_page_size(), buyer_org_id=user.organisation_id)
    counts = queries.group_counts(db.session, "buyer", buyer_org_id=user.organisation_id)
    return render_template("orders/list.html", page=page, filters=filters, counts=counts,
                           side="buyer", title="My orders", title_zh="我的订单",
                           groups=queries.GROUP_LABELS)


# --------------------------------------------------------------------------- buyer vouchers

@bp.get("/vouchers")
@enterprise_required
def my_vouchers():
    user = _user()
    return render_template("orders/my_vouchers.html",
                           vouchers=vouchers.organisation_vouchers(db.session,
                                                                   user.organisation_id),
                           today=utcnow().date())
