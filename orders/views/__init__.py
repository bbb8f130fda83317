"""Buying pages, one module per audience, all on ONE blueprint named "orders" so every
endpoint keeps its name (`orders.order_detail`, `orders.checkout`, ...):

- buyer.py: cart, checkout, paying an order, my orders, my vouchers;
- provider.py: orders received, delivery, milestones, progress;
- order_page.py: the order page every party sees, its workflow buttons, messages and files;
- staff.py: staff's order page, rulings, refunds, transfers received;
- webhooks.py: the Stripe webhook;
- common.py: the helpers they share.

Views are thin: parse the input, call a service, commit, redirect. Refusals from the state
machine answer 403 (wrong role) or 409 (wrong state) with the reason, and change nothing.
"""

from decimal import Decimal

from flask import Blueprint, flash, redirect
from flask_login import current_user

from marketplace import permissions
from marketplace.database import db
from marketplace.errors import render_error
from orders import cart as carts
from orders import ledger, payments, timeline, workflow
from orders.views.common import Refused, refusal_status

bp = Blueprint("orders", __name__)


@bp.errorhandler(workflow.WorkflowError)
def _workflow_refusal(exc):
    """The state machine said no: nothing changes, 403/409 with the reason."""
    db.session.rollback()
    status = refusal_status(exc)
    return render_error(status, exc.message if status in (400, 409) else None)


@bp.errorhandler(Refused)
def _refused(exc):
    """A refusal the user can correct: nothing changes, say why, go back."""
    db.session.rollback()
    flash(exc.message, exc.category)
    return redirect(exc.url)

# The submodules attach their routes to `bp`; imported after it exists.
from orders.views import buyer, order_page, provider, staff, webhooks  # noqa: E402, F401
from orders.views.common import order_url  # noqa: E402, F401  (templates, quote_views)
from orders.views.order_page import file_response  # noqa: E402, F401  (quote_views)
from orders.views.staff import staff_detail_page  # noqa: E402, F401  (marketplace/console)

# --------------------------------------------------------------------------- template helpers

def share_text(basis_points: int | None) -> str:
    """Basis points as a short percentage: 1250 -> "12.5%", 4000 -> "40%"."""
    text = f"{Decimal(basis_points or 0) / 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


@bp.record_once
def _template_helpers(state) -> None:
    """Template helpers of the buying area, installed with the blueprint."""
    app = state.app

    def cart_count() -> int:
        user = current_user
        if not permissions.is_buyer_account(user):
            return 0
        return carts.line_count(db.session, user)

    # Globals rather than a context processor: imported macros see them too.
    app.jinja_env.globals.update(timeline_label=timeline.event_label,
                                 timeline_note=timeline.note_text,
                                 timeline_money_events=timeline.MONEY_EVENTS)
    app.jinja_env.globals.update(cart_count=cart_count, order_status_label=workflow.status_label,
                                 order_status_badge=workflow.status_badge, order_url=order_url,
                                 payment_method=payments.get, payment_methods=payments.all_methods,
                                 payment_method_label=payments.label,
                                 payment_status_badge=payments.status_badge,
                                 ledger_posting_label=ledger.posting_label,
                                 ledger_account_label=ledger.account_label)
    app.jinja_env.filters["share"] = share_text
