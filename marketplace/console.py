"""The monitors' console (staff only): dashboard, order progress with SLA status,
interventions and the staff audit log.

Views are thin: they parse input, call ``marketplace.console_service`` and render.
"""

from flask import Blueprint, current_app

bp = Blueprint("console", __name__, url_prefix="/staff")

# (key, label, icon, endpoint candidates). A link shows only when its endpoint is registered,
# so pages other areas add later appear by themselves and missing ones never break the nav.
NAV_ITEMS = (
    ("dashboard", "Dashboard", "bi-speedometer2", ("staff.console",)),
    ("progress", "Progress", "bi-hourglass-split", ("console.progress",)),
    ("orders", "Orders", "bi-receipt", ("orders_admin.orders",)),
    ("credibility", "Credibility", "bi-shield-shaded", ("credibility.console_index",)),
    ("settlement", "Settlement", "bi-cash-coin", ("settlement.batches",)),
    ("reconciliation", "Reconciliation", "bi-arrow-left-right", ("settlement.reconciliation",)),
    ("reviews", "Reviews", "bi-star-half",
     ("reviews.staff_index", "reviews.staff_reviews", "reviews.moderation", "ratings.staff_index")),
    ("verification", "Verification", "bi-patch-check", ("review.verification_queue",)),
    ("moderation", "Moderation", "bi-shield-check", ("review.moderation_queue",)),
    ("vouchers", "Vouchers", "bi-ticket-perforated", ("orders_admin.voucher_programmes",)),
    ("commissions", "Commissions", "bi-percent", ("orders_admin.commissions",)),
    ("audit", "Audit log", "bi-journal-text", ("console.audit",)),
)
ADMIN_ONLY = {"commissions"}


def nav_items(user) -> list[tuple[str, str, str, str]]:
    """(key, label, icon, endpoint) for every console page that exists and ``user`` may open."""
    from marketplace.permissions import has_role

    items = []
    for key, label, icon, candidates in NAV_ITEMS:
        if key in ADMIN_ONLY and not has_role(user, "admin"):
            continue
        endpoint = next((e for e in candidates if e in current_app.view_functions), None)
        if endpoint:
            items.append((key, label, icon, endpoint))
    return items


@bp.app_context_processor
def _console_nav():
    return {"console_nav_items": nav_items}
