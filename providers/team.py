"""An institution's team: invitations by email link or code, joining, leaving, removal.

Rules:
- only the institution's owner(s) invite, revoke, remove and promote;
- an invitation carries a random secret code; only its SHA-256 is stored. The code is in the
  emailed link and shown once to the owner, who may pass it on by hand;
- invitations expire after ``INVITATION_DAYS`` days and can be revoked; each is used once;
- an account belongs to at most one organisation: a user already in one (or a staff
  account) is refused clearly; a provider account without an organisation, or a new
  account created through the link, joins;
- members may leave; the last owner cannot leave, and an owner never removes himself.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from marketplace import audit, notifications, permissions
from marketplace.database import utcnow
from marketplace.models import Organisation, User
from marketplace.passwords import hash_password, password_problems
from marketplace.permissions import is_institution_owner
from providers import links
from providers.errors import PermissionDenied, RuleError
from providers.models import Invitation

INVITATION_DAYS = 7
MAX_OPEN_INVITATIONS = 20


def hash_code(code: str) -> str:
    return hashlib.sha256((code or "").strip().encode()).hexdigest()


def invitation_state(invitation: Invitation, now=None) -> str:
    now = now or utcnow()
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def _require_owner(user, org: Organisation) -> None:
    if not is_institution_owner(user, org):
        raise PermissionDenied("Only the institution's account owner can manage the team.")


def members(session: Session, org: Organisation) -> list[User]:
    return list(session.scalars(select(User).where(User.organisation_id == org.id)
                                .order_by(User.is_org_owner.desc(), User.created_at, User.id)))


def invitations(session: Session, org: Organisation) -> list[Invitation]:
    return list(session.scalars(select(Invitation).where(Invitation.organisation_id == org.id)
                                .order_by(Invitation.created_at.desc(), Invitation.id.desc())))


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    code: str  # shown once to the owner; never stored
    link: str  # the absolute join link emailed (SITE_URL), also shown once to the owner


def invite(session: Session, owner, org: Organisation, email: str) -> NewInvitation:
    """Invite ``email``; emails the join link, absolute on SITE_URL (never on the Host header
    of the owner's request, which a client can set to anything)."""
    _require_owner(owner, org)
    try:
        email = validate_email(email or "", check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise RuleError("Enter a valid email address, like name@institution.cn.",
                        field="email") from exc
    existing = session.scalar(select(User).where(User.email == email))
    if existing is not None and existing.organisation_id == org.id:
        raise RuleError(f"{email} is already a member of {org.name}.", field="email")
    now = utcnow()
    open_invites = [inv for inv in invitations(session, org) if invitation_state(inv, now) == "open"]
    if any(inv.email == email for inv in open_invites):
        raise RuleError(f"There is already an open invitation for {email}. Revoke it first if "
                        "you need a new code.", field="email")
    if len(open_invites) >= MAX_OPEN_INVITATIONS:
        raise RuleError("You have too many open invitations; revoke unused ones first.")
    code = secrets.token_urlsafe(24)
    invitation = Invitation(organisation_id=org.id, email=email, code_hash=hash_code(code),
                            invited_by_id=owner.id, created_at=now,
                            expires_at=now + timedelta(days=INVITATION_DAYS))
    session.add(invitation)
    session.flush()
    audit.record(session, owner, "team.invite", org, invitation_id=invitation.id, email=email)
    link = notifications.absolute_url(links.join(code))
    body = (f"{owner.full_name} invites you to join {org.name} on the Innovation Service "
            f"Supermarket (创新服务超市), to manage its listings and orders.\n\n"
            f"Open this link to accept within {INVITATION_DAYS} days:\n{link}\n\n"
            f"Or enter this invitation code after logging in: {code}\n\n"
            "If you did not expect this invitation you can ignore this email.")
    notifications.queue_email(session, email, f"Invitation to join {org.name}", body)
    if existing is not None and existing.active:
        notifications.notify(session, existing, "team.invited", f"Invitation to join {org.name}",
                             "Open the invitation to accept it.", link=links.join(code),
                             email=False)
    return NewInvitation(invitation, code, link)


def revoke(session: Session, owner, invitation: Invitation) -> None:
    _require_owner(owner, invitation.organisation)
    if invitation_state(invitation) != "open":
        raise RuleError("This invitation is no longer open.")
    invitation.revoked_at = utcnow()
    audit.record(session, owner, "team.revoke", invitation.organisation,
                 invitation_id=invitation.id, email=invitation.email)
    session.flush()


def find_invitation(session: Session, code: str) -> Invitation | None:
    if not code or len(code) > 200:
        return None
    return session.scalar(select(Invitation).where(Invitation.code_hash == hash_code(code)))


INVALID_CODE = ("This invitation code is not valid. Check that you copied the whole link or "
                "code, or ask the institution for a new invitation.")


def require_open(invitation: Invitation | None) -> Invitation:
    if invitation is None:
        raise RuleError(INVALID_CODE, field="code")
    state = invitation_state(invitation)
    if state == "expired":
        raise RuleError(f"This invitation expired on {invitation.expires_at:%Y-%m-%d}. Ask the "
                        "institution's owner to send a new one.", field="code")
    if state == "revoked":
        raise RuleError("This invitation has been withdrawn by the institution.", field="code")
    if state == "accepted":
        raise RuleError("This invitation has already been used.", field="code")
    return invitation


def join_refusal(user, invitation: Invitation) -> str | None:
    """Why this signed-in user cannot accept the invitation (None when they can)."""
    org = invitation.organisation
    if user.organisation_id == org.id:
        return f"You are already a member of {org.name}."
    if permissions.is_staff(user):
        return ("Platform staff accounts cannot join an institution. Log out and open the link "
                "again to create a separate institution account.")
    if user.organisation_id is not None:
        current = user.organisation
        kind = "institution" if current.kind == "provider" else "company"
        return (f"Your account already belongs to the {kind} {current.name}, and an account "
                f"can belong to one organisation only. Leave {current.name} first, or log out "
                f"and create a new account through this link with another email address.")
    if user.role != "provider":
        return ("Only service-institution accounts can join an institution. Log out and create "
                "a new account through this link.")
    return None


def _join(session: Session, user: User, invitation: Invitation) -> None:
    org = invitation.organisation
    session.flush()
    # Claim the invitation with one conditional UPDATE: two people using the same code at
    # the same moment cannot both join.
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
               Invitation.revoked_at.is_(None))
        .values(accepted_at=utcnow(), accepted_by_id=user.id)
        .execution_options(synchronize_session="fetch"))
    if claimed.rowcount != 1:
        raise RuleError("This invitation has already been used.", field="code")
    session.refresh(invitation)
    user.organisation_id = org.id
    user.is_org_owner = False
    session.flush()
    audit.record(session, user, "team.join", org, invitation_id=invitation.id, user_id=user.id)
    for owner in owners(session, org):
        if owner.id != user.id:
            notifications.notify(session, owner, "team.joined",
                                 f"{user.full_name} joined {org.name}",
                                 f"{user.full_name} ({user.email}) accepted your invitation.",
                                 link=links.TEAM)


def accept(session: Session, user: User, code: str) -> Organisation:
    """A signed-in account accepts an invitation."""
    invitation = require_open(find_invitation(session, code))
    refusal = join_refusal(user, invitation)
    if refusal:
        raise RuleError(refusal, field="code")
    _join(session, user, invitation)
    return invitation.organisation


@dataclass(frozen=True)
class JoinSignup:
    full_name: str
    email: str
    phone: str
    password: str


def signup_and_accept(session: Session, code: str, data: JoinSignup) -> User:
    """Create a provider account through an invitation link and join the institution."""
    invitation = require_open(find_invitation(session, code))
    email = (data.email or "").strip().lower()
    taken = session.scalar(select(func.count()).select_from(User).where(User.email == email))
    if taken:
        raise RuleError(f"An account with {email} already exists. Log in with it to accept the "
                        "invitation.", field="email")
    problems = password_problems(data.password, email)
    if problems:
        raise RuleError(" ".join(problems), field="password")
    user = User(email=email, full_name=data.full_name.strip(), phone=data.phone.strip() or None,
                password_hash=hash_password(data.password), role="provider", is_org_owner=False)
    session.add(user)
    session.flush()
    _join(session, user, invitation)
    return user


def owners(session: Session, org: Organisation) -> list[User]:
    return [member for member in members(session, org) if member.is_org_owner and member.active]


def leave(session: Session, user: User) -> Organisation:
    org = user.organisation
    if org is None or org.kind != "provider" or user.role != "provider":
        raise PermissionDenied("You are not a member of an institution.")
    if user.is_org_owner and len(owners(session, org)) <= 1:
        raise RuleError("You are the institution's only owner, so you cannot leave. Make another "
                        "member an owner first.")
    user.organisation_id = None
    user.is_org_owner = False
    audit.record(session, user, "team.leave", org, user_id=user.id)
    for owner in owners(session, org):
        if owner.id != user.id:
            notifications.notify(session, owner, "team.left", f"{user.full_name} left {org.name}",
                                 link=links.TEAM)
    session.flush()
    return org


def remove_member(session: Session, owner, org: Organisation, member: User) -> None:
    _require_owner(owner, org)
    if member.id == owner.id:
        raise RuleError("You cannot remove yourself. To leave, make another member an owner "
                        "first and then use “Leave institution”.")
    if member.organisation_id != org.id:
        raise PermissionDenied("That person is not a member of your institution.")
    if member.is_org_owner:
        raise RuleError("Owners cannot be removed by another owner; they can leave themselves.")
    member.organisation_id = None
    member.is_org_owner = False
    audit.record(session, owner, "team.remove", org, user_id=member.id)
    notifications.notify(session, member, "team.removed", f"You were removed from {org.name}",
                         f"{owner.full_name} removed your account from {org.name}. You can no "
                         "longer manage its listings.")
    session.flush()


def make_owner(session: Session, owner, org: Organisation, member: User) -> None:
    _require_owner(owner, org)
    if member.organisation_id != org.id:
        raise PermissionDenied("That person is not a member of your institution.")
    if member.is_org_owner:
        raise RuleError(f"{member.full_name} is already an owner.")
    member.is_org_owner = True
    audit.record(session, owner, "team.make_owner", org, user_id=member.id)
    notifications.notify(session, member, "team.owner", f"You are now an owner of {org.name}",
                         "You can now invite and remove team members.", link=links.TEAM)
    session.flush()
