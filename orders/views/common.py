"""Helpers every audience's order views share: the viewer, the order they may see, refusals.

Refusals have one handler each (registered on the blueprint in orders/views/__init__.py), so
views do not repeat try/except/rollback/flash:

- a state-machine refusal (workflow.WorkflowError) propagates out of the view and answers
  403 (wrong role) or 409 (wrong state) with the reason, after a rollback;
- a refusal the user can correct (a service's error with a ``message``) is turned by
  ``back_on_refusal(url, ...)`` into ``Refused``: rolled back, flashed, and back to ``url``.
"""

from contextlib import contextmanager

from flask import (
    abort,
    current_app,
    flash,
    url_for,
)
from flask_login import current_user

from marketplace.database import db
from marketplace.permissions import can_view_order, order_role, role_required
from orders import services
from orders.models import Order
from orders.stripe_gateway import test_card_entry_allowed

enterprise_required = role_required("enterprise")


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


class Refused(Exception):
    """A refusal the user can correct: rolled back, its message flashed, back to ``url``."""

    def __init__(self, message: str, url: str, category: str = "danger"):
        super().__init__(message)
        self.message = message
        self.url = url
        self.category = category


@contextmanager
def back_on_refusal(url: str, *kinds: type[Exception], category: str = "danger"):
    """Inside the block, an exception of ``kinds`` becomes ``Refused`` (flash, back to
    ``url``). Commit inside the block so a failing commit is rolled back too."""
    try:
        yield
    except kinds as exc:
        raise Refused(getattr(exc, "message", str(exc)), url, category) from exc


def refusal_status(exc) -> int:
    return exc.status if exc.status in (403, 404, 409) else 400


def _flash_outcome(outcome: services.Outcome, message: str) -> None:
    flash(message, "success")
    if outcome.warning:
        flash(outcome.warning, "warning")


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


def _post_form(form_class, prefix):
    form = form_class(prefix=prefix)
    if not form.validate():
        flash(_form_errors(form), "danger")
        return None
    return form


def _bank_details() -> dict:
    config = current_app.config
    return {"name": config.get("BANK_ACCOUNT_NAME"), "bank": config.get("BANK_NAME"),
            "number": config.get("BANK_ACCOUNT_NUMBER")}
