"""Staff actions on an organisation's standing: watch list, suspension, reinstatement and
enterprise verification, each audited and notified.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.models import Organisation
from providers.credibility.store import (
    recompute,
)

# --------------------------------------------------------------------------- staff actions

ACTION_LABELS = {
    "credibility.watch": "Put on watch",
    "credibility.unwatch": "Removed from watch",
    "enterprise.verify": "Enterprise verified",
    "enterprise.unverify": "Enterprise verification withdrawn",
    "enterprise.suspend": "Enterprise suspended",
    "enterprise.reinstate": "Enterprise reinstated",
    "institution.suspend": "Institution suspended",
    "institution.reinstate": "Institution reinstated",
}


def _require_staff(user) -> None:
    from marketplace.permissions import PermissionDenied, has_role

    if not has_role(user, "staff"):
        raise PermissionDenied("Only platform staff can do this.")


def _require_reason(reason: str | None) -> str:
    from providers.errors import RuleError

    reason = (reason or "").strip()
    if not reason:
        raise RuleError("Give a reason: it is recorded and sent to the organisation.",
                        field="reason")
    if len(reason) > 2000:
        raise RuleError("Keep the reason under 2,000 characters.", field="reason")
    return reason


def _account_link(org: Organisation) -> str:
    return "/provider" if org.kind == "provider" else "/account"


def set_watch(session: Session, staff, org: Organisation, watch: bool, reason: str) -> None:
    """Put an organisation on the staff watch list or take it off, with a reason."""
    from marketplace import audit, notifications
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if watch:
        advance(session, org, "watch", (False,), f"{org.name} is already on watch.", watch=True)
        audit.record(session, staff, "credibility.watch", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "credibility.watch", "Platform staff are watching your account",
            f"Platform staff put {org.name} on their watch list: your orders and reviews are "
            f"followed more closely for a while. Reason: {reason}", link=_account_link(org))
    else:
        advance(session, org, "watch", (True,), f"{org.name} is not on watch.", watch=False)
        audit.record(session, staff, "credibility.unwatch", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "credibility.unwatch", "Your account is no longer on watch",
            f"Platform staff took {org.name} off their watch list. Note: {reason}",
            link=_account_link(org))


def suspend(session: Session, staff, org: Organisation, reason: str) -> None:
    """Suspend an organisation. Institutions go through providers.onboarding.suspend (it hides
    every listing); an enterprise can no longer place orders (orders.checkout refuses)."""
    from marketplace import audit, notifications
    from providers import onboarding
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if org.kind == "provider":
        onboarding.suspend(session, staff, org, reason)
    else:
        advance(session, org, "suspended", (False,), f"{org.name} is already suspended.",
                suspended=True, suspended_reason=reason)
        audit.record(session, staff, "enterprise.suspend", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "enterprise.suspended", f"{org.name} has been suspended",
            "Platform staff suspended your enterprise: you cannot place new orders, request "
            "quotes or apply for financial products until it is reinstated. Orders already "
            f"placed continue. Reason: {reason}", link="/account")
    recompute(session, org)


def reinstate(session: Session, staff, org: Organisation, reason: str) -> None:
    from marketplace import audit, notifications
    from providers import onboarding
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if org.kind == "provider":
        onboarding.reinstate(session, staff, org, reason)
    else:
        advance(session, org, "suspended", (True,), f"{org.name} is not suspended.",
                suspended=False, suspended_reason=None)
        audit.record(session, staff, "enterprise.reinstate", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "enterprise.reinstated", f"{org.name} has been reinstated",
            f"Your enterprise can place orders again. Note from platform staff: {reason}",
            link="/account")
    recompute(session, org)


def set_enterprise_verified(session: Session, staff, org: Organisation, verified: bool,
                            reason: str) -> None:
    """Staff verify an enterprise (its registration checked against the business register,
    beyond the credit code's check digit) or withdraw that, with a reason. Institutions are
    verified through their application (providers.onboarding), never here."""
    from marketplace import audit, notifications
    from providers.errors import RuleError
    from providers.state import advance

    _require_staff(staff)
    if org.kind != "enterprise":
        raise RuleError("Institutions are verified through their application, in the "
                        "verification queue.")
    reason = _require_reason(reason)
    if verified:
        advance(session, org, "verification_status",
                ("unverified", "pending", "more_info", "rejected"),
                f"{org.name} is already verified.", verification_status="verified",
                verified_at=utcnow())
        audit.record(session, staff, "enterprise.verify", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "enterprise.verified", f"{org.name} is verified",
            "Platform staff verified your enterprise's registration; it now counts in full "
            f"towards your credibility score. Note: {reason}", link="/account")
    else:
        advance(session, org, "verification_status", ("verified",),
                f"{org.name} is not verified.", verification_status="unverified",
                verified_at=None)
        audit.record(session, staff, "enterprise.unverify", org, reason=reason,
                     score=org.credibility_score)
        notifications.notify_organisation(
            session, org, "enterprise.unverified", f"{org.name} is no longer verified",
            f"Platform staff withdrew the verification of your enterprise. Reason: {reason}",
            link="/account")
    recompute(session, org)


def actions_history(session: Session, org: Organisation, limit: int = 20) -> list:
    """Staff decisions about this organisation's standing, newest first."""
    from marketplace.models import AuditLog

    return list(session.scalars(
        select(AuditLog).where(AuditLog.target_type == "organisation",
                               AuditLog.target_id == org.id,
                               AuditLog.action.in_(list(ACTION_LABELS)))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)).all())

