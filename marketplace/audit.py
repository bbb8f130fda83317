"""The audit trail: one row per decision or intervention, written in the action's transaction."""

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from marketplace.models import AuditLog

# What the audit log shows for each recorded action and target (the stored codes stay
# English; an unknown code is shown as stored).
ACTION_LABELS = {
    "commission.set_category": _l("Category commission rate set"),
    "commission.set_provider": _l("Contract commission rate set"),
    "credibility.watch": _l("Put on watch"),
    "credibility.unwatch": _l("Removed from watch"),
    "enterprise.verify": _l("Enterprise verified"),
    "enterprise.unverify": _l("Enterprise verification withdrawn"),
    "enterprise.suspend": _l("Enterprise suspended"),
    "enterprise.reinstate": _l("Enterprise reinstated"),
    "institution.approve": _l("Institution approved"),
    "institution.reject": _l("Institution rejected"),
    "institution.request_info": _l("More information requested"),
    "institution.submit": _l("Institution application submitted"),
    "institution.profile": _l("Institution profile changed"),
    "institution.document_add": _l("Qualification document added"),
    "institution.document_remove": _l("Qualification document removed"),
    "institution.suspend": _l("Institution suspended"),
    "institution.reinstate": _l("Institution reinstated"),
    "listing.create": _l("Listing created"),
    "listing.submit": _l("Listing submitted for review"),
    "listing.approve": _l("Listing approved"),
    "listing.reject": _l("Listing rejected"),
    "listing.submit_change": _l("Listing change submitted"),
    "listing.approve_change": _l("Listing change approved"),
    "listing.reject_change": _l("Listing change rejected"),
    "listing.discard_change": _l("Listing change discarded"),
    "listing.duplicate": _l("Listing duplicated"),
    "listing.withdraw": _l("Listing withdrawn"),
    "listing.archive": _l("Listing archived"),
    "listing.restore": _l("Listing restored"),
    "listing.suspend": _l("Listing suspended"),
    "listing.reinstate": _l("Listing reinstated"),
    "login_lockout.cleared": _l("Sign-in lockout cleared"),
    "order.note": _l("Staff note on an order"),
    "order.extend_deadline": _l("Order deadline extended"),
    "order.extend_milestone": _l("Milestone extended"),
    "order.nudge": _l("Party reminded"),
    "order.cancel": _l("Order cancelled"),
    "order.refund": _l("Order refunded"),
    "order.resolve": _l("Dispute ruled on"),
    "order.transfer_received": _l("Bank transfer confirmed"),
    "review.hide": _l("Review hidden"),
    "review.unhide": _l("Review shown again"),
    "team.invite": _l("Team member invited"),
    "team.join": _l("Team member joined"),
    "team.leave": _l("Team member left"),
    "team.make_owner": _l("Ownership transferred"),
    "team.remove": _l("Team member removed"),
    "team.revoke": _l("Invitation revoked"),
    "voucher.grant": _l("Voucher granted"),
    "voucher_programme.create": _l("Voucher programme created"),
    "settlement.batch_created": _l("Settlement batch created"),
    "settlement.statement_paid": _l("Statement marked paid"),
    "settlement.statement_refreshed": _l("Statement figures refreshed"),
}
TARGET_LABELS = {
    "organisation": _l("Organisation"),
    "user_account": _l("User"),
    "purchase_order": _l("Order"),
    "product": _l("Listing"),
    "review": _l("Review"),
    "voucher": _l("Voucher"),
    "voucher_programme": _l("Voucher programme"),
    "commission_rate": _l("Commission rate"),
    "provider_commission": _l("Contract rate"),
    "category": _l("Category"),
    "invitation": _l("Invitation"),
    "login_throttle": _l("Sign-in lockout"),
    "settlement_statement": _l("Settlement statement"),
    "settlement_batch": _l("Settlement batch"),
    "refund": _l("Refund"),
    "payment": _l("Payment"),
}


DETAIL_LABELS = {
    "number": _l("Number"), "field": _l("Field"), "before": _l("Before"), "after": _l("After"),
    "party": _l("Party"), "amount": _l("Amount"), "currency": _l("Currency"), "net": _l("Net"),
    "orders": _l("Orders"), "period": _l("Period"), "reference": _l("Reference"),
    "ruling": _l("Ruling"), "sequence": _l("Run"), "score": _l("Score"),
    "provider": _l("Institution"), "changes": _l("Changes"), "refund": _l("Refund"),
    "rate": _l("Rate"), "code": _l("Code"), "email": _l("Email"), "role": _l("Role"),
    "status": _l("Status"), "note": _l("Note"), "milestone": _l("Milestone"),
}


def detail_label(key: str) -> str:
    return str(DETAIL_LABELS.get(key, key))


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def target_label(target_type: str) -> str:
    return str(TARGET_LABELS.get(target_type, target_type))


def record(session: Session, actor, action: str, target, reason: str | None = None,
           **details) -> AuditLog:
    """Record that ``actor`` (a User or None for the system) did ``action`` to ``target``."""
    entry = AuditLog(
        actor_id=getattr(actor, "id", None),
        action=action,
        target_type=type(target).__tablename__,
        target_id=target.id,
        reason=reason,
        details=details,
    )
    session.add(entry)
    return entry
