"""Staff actions on an organisation's standing: watch list, suspension, reinstatement and
enterprise verification, each audited and notified.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.models import Organisation
from providers.credibility.store import (
    recompute,
)

# --------------------------------------------------------------------------- staff actions

ACTION_LABELS = {
    "credibility.watch": _l("Put on watch"),
    "credibility.unwatch": _l("Removed from watch"),
    "enterprise.verify": _l("Enterprise verified"),
    "enterprise.unverify": _l("Enterprise verification withdrawn"),
    "enterprise.suspend": _l("Enterprise suspended"),
    "enterprise.reinstate": _l("Enterprise reinstated"),
    "institution.suspend": _l("Institution suspended"),
    "institution.reinstate": _l("Institution reinstated"),
}


def _require_staff(user) -> None:
    from marketplace.permissions import PermissionDenied, has_role

    if not has_role(user, "staff"):
        raise PermissionDenied(_("Only platform staff can do this."))


def _require_reason(reason: str | None) -> str:
    from providers.errors import RuleError

    reason = (reason or "").strip()
    if not reason:
        raise RuleError(_("Give a reason: it is recorded and sent to the organisation."),
                        field="reason")
    if len(reason) > 2000:
        raise RuleError(_("Keep the reason under 2,000 characters."), field="reason")
    return reason


def _notify(session: Session, org: Organisation, kind: str, title, body, link: str) -> None:
    """Notify every active member of ``org``; ``title`` and ``body`` are functions of no
    argument, called in each recipient's language."""
    from marketplace import notifications
    from marketplace.models import User

    members = session.scalars(select(User).where(User.organisation_id == org.id,
                                                 User.active.is_(True))).all()
    for member in members:
        with force_locale(member.locale or current_app.config["DEFAULT_LOCALE"]):
            notifications.notify(session, member, kind, title(), body(), link)


def _account_link(org: Organisation) -> str:
    return "/provider" if org.kind == "provider" else "/account"


def set_watch(session: Session, staff, org: Organisation, watch: bool, reason: str) -> None:
    """Put an organisation on the staff watch list or take it off, with a reason."""
    from marketplace import audit
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if watch:
        advance(session, org, "watch", (False,), _("%(name)s is already on watch.",
                                                     name=org.name), watch=True)
        audit.record(session, staff, "credibility.watch", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "credibility.watch",
                lambda: _("Platform staff are watching your account"),
                lambda: _("Platform staff put %(name)s on their watch list: your orders and "
                          "reviews are followed more closely for a while. Reason: %(reason)s",
                          name=org.name, reason=reason), link=_account_link(org))
    else:
        advance(session, org, "watch", (True,), _("%(name)s is not on watch.", name=org.name),
                watch=False)
        audit.record(session, staff, "credibility.unwatch", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "credibility.unwatch",
                lambda: _("Your account is no longer on watch"),
                lambda: _("Platform staff took %(name)s off their watch list. Note: %(reason)s",
                          name=org.name, reason=reason), link=_account_link(org))


def suspend(session: Session, staff, org: Organisation, reason: str) -> None:
    """Suspend an organisation. Institutions go through providers.onboarding.suspend (it hides
    every listing); an enterprise can no longer place orders (orders.checkout refuses)."""
    from marketplace import audit
    from providers import onboarding
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if org.kind == "provider":
        onboarding.suspend(session, staff, org, reason)
    else:
        advance(session, org, "suspended", (False,), _("%(name)s is already suspended.",
                                                          name=org.name),
                suspended=True, suspended_reason=reason)
        audit.record(session, staff, "enterprise.suspend", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "enterprise.suspended",
                lambda: _("%(name)s has been suspended", name=org.name),
                lambda: _("Platform staff suspended your enterprise: you cannot place new "
                          "orders, request quotes or apply for financial products until it is "
                          "reinstated. Orders already placed continue. Reason: %(reason)s",
                          reason=reason), link="/account")
    recompute(session, org)


def reinstate(session: Session, staff, org: Organisation, reason: str) -> None:
    from marketplace import audit
    from providers import onboarding
    from providers.state import advance

    _require_staff(staff)
    reason = _require_reason(reason)
    if org.kind == "provider":
        onboarding.reinstate(session, staff, org, reason)
    else:
        advance(session, org, "suspended", (True,), _("%(name)s is not suspended.",
                                                         name=org.name),
                suspended=False, suspended_reason=None)
        audit.record(session, staff, "enterprise.reinstate", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "enterprise.reinstated",
                lambda: _("%(name)s has been reinstated", name=org.name),
                lambda: _("Your enterprise can place orders again. Note from platform staff: "
                          "%(reason)s", reason=reason), link="/account")
    recompute(session, org)


def set_enterprise_verified(session: Session, staff, org: Organisation, verified: bool,
                            reason: str) -> None:
    """Staff verify an enterprise (its registration checked against the business register,
    beyond the credit code's check digit) or withdraw that, with a reason. Institutions are
    verified through their application (providers.onboarding), never here."""
    from marketplace import audit
    from providers.errors import RuleError
    from providers.state import advance

    _require_staff(staff)
    if org.kind != "enterprise":
        raise RuleError(_("Institutions are verified through their application, in the "
                          "verification queue."))
    reason = _require_reason(reason)
    if verified:
        advance(session, org, "verification_status",
                ("unverified", "pending", "more_info", "rejected"),
                _("%(name)s is already verified.", name=org.name),
                verification_status="verified",
                verified_at=utcnow())
        audit.record(session, staff, "enterprise.verify", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "enterprise.verified",
                lambda: _("%(name)s is verified", name=org.name),
                lambda: _("Platform staff verified your enterprise's registration; it now "
                          "counts in full towards your credibility score. Note: %(reason)s",
                          reason=reason), link="/account")
    else:
        advance(session, org, "verification_status", ("verified",),
                _("%(name)s is not verified.", name=org.name),
                verification_status="unverified",
                verified_at=None)
        audit.record(session, staff, "enterprise.unverify", org, reason=reason,
                     score=org.credibility_score)
        _notify(session, org, "enterprise.unverified",
                lambda: _("%(name)s is no longer verified", name=org.name),
                lambda: _("Platform staff withdrew the verification of your enterprise. "
                          "Reason: %(reason)s", reason=reason), link="/account")
    recompute(session, org)


def actions_history(session: Session, org: Organisation, limit: int = 20) -> list:
    """Staff decisions about this organisation's standing, newest first."""
    from marketplace.models import AuditLog

    return list(session.scalars(
        select(AuditLog).where(AuditLog.target_type == "organisation",
                               AuditLog.target_id == org.id,
                               AuditLog.action.in_(list(ACTION_LABELS)))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)).all())

