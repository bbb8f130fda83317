"""Buying pages: cart, checkout, payment, my orders (enterprise and institution), the order
page with its actions, files and messages, and the Stripe webhook.

Views are thin: parse the input, call a service, commit, redirect. Refusals from the state
machine answer 403 (wrong role) or 409 (wrong state) with the reason, and change nothing.
"""

import logging
from decimal import Decimal

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required

from catalog.services import parse_page
from marketplace import csrf
from marketplace.database import db, utcnow
from marketplace.permissions import can_view_order, has_role, order_role, role_required
from orders import cart as carts
from orders import checkout as checkouts
from orders import files as order_files
from orders import forms, ledger, payments, queries, services, vouchers, webhooks, workflow
from orders.models import Checkout, Order, OrderFile
from orders.stripe_gateway import (
    GatewayError,
    GatewayUnavailable,
    construct_event,
    test_card_entry_allowed,
)
from providers import uploads

log = logging.getLogger(__name__)
bp = Blueprint("orders", __name__)
enterprise_required = role_required("enterprise")


# --------------------------------------------------------------------------- helpers

def _user():
    return current_user._get_current_object()


def _test_mode() -> bool:
    return test_card_entry_allowed(current_app.config)


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def _load_order(order_id: int) -> tuple[Order, str]:
    """The order and the viewer's part in it; 404 for anyone with no business in it."""
    order = services.load(db.session, order_id)
    if order is None or not can_view_order(current_user, order):
        abort(404)
    return order, order_role(current_user, order)


def order_url(order: Order, role: str | None = None) -> str:
    role = role or order_role(current_user, order)
    if role == "provider":
        return url_for("orders.provider_order", order_id=order.id)
    if role == "staff":
        return url_for("orders.staff_order", order_id=order.id)
    return url_for("orders.order_detail", order_id=order.id)


def _refuse(exc) -> None:
    db.session.rollback()
    abort(exc.status if exc.status in (403, 404, 409) else 400, exc.message)


def _flash_outcome(outcome: services.Outcome, message: str) -> None:
    flash(message, "success")
    if outcome.warning:
        flash(outcome.warning, "warning")


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


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
        voucher_id=voucher_id, methods=checkouts.PAYMENT_METHODS,
        card_form=forms.TestCardForm(), test_mode=_test_mode(),
        method=request.args.get("method") or "card")


@bp.post("/checkout")
@enterprise_required
def checkout_submit():
    user = _user()
    method = request.form.get("payment_method", "")
    card_form = forms.TestCardForm()
    if method == "card" and _test_mode() and not card_form.validate():
        flash("Card details: " + _form_errors(card_form), "danger")
        return redirect(url_for("orders.checkout", voucher=request.form.get("voucher_id"),
                                method="card"))
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
    if method == "card":
        card_orders = [o for o in result.checkout.orders
                       if o.status == "pending_payment" and o.amount_due > 0]
        if not _test_mode():
            return redirect(url_for("orders.checkout_pay", token=token))
        card = card_form.card()
        for order in card_orders:
            if not _pay_by_test_card(order, card):
                break  # Stripe is not answering: do not make the buyer wait once per order
    return redirect(url_for("orders.checkout_result", token=token))


def _pay_by_test_card(order: Order, card) -> bool:
    """Pay one order; False when the payment service did not answer."""
    try:
        payment = payments.begin_card_payment(db.session, order)
        db.session.commit()
        payments.pay_with_test_card(db.session, payment, card)
    except payments.PaymentError as exc:
        db.session.rollback()
        flash(f"Order {order.number}: {exc.message}", "warning")
    except GatewayUnavailable as exc:
        db.session.rollback()
        log.warning("card payment for %s: Stripe not answering", order.number)
        flash(f"Order {order.number}: {exc.message}", "danger")
        return False
    except GatewayError as exc:
        db.session.rollback()
        log.warning("card payment for %s: %s", order.number, exc)
        flash(f"Order {order.number}: the payment service did not answer ({exc.message}). "
              "Nothing was charged; retry from the order page.", "danger")
    return True


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
            if live is not None and live.method == "card" and live.status != "held":
                try:
                    payments.refresh_from_stripe(db.session, live)
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


def _bank_details() -> dict:
    config = current_app.config
    return {"name": config.get("BANK_ACCOUNT_NAME"), "bank": config.get("BANK_NAME"),
            "number": config.get("BANK_ACCOUNT_NUMBER")}


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
        method = request.form.get("payment_method", "card")
        voucher_id = _voucher_arg(request.form.get("voucher_id"))
        if method == "card" and _test_mode() and not card_form.validate():
            flash("Card details: " + _form_errors(card_form), "danger")
            return redirect(url_for("orders.pay", order_id=order.id))
        try:
            if voucher_id and not redemption:
                voucher = next((v for v in usable if v.id == voucher_id), None)
                if voucher is None:
                    raise payments.PaymentError("That voucher cannot be used on this order.", 400)
                vouchers.apply_to_order(db.session, voucher, order)
                if order.amount_due == 0:
                    order.payment_method = "voucher"
                    payments.order_paid(db.session, order)
            if order.status == "pending_payment":
                if method == "bank_transfer":
                    payments.begin_bank_transfer(db.session, order)
                    db.session.commit()
                    flash("Transfer the amount due with the payment reference shown below.",
                          "info")
                    return redirect(order_url(order))
                payment = payments.begin_card_payment(db.session, order)
                db.session.commit()
                if not _test_mode():
                    payments.create_browser_intent(db.session, payment)
                    return redirect(url_for("orders.authenticate", order_id=order.id))
                payments.pay_with_test_card(db.session, payment, card_form.card())
            else:
                db.session.commit()
        except (payments.PaymentError, vouchers.VoucherError) as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(url_for("orders.pay", order_id=order.id))
        except GatewayError as exc:
            db.session.rollback()
            flash(f"The payment service did not answer ({exc.message}). Nothing was charged; "
                  "please try again.", "danger")
            return redirect(url_for("orders.pay", order_id=order.id))
        db.session.refresh(order)
        _flash_payment_result(order)
        return redirect(order_url(order))
    last_failure = next((p for p in reversed(order.payments) if p.status == "failed"), None)
    return render_template("checkout/pay.html", order=order, card_form=card_form,
                           test_mode=_test_mode(), vouchers=usable, redemption=redemption,
                           last_failure=last_failure, methods=checkouts.PAYMENT_METHODS)


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
    if payment is None or payment.method != "card" or payment.status not in (
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
    if payment is not None and payment.method == "card":
        try:
            payments.refresh_from_stripe(db.session, payment)
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
                           side="provider", title="Orders received", title_zh="订单管理",
                           groups=queries.GROUP_LABELS)


# --------------------------------------------------------------------------- order page

def _detail(order_id: int, status: int = 200, **extra):
    order, role = _load_order(order_id)
    files = db.session.query(OrderFile).filter(OrderFile.order_id == order.id).order_by(
        OrderFile.id).all()
    redemption = vouchers.redemption_for(db.session, order.id)
    context = dict(
        order=order, role=role,
        actions=workflow.allowed_transitions(order, _user()),
        timeline=services.timeline(db.session, order.id),
        messages=services.messages(db.session, order.id),
        requirement_files=[f for f in files if f.purpose == "requirements"],
        buyer_money=ledger.buyer_view(db.session, order),
        provider_money=ledger.provider_view(db.session, order),
        balances=ledger.balances(db.session, order.id) if role == "staff" else None,
        entries=ledger.entries(db.session, order.id) if role == "staff" else None,
        redemption=redemption, bank=_bank_details(),
        milestone_form=forms.MilestoneForm(prefix="milestone"),
        progress_form=forms.ProgressForm(prefix="progress"),
        deliver_form=forms.DeliverForm(prefix="deliver"),
        message_form=forms.MessageForm(prefix="message"),
        ruling_form=forms.RulingForm(prefix="ruling"),
        refund_form=forms.RefundForm(prefix="refund"),
        transfer_form=forms.TransferReceivedForm(prefix="transfer"),
        payment=order.live_payment,
        failed_payment=next((p for p in reversed(order.payments) if p.status == "failed"), None),
    ) | extra
    if role == "staff":  # monitors' console: SLA status and interventions (marketplace/console)
        from marketplace.console import intervention_context

        context |= intervention_context(order, extra.pop("console_bound", None))
        context |= extra
    return render_template("orders/detail.html", **context), status


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id):
    return _detail(order_id)


@bp.get("/provider/orders/<int:order_id>")
@login_required
def provider_order(order_id):
    return _detail(order_id)


@bp.get("/staff/orders/<int:order_id>")
@login_required
def staff_order(order_id):
    if not has_role(current_user, "staff"):
        abort(403)
    return _detail(order_id)


def staff_detail_page(order_id: int, status: int = 200, **extra):
    """The staff order page with refused console forms re-shown (marketplace/console)."""
    return _detail(order_id, status, **extra)


# --------------------------------------------------------------------------- order actions

SIMPLE_ACTIONS = {
    "accept": ("Order accepted. The buyer has been told.",
               lambda o, u, note: services.accept(db.session, o, u, note)),
    "decline": ("Order declined; the buyer's money is released.",
                lambda o, u, note: services.decline(db.session, o, u, note)),
    "start": ("Marked as in progress.", lambda o, u, note: services.start(db.session, o, u, note)),
    "request_revision": ("Revision requested.",
                         lambda o, u, note: services.request_revision(db.session, o, u, note)),
    "complete": ("Delivery accepted: the order is complete and the payment captured.",
                 lambda o, u, note: services.complete(db.session, o, u, note)),
    "dispute": ("Dispute opened. Platform staff will review it.",
                lambda o, u, note: services.dispute(db.session, o, u, note)),
    "cancel": ("Order cancelled.", lambda o, u, note: services.cancel(db.session, o, u, note)),
    "settle": ("Order marked as settled with the institution.",
               lambda o, u, note: services.settle(db.session, o, u, note)),
}


# Workflow steps staff take elsewhere, never with the plain order buttons: a cancel goes
# through the console intervention (refund of what was paid, reason, audit row) and an order
# settles when its settlement statement is paid (a hand-settled order would leave every
# settlement batch, so the institution would never be paid through a statement).
STAFF_DO_ELSEWHERE = {
    "cancel": "Staff cancel an order with “Cancel with refund”, giving the reason.",
    "settle": "Orders settle when their settlement statement is marked paid "
              "(Settlement in the staff console).",
}


@bp.post("/orders/<int:order_id>/actions/<name>")
@login_required
def order_action(order_id, name):
    order, role = _load_order(order_id)
    if name not in SIMPLE_ACTIONS:
        abort(404)
    if role == "staff" and name in STAFF_DO_ELSEWHERE:
        flash(STAFF_DO_ELSEWHERE[name], "warning")
        return redirect(order_url(order))
    message, action = SIMPLE_ACTIONS[name]
    note = (request.form.get("note") or "").strip()[:5000]
    try:
        outcome = action(order, _user(), note)
    except (workflow.NoteRequired, payments.HoldLapsed) as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    _flash_outcome(outcome, message)
    return redirect(order_url(order))


def _post_form(form_class, prefix):
    form = form_class(prefix=prefix)
    if not form.validate():
        flash(_form_errors(form), "danger")
        return None
    return form


@bp.post("/orders/<int:order_id>/deliver")
@login_required
def deliver(order_id):
    order, _role = _load_order(order_id)
    try:
        workflow.check(order, "deliver", _user())
    except workflow.WorkflowError as exc:
        _refuse(exc)
    form = _post_form(forms.DeliverForm, "deliver")
    if form is None:
        return redirect(order_url(order))
    upload_dir = current_app.config["UPLOAD_DIR"]
    try:
        pending = order_files.check_uploads(form.files.data or [])
        _outcome, delivery = services.deliver(db.session, order, _user(), form.note.data)
        pending.save(db.session, upload_dir, purpose="delivery", user=_user(),
                     order_id=order.id, progress_update_id=delivery.id)
        db.session.commit()
    except uploads.UploadError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except services.OrderError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    except Exception:
        db.session.rollback()
        raise
    flash("Delivered. The buyer has been asked to review the work.", "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/milestones")
@login_required
def add_milestone(order_id):
    order, _role = _load_order(order_id)
    form = _post_form(forms.MilestoneForm, "milestone")
    if form is None:
        return redirect(order_url(order))
    try:
        services.add_milestone(db.session, order, _user(), form.title.data, form.share.share,
                               form.due_date.data)
    except services.OrderError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    db.session.commit()
    flash("Milestone added.", "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/milestones/<int:milestone_id>/done")
@login_required
def milestone_done(order_id, milestone_id):
    order, _role = _load_order(order_id)
    try:
        services.complete_milestone(db.session, order, _user(), milestone_id)
    except services.OrderError as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    except workflow.WorkflowError as exc:
        _refuse(exc)
    db.session.commit()
    flash("Milestone marked as reached.", "success")
    return redirect(order_url(order))


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
        pending = order_files.check_uploads(form.files.data or [])
        update_ = services.post_progress(db.session, order, _user(), form.percent.data,
                                         form.note.data)
        pending.save(db.session, upload_dir, purpose="progress", user=_user(),
                     order_id=order.id, progress_update_id=update_.id)
        db.session.commit()
    except (uploads.UploadError, services.OrderError) as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        if pending:
            pending.discard(upload_dir)
        _refuse(exc)
    flash("Progress posted.", "success")
    return redirect(order_url(order))


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
        pending = order_files.check_uploads(form.files.data or [])
        posted = services.post_message(db.session, order, _user(), form.body.data)
        pending.save(db.session, upload_dir, purpose="message", user=_user(),
                     order_id=order.id, message_id=posted.id)
        db.session.commit()
    except (uploads.UploadError, services.OrderError) as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order) + "#messages")
    except workflow.WorkflowError as exc:
        if pending:
            pending.discard(upload_dir)
        _refuse(exc)
    flash("Message sent.", "success")
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


# --------------------------------------------------------------------------- staff actions

@bp.post("/orders/<int:order_id>/resolve")
@login_required
def resolve(order_id):
    order, _role = _load_order(order_id)
    try:
        workflow.check(order, "resolve", _user(), note="-")
    except workflow.WorkflowError as exc:
        _refuse(exc)
    form = _post_form(forms.RulingForm, "ruling")
    if form is None:
        return redirect(order_url(order))
    try:
        outcome = services.resolve(db.session, order, _user(), form.ruling.data,
                                   form.refund.amount, form.note.data)
    except (services.OrderError, payments.HoldLapsed) as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    _flash_outcome(outcome, "Ruling recorded and the money moved accordingly.")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/refund")
@login_required
def refund(order_id):
    order, _role = _load_order(order_id)
    if not has_role(current_user, "staff"):
        abort(403, "Only platform staff can issue refunds.")
    form = _post_form(forms.RefundForm, "refund")
    if form is None:
        return redirect(order_url(order))
    try:
        done = payments.staff_refund(db.session, order, _user(), form.amount.amount,
                                     form.reason.data, form_token=form.token.data)
        db.session.commit()
    except payments.PaymentError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    except GatewayError as exc:
        db.session.rollback()
        flash(f"Stripe refused the refund: {exc.message}", "danger")
        return redirect(order_url(order))
    from orders.money import format_amount

    message = f"Refunded {format_amount(done.total, order.currency)}"
    if done.voucher:
        message += (f": {format_amount(done.cash, order.currency)} to the buyer and "
                    f"{format_amount(done.voucher, order.currency)} to the innovation voucher "
                    "(in proportion to the voucher's share of the price)")
    flash(message + ".", "success")
    return redirect(order_url(order))


@bp.post("/orders/<int:order_id>/transfer-received")
@login_required
def transfer_received(order_id):
    order, _role = _load_order(order_id)
    try:
        workflow.check(order, "pay", _user())
    except workflow.WorkflowError as exc:
        _refuse(exc)
    form = _post_form(forms.TransferReceivedForm, "transfer")
    if form is None:
        return redirect(order_url(order))
    try:
        payments.mark_transfer_received(db.session, order, _user(), form.amount.amount,
                                        form.reference.data or "")
        db.session.commit()
    except payments.PaymentError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(order_url(order))
    except workflow.WorkflowError as exc:
        _refuse(exc)
    flash("Transfer recorded: the order is paid and the institution has been told.", "success")
    return redirect(order_url(order))


# --------------------------------------------------------------------------- buyer vouchers

@bp.get("/vouchers")
@enterprise_required
def my_vouchers():
    user = _user()
    return render_template("orders/my_vouchers.html",
                           vouchers=vouchers.organisation_vouchers(db.session,
                                                                   user.organisation_id),
                           today=utcnow().date())


# --------------------------------------------------------------------------- Stripe webhook

@bp.post("/stripe/webhook")
def stripe_webhook():
    payload = request.get_data(cache=False)
    try:
        event = construct_event(payload, request.headers.get("Stripe-Signature"),
                                current_app.config.get("STRIPE_WEBHOOK_SECRET") or "")
    except ValueError:
        log.warning("rejected a webhook with a missing or bad signature")
        return jsonify(error="invalid signature"), 400
    try:
        outcome = webhooks.handle_event(db.session, event)
    except GatewayError as exc:
        db.session.rollback()
        log.warning("webhook %s not processed yet: %s", event.get("id"), exc)
        return jsonify(error="payment service unavailable, retry later"), 503
    return jsonify(status=outcome)


csrf.exempt(stripe_webhook)


# --------------------------------------------------------------------------- registration

def share_text(basis_points: int | None) -> str:
    """Basis points as a short percentage: 1250 -> "12.5%", 4000 -> "40%"."""
    text = f"{Decimal(basis_points or 0) / 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def register(app) -> None:
    """Blueprints, template helpers and CLI commands of the buying area."""
    from orders import admin_views, quote_views

    app.register_blueprint(bp)
    app.register_blueprint(quote_views.bp)
    app.register_blueprint(admin_views.bp)

    def cart_count() -> int:
        user = current_user
        if not getattr(user, "is_authenticated", False) or user.role != "enterprise":
            return 0
        return carts.line_count(db.session, user)

    # Globals rather than a context processor: imported macros see them too.
    app.jinja_env.globals.update(cart_count=cart_count, order_status_label=workflow.status_label,
                                 order_status_badge=workflow.status_badge, order_url=order_url)
    app.jinja_env.filters["share"] = share_text
