"""The rules of the demand side: needs, moderation, invitations, proposals, award.

Every function takes a session, checks who may act and what state the objects are in, and
either does all of its writes or raises ``DemandError`` before the first one (so a refused
action leaves nothing half written); it flushes, the caller commits.

Lifecycle of a need: draft → submitted (staff moderation) → open (matching invites the best
institutions) → awarded (one proposal became a quote-mode order) | closed (by the enterprise,
without award) | expired (deadline passed without proposals, or long after it without an
award). Returned by staff: submitted → draft with the reason.

Award goes through the existing quote path (orders.quotes): the winning proposal becomes a
quote request and a quote on the institution's listing, accepted by the enterprise at once,
so the order has the same payment methods, vouchers, milestones, state machine and ledger
as any accepted quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.models import Category, Favourite, Product
from catalog.services import visible_products_condition
from demand.models import (
    BUDGET_KINDS,
    VISIBILITIES,
    Need,
    NeedInvitation,
    NeedVersion,
    Proposal,
    ProposalMessage,
    ProposalVersion,
)
from marketplace import audit, reference
from marketplace.database import utcnow
from marketplace.i18n import format_date, format_datetime
from marketplace.models import Organisation, User
from marketplace.notifications import notify_organisation
from marketplace.permissions import (
    has_role,
    is_buyer_account,
    is_member_of,
    may_buy,
    need_role,
)
from orders.models import Order, Quote, QuoteRequest
from orders.money import format_amount

DEFAULT_INVITES = 8
DEFAULT_AWARD_DAYS = 30  # after the deadline, an open need with proposals but no award expires
MAX_TITLE = 200
MAX_TEXT = 20_000
REGION_CODES = {code for code, _en, _zh in reference.REGIONS}
NEED_STATUS_LABELS = {
    "draft": (_l("Draft"), "secondary"), "submitted": (_l("Awaiting moderation"), "warning"),
    "open": (_l("Open for proposals"), "success"), "awarded": (_l("Awarded"), "primary"),
    "closed": (_l("Closed without award"), "secondary"),
    "expired": (_l("Expired"), "secondary"),
}
PROPOSAL_STATUS_LABELS = {
    "active": (_l("Active"), "success"), "withdrawn": (_l("Withdrawn"), "secondary"),
    "awarded": (_l("Awarded"), "primary"), "not_selected": (_l("Not selected"), "secondary"),
}
DECLINE_REASONS = {
    "out_of_scope": _l("Outside our services"),
    "capacity": _l("No capacity before the deadline"),
    "budget": _l("Budget too low"),
    "region": _l("We do not serve this region"),
    "unclear": _l("The need is not clear enough"),
    "other": _l("Other"),
}


class DemandError(ValueError):
    """A refused action: ``message`` is said to the user; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _setting(name: str, default: int) -> int:
    try:
        return int(current_app.config.get(name, default))
    except RuntimeError:
        return default


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _refresh_credibility(session: Session, org_ids, now: datetime) -> None:
    """Recompute the credibility of organisations whose demand-side record just changed
    (demand/credibility.py feeds both sides' scores)."""
    from providers import credibility

    ids = sorted({org_id for org_id in org_ids if org_id is not None})
    if ids:
        credibility.recompute_many(session, ids, now=now)


def need_link(need: Need, side: str = "buyer") -> str:
    return f"/needs/{need.id}" if side == "buyer" else f"/demand/{need.id}"


# --------------------------------------------------------------------------- who

def _require_enterprise(user: User) -> None:
    if not is_buyer_account(user):
        raise DemandError(_("Only enterprise accounts can publish needs."), status=403)
    if not may_buy(user):
        from providers.credibility import suspended_buyer_message

        raise DemandError(suspended_buyer_message(user.organisation), status=403)


def _require_owner(user: User, need: Need) -> None:
    if user.role != "enterprise" or not is_member_of(user, need.buyer_org_id):
        raise DemandError(_("Only the enterprise that published this need can do that."),
                          status=403)


def _require_staff(user: User) -> None:
    if not has_role(user, "staff"):
        raise DemandError(_("Only platform staff can do that."), status=403)


def _require_institution(user: User) -> Organisation:
    if user.role != "provider" or user.organisation is None:
        raise DemandError(_("Only service institutions can answer needs."), status=403)
    org = user.organisation
    if org.suspended:
        raise DemandError(_("Your institution is suspended by the platform and cannot send "
                          "proposals or answer needs until it is reinstated."), status=403)
    if not org.is_verified:
        raise DemandError(_("Your institution must be verified before it can answer needs."),
                          status=403)
    return org


def invitation_for(session: Session, need: Need, org_id: int | None) -> NeedInvitation | None:
    if org_id is None:
        return None
    return session.scalar(select(NeedInvitation).where(
        NeedInvitation.need_id == need.id, NeedInvitation.provider_org_id == org_id))


def proposal_for(session: Session, need: Need, org_id: int | None) -> Proposal | None:
    if org_id is None:
        return None
    return session.scalar(select(Proposal).where(Proposal.need_id == need.id,
                                                 Proposal.provider_org_id == org_id))


def provider_access(session: Session, user, need: Need) -> bool:
    """Whether the user's institution was invited to the need (and not removed by staff) or
    has a proposal on it: what makes an invitation-only need readable to it."""
    if getattr(user, "role", None) != "provider" or user.organisation_id is None:
        return False
    invitation = invitation_for(session, need, user.organisation_id)
    if invitation is not None and invitation.status != "removed":
        return True
    return proposal_for(session, need, user.organisation_id) is not None


def role_on(session: Session, user, need: Need) -> str | None:
    return need_role(user, need, invited=provider_access(session, user, need))


def require_view(session: Session, user, need: Need) -> str:
    """The user's role on the need, or DemandError 404 (a need one may not read does not
    exist for them; its title is not leaked)."""
    role = role_on(session, user, need)
    if role is None:
        raise DemandError(_("No such need."), status=404)
    return role


# --------------------------------------------------------------------------- need data

@dataclass
class NeedData:
    title: str = ""
    description: str = ""
    category_id: int | None = None
    budget_kind: str = "open"
    budget_min: int | None = None
    budget_max: int | None = None
    financial_amount: int | None = None
    financial_term_months: int | None = None
    financial_purpose: str | None = None
    proposal_deadline: datetime | None = None
    wanted_delivery: date | None = None
    region: str | None = None
    visibility: str = "public"
    show_company: bool = True

    FIELDS = ("title", "description", "category_id", "budget_kind", "budget_min",
              "budget_max", "financial_amount", "financial_term_months", "financial_purpose",
              "proposal_deadline", "wanted_delivery", "region", "visibility", "show_company")

    @classmethod
    def of(cls, need: Need) -> NeedData:
        return cls(**{name: getattr(need, name) for name in cls.FIELDS})

    def apply(self, need: Need) -> None:
        for name in self.FIELDS:
            setattr(need, name, getattr(self, name))


def snapshot_of(need: Need) -> dict:
    data = NeedData.of(need)
    values = {name: getattr(data, name) for name in NeedData.FIELDS}
    values["proposal_deadline"] = _aware(need.proposal_deadline).isoformat()
    values["wanted_delivery"] = need.wanted_delivery.isoformat() if need.wanted_delivery else None
    return values


def validate_need(session: Session, data: NeedData, now: datetime) -> NeedData:
    """Check a need's fields; raise DemandError with the first problem, in form order."""
    data.title = (data.title or "").strip()
    data.description = (data.description or "").strip()
    if not data.title:
        raise DemandError(_("Give the need a title."))
    if len(data.title) > MAX_TITLE:
        raise DemandError(_("The title is longer than %(count)s characters.", count=MAX_TITLE))
    if not data.description:
        raise DemandError(_("Describe the need: what you want done, for what and by when."))
    if len(data.description) > MAX_TEXT:
        raise DemandError(_("The description is longer than %(count)s characters.",
                                count=format(MAX_TEXT, ",")))
    category = session.get(Category, data.category_id) if data.category_id else None
    if category is None or category.parent_id is None:
        raise DemandError(_("Choose the sub-category that fits the need."))
    if data.budget_kind not in BUDGET_KINDS:
        raise DemandError(_("Choose a budget: fixed, a range, or open to proposals."))
    for amount in (data.budget_min, data.budget_max):
        if amount is not None and amount <= 0:
            raise DemandError(_("Budget amounts must be more than zero."))
    if data.budget_kind == "fixed":
        if data.budget_min is None:
            raise DemandError(_("Enter the fixed budget."))
        data.budget_max = data.budget_min
    elif data.budget_kind == "range":
        if data.budget_min is None or data.budget_max is None:
            raise DemandError(_("Enter both ends of the budget range."))
        if data.budget_min > data.budget_max:
            raise DemandError(_("The budget's minimum is above its maximum."))
    else:
        data.budget_min = data.budget_max = None
    if (category.parent and category.parent.slug == "finance"):
        if not data.financial_amount or data.financial_amount <= 0:
            raise DemandError(_("A financing need says the amount wanted."))
        if not data.financial_term_months or not 1 <= data.financial_term_months <= 360:
            raise DemandError(_("The financing term is between 1 and 360 months."))
        data.financial_purpose = (data.financial_purpose or "").strip()
        if not data.financial_purpose:
            raise DemandError(_("Say what the financing is for."))
    else:
        data.financial_amount = data.financial_term_months = None
        data.financial_purpose = None
    if data.proposal_deadline is None:
        raise DemandError(_("Set the deadline for proposals."))
    data.proposal_deadline = _aware(data.proposal_deadline)
    if data.proposal_deadline <= now:
        raise DemandError(_("The proposal deadline is in the past."))
    if data.wanted_delivery is not None and data.wanted_delivery < data.proposal_deadline.date():
        raise DemandError(_("The wanted delivery date is before the proposal deadline."))
    if data.region is not None and data.region not in REGION_CODES:
        raise DemandError(_("Choose a region from the list."))
    if data.visibility not in VISIBILITIES:
        raise DemandError(_("Choose who sees the need: the demand board or invited "
                          "institutions only."))
    data.show_company = bool(data.show_company)
    return data


# --------------------------------------------------------------------------- needs

def create_need(session: Session, user: User, data: NeedData,
                now: datetime | None = None) -> Need:
    now = now or utcnow()
    _require_enterprise(user)
    validate_need(session, data, now)
    need = Need(buyer_org_id=user.organisation_id, author_id=user.id, status="draft",
                created_at=now, updated_at=now)
    data.apply(need)
    need.currency = _currency()
    session.add(need)
    session.flush()
    return need


def _currency() -> str:
    try:
        return current_app.config.get("CURRENCY", "CNY")
    except RuntimeError:
        return "CNY"


def update_need(session: Session, user: User, need: Need, data: NeedData, note: str = "",
                now: datetime | None = None) -> Need:
    """Edit a need. Drafts change in place; an open need gets a new version that the
    invited institutions are told about (their proposals stay as they are)."""
    now = now or utcnow()
    _require_owner(user, need)
    if need.status not in ("draft", "submitted", "open"):
        raise DemandError(_("This need is no longer open and cannot be edited."), status=409)
    validate_need(session, data, now)
    if need.status == "open" and data.category_id != need.category_id:
        raise DemandError(_("The category of an open need cannot change: close it and "
                          "publish a new one."))
    data.apply(need)
    need.updated_at = now
    if need.status == "open":
        need.version += 1
        session.add(NeedVersion(need=need, version=need.version, snapshot=snapshot_of(need),
                                note=(note or "").strip()[:2000], author_id=user.id,
                                created_at=now))
        for org in _answering_institutions(session, need):
            notify_organisation(session, org, "need_updated",
                                _l("Need updated (version %(version)s): %(title)s",
                                   version=need.version, title=need.title),
                                (note or "").strip()[:500]
                                or _l("The enterprise changed the need."),
                                need_link(need, "provider"))
    session.flush()
    return need


def _answering_institutions(session: Session, need: Need) -> list[Organisation]:
    """Institutions still in the race: invited (not declined or removed) or proposing."""
    invited = select(NeedInvitation.provider_org_id).where(
        NeedInvitation.need_id == need.id, NeedInvitation.status.in_(("invited", "proposed")))
    proposing = select(Proposal.provider_org_id).where(Proposal.need_id == need.id,
                                                       Proposal.status == "active")
    return list(session.scalars(select(Organisation).where(
        or_(Organisation.id.in_(invited), Organisation.id.in_(proposing)))
        .order_by(Organisation.id)))


def submit_need(session: Session, user: User, need: Need, now: datetime | None = None) -> None:
    """Draft → submitted: staff moderate it before anyone else sees it."""
    now = now or utcnow()
    _require_owner(user, need)
    _require_enterprise(user)
    if need.status != "draft":
        raise DemandError(_("Only a draft can be submitted."), status=409)
    validate_need(session, NeedData.of(need), now)
    need.status = "submitted"
    need.submitted_at = now
    need.rejection_reason = None
    session.flush()


def approve_need(session: Session, staff: User, need: Need, note: str | None = None,
                 now: datetime | None = None, index_dir=None):
    """Staff approve a submitted need: it opens, version 1 is recorded, matching runs and
    the best institutions are invited. Returns the invitations made."""
    now = now or utcnow()
    _require_staff(staff)
    if _aware(need.proposal_deadline) <= now:
        raise DemandError(_("The need's proposal deadline has passed; return it to the "
                          "enterprise to set a new one."), status=409)
    taken = session.execute(update(Need).where(Need.id == need.id, Need.status == "submitted")
                            .values(status="open", opened_at=now, updated_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("This need is not waiting for moderation (another staff member "
                          "may have decided it)."), status=409)
    session.refresh(need)
    session.add(NeedVersion(need=need, version=need.version, snapshot=snapshot_of(need),
                            note="Published", author_id=need.author_id, created_at=now))
    audit.record(session, staff, "need.approve", need, reason=(note or "").strip() or None)
    invitations = invite_matches(session, need, now=now, index_dir=index_dir)
    notify_organisation(session, need.buyer, "need_open",
                        _l("Need published: %(title)s", title=need.title),
                        _l("Platform staff approved your need. %(count)s matched "
                           "institutions were invited; see why each was chosen on the need's "
                           "page.", count=len(invitations)), need_link(need))
    session.flush()
    return invitations


def reject_need(session: Session, staff: User, need: Need, reason: str,
                now: datetime | None = None) -> None:
    now = now or utcnow()
    _require_staff(staff)
    reason = (reason or "").strip()
    if not reason:
        raise DemandError(_("Say why the need goes back to the enterprise."))
    taken = session.execute(update(Need).where(Need.id == need.id, Need.status == "submitted")
                            .values(status="draft", rejection_reason=reason, updated_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("This need is not waiting for moderation."), status=409)
    session.refresh(need)
    audit.record(session, staff, "need.reject", need, reason=reason)
    notify_organisation(session, need.buyer, "need_returned",
                        _l("Need returned: %(title)s", title=need.title),
                        _l("Platform staff returned your need: %(reason)s", reason=reason),
                        need_link(need))
    session.flush()


def close_need(session: Session, user: User, need: Need, reason: str = "",
               now: datetime | None = None) -> None:
    """The enterprise withdraws its need without awarding it; proposals are not selected."""
    now = now or utcnow()
    _require_owner(user, need)
    taken = session.execute(update(Need).where(
        Need.id == need.id, Need.status.in_(("draft", "submitted", "open", "expired")))
        .values(status="closed", closed_at=now, close_reason=(reason or "").strip() or None,
                updated_at=now).execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("This need is already awarded or closed."), status=409)
    session.refresh(need)
    _not_selected(session, need, None, now, "The enterprise closed the need without an award."
                  + (f" Reason: {need.close_reason}" if need.close_reason else ""))
    session.flush()
    _refresh_credibility(session, [need.buyer_org_id], now)


# --------------------------------------------------------------------------- invitations

def invite_matches(session: Session, need: Need, now: datetime | None = None,
                   index_dir=None, limit: int | None = None) -> list[NeedInvitation]:
    """Rank institutions for the need and invite the best ``NEED_INVITES`` (default 8)."""
    from demand import matching

    now = now or utcnow()
    limit = limit or _setting("NEED_INVITES", DEFAULT_INVITES)
    already = {row for row in session.scalars(select(NeedInvitation.provider_org_id).where(
        NeedInvitation.need_id == need.id))}
    made = []
    for match in matching.rank(session, need, limit=limit + len(already),
                               index_dir=index_dir, now=now):
        if match.provider_id in already:
            continue
        made.append(_invite(session, need, match.provider_id, "matched", now,
                            score=match.score, parts=match.parts_json(),
                            product_id=match.product_id))
        if len(made) >= limit:
            break
    return made


def _invite(session: Session, need: Need, provider_id: int, source: str, now: datetime,
            score: int = 0, parts: list | None = None, product_id: int | None = None,
            by: User | None = None) -> NeedInvitation:
    invitation = NeedInvitation(need_id=need.id, provider_org_id=provider_id,
                                product_id=product_id, score=score, score_parts=parts or [],
                                source=source, status="invited", created_at=now,
                                invited_by_id=getattr(by, "id", None))
    session.add(invitation)
    session.flush()
    provider = session.get(Organisation, provider_id)
    buyer = need.buyer.name if need.show_company else "An enterprise"
    notify_organisation(session, provider, "need_invitation",
                        _l("Invitation to propose: %(title)s", title=need.title),
                        lambda: _("%(buyer)s published a need that fits your services. "
                                  "Proposals are due by %(when)s. Answer with a proposal or "
                                  "tell us it is not for you.", buyer=buyer,
                                  when=format_datetime(_aware(need.proposal_deadline))),
                        need_link(need, "provider"))
    return invitation


def _require_invitable(session: Session, need: Need, provider: Organisation) -> None:
    if need.status != "open":
        raise DemandError(_("Institutions can only be invited while the need is open."),
                          status=409)
    if not provider.is_listed:
        raise DemandError(_("Only verified institutions in good standing can be invited."))
    existing = invitation_for(session, need, provider.id)
    if existing is not None and existing.status != "removed":
        raise DemandError(_("%(name)s is already invited.", name=provider.name), status=409)


def _reinvite_or_invite(session, need, provider, source, now, by) -> NeedInvitation:
    from demand import matching

    match = matching.score_one(session, need, provider.id, now=now)
    existing = invitation_for(session, need, provider.id)
    if existing is not None:  # removed earlier: invite again with a fresh score
        existing.status, existing.source, existing.created_at = "invited", source, now
        existing.score, existing.score_parts = match.score, match.parts_json()
        existing.invited_by_id = getattr(by, "id", None)
        session.flush()
        return existing
    return _invite(session, need, provider.id, source, now, score=match.score,
                   parts=match.parts_json(), product_id=match.product_id, by=by)


def staff_invite(session: Session, staff: User, need: Need, provider: Organisation,
                 now: datetime | None = None) -> NeedInvitation:
    now = now or utcnow()
    _require_staff(staff)
    _require_invitable(session, need, provider)
    invitation = _reinvite_or_invite(session, need, provider, "staff", now, staff)
    audit.record(session, staff, "need.invite", need, provider_org_id=provider.id)
    return invitation


def staff_remove_invitation(session: Session, staff: User, invitation: NeedInvitation,
                            reason: str) -> None:
    _require_staff(staff)
    reason = (reason or "").strip()
    if not reason:
        raise DemandError(_("Say why the invitation is removed."))
    if invitation.status != "invited":
        raise DemandError(_("Only an unanswered invitation can be removed."), status=409)
    invitation.status = "removed"
    audit.record(session, staff, "need.uninvite", invitation.need, reason=reason,
                 provider_org_id=invitation.provider_org_id)
    session.flush()


def favourite_institutions(session: Session, user: User) -> list[Organisation]:
    """Listed institutions the user starred, directly or through one of their listings."""
    direct = select(Favourite.provider_id).where(Favourite.user_id == user.id,
                                                Favourite.provider_id.is_not(None))
    via_listing = (select(Product.provider_id).join(Favourite, Favourite.product_id == Product.id)
                   .where(Favourite.user_id == user.id))
    rows = session.scalars(select(Organisation).where(
        or_(Organisation.id.in_(direct), Organisation.id.in_(via_listing)))
        .order_by(Organisation.name))
    return [org for org in rows if org.is_listed]


def invite_favourite(session: Session, user: User, need: Need, provider: Organisation,
                     now: datetime | None = None) -> NeedInvitation:
    now = now or utcnow()
    _require_owner(user, need)
    if provider.id not in {org.id for org in favourite_institutions(session, user)}:
        raise DemandError(_("You can invite institutions from your favourites only."),
                          status=403)
    _require_invitable(session, need, provider)
    return _reinvite_or_invite(session, need, provider, "favourite", now, user)


def decline_invitation(session: Session, user: User, need: Need, reason: str, note: str = "",
                       now: datetime | None = None) -> NeedInvitation:
    """An invited institution answers "not interested", with a reason from the list (the
    reasons feed matching: the response rate counts a decline as an answer)."""
    now = now or utcnow()
    org = _require_institution(user)
    invitation = invitation_for(session, need, org.id)
    if invitation is None or invitation.status == "removed":
        raise DemandError(_("Your institution was not invited to this need."), status=403)
    if invitation.status != "invited":
        raise DemandError(_("You already answered this invitation."), status=409)
    if reason not in DECLINE_REASONS:
        raise DemandError(_("Choose a reason from the list."))
    note = (note or "").strip()
    if reason == "other" and not note:
        raise DemandError(_("Say in a few words why the need is not for you."))
    invitation.status = "declined"
    invitation.decline_reason = reason
    invitation.decline_note = note[:2000] or None
    invitation.answered_at = now
    session.flush()
    _refresh_credibility(session, [org.id], now)
    return invitation


# --------------------------------------------------------------------------- proposals

@dataclass
class ProposalData:
    price: int | None = None
    delivery_date: date | None = None
    milestones: list[dict] = field(default_factory=list)
    team: str = ""
    cover_note: str = ""
    offered_amount: int | None = None
    rate_bp: int | None = None
    term_months: int | None = None
    conditions: str | None = None

    FIELDS = ("price", "delivery_date", "milestones", "team", "cover_note", "offered_amount",
              "rate_bp", "term_months", "conditions")

    @classmethod
    def of(cls, proposal: Proposal) -> ProposalData:
        return cls(**{name: getattr(proposal, name) for name in cls.FIELDS})


def validate_milestones(milestones: list[dict], delivery_date: date, today: date) -> list[dict]:
    """Rows of {title, share_bp, due_date}: at least one, shares adding up to exactly 100 %,
    each due date given, not in the past, in order, and not after the delivery date."""
    if not milestones:
        raise DemandError(_("Add at least one milestone (a single row of 100 % will do)."))
    clean, previous = [], None
    for number, row in enumerate(milestones, start=1):
        title = str(row.get("title") or "").strip()
        if not title:
            raise DemandError(_("Milestone %(number)s has no title.", number=number))
        share = row.get("share_bp")
        if not isinstance(share, int) or share <= 0:
            raise DemandError(_("Milestone %(number)s: its share must be more than 0 %%.",
                                number=number))
        due = row.get("due_date")
        if isinstance(due, str):
            try:
                due = date.fromisoformat(due)
            except ValueError:
                raise DemandError(_("Milestone %(number)s: dates are YYYY-MM-DD.",
                                  number=number)) from None
        if due is None:
            raise DemandError(_("Milestone %(number)s has no due date.", number=number))
        if due < today:
            raise DemandError(_("Milestone %(number)s is due in the past.", number=number))
        if previous is not None and due < previous:
            raise DemandError(_("Milestone %(number)s is due before milestone %(previous)s: "
                                "put the milestones in date order.",
                                number=number, previous=number - 1))
        if due > delivery_date:
            raise DemandError(_("Milestone %(number)s is due after the delivery date.",
                                number=number))
        previous = due
        clean.append({"title": title[:200], "share_bp": share, "due_date": due.isoformat()})
    total = sum(row["share_bp"] for row in clean)
    if total != 10_000:
        raise DemandError(_("Milestone shares must add up to 100 %% (they add up to %(total)s %%).",
                            total=format(total / 100, "g")))
    return clean


def validate_proposal(need: Need, data: ProposalData, now: datetime) -> ProposalData:
    if need.is_financial:
        # The price of a financial proposal is its service fee, which may be zero (DESIGN.md
        # §3): awarding it makes an order with nothing to pay (orders.quotes).
        if data.price is None or data.price < 0:
            raise DemandError(_("Enter your service fee (0 if you charge none)."))
    elif data.price is None or data.price <= 0:
        raise DemandError(_("Enter your price, more than zero."))
    if data.delivery_date is None:
        raise DemandError(_("Enter the delivery date."))
    if data.delivery_date < now.date():
        raise DemandError(_("The delivery date is in the past."))
    data.milestones = validate_milestones(data.milestones, data.delivery_date, now.date())
    data.team = (data.team or "").strip()[:MAX_TEXT]
    data.cover_note = (data.cover_note or "").strip()[:MAX_TEXT]
    if not data.cover_note:
        raise DemandError(_("Write a cover note: how you would meet the need."))
    if need.is_financial:
        if not data.offered_amount or data.offered_amount <= 0:
            raise DemandError(_("Enter the amount you offer."))
        if data.rate_bp is None or not 0 <= data.rate_bp <= 10_000:
            raise DemandError(_("Enter the annual rate, between 0 % and 100 %."))
        if not data.term_months or not 1 <= data.term_months <= 360:
            raise DemandError(_("The term is between 1 and 360 months."))
        data.conditions = (data.conditions or "").strip()[:MAX_TEXT] or None
    else:
        data.offered_amount = data.rate_bp = data.term_months = None
        data.conditions = None
    return data


def _listing_for(session: Session, need: Need, org: Organisation) -> Product | None:
    """The institution's listing the order will stand on: the one matching invited it with,
    else its best visible listing in the need's sub-category, then top category, then any;
    None for an institution without published listings (its order stands on the need)."""
    invitation = invitation_for(session, need, org.id)
    if invitation is not None and invitation.product_id is not None:
        product = session.scalar(select(Product).where(Product.id == invitation.product_id,
                                                       visible_products_condition()))
        if product is not None:
            return product
    category = need.category
    rows = session.scalars(select(Product).join(Category, Product.category_id == Category.id)
                           .where(Product.provider_id == org.id, visible_products_condition())
                           .order_by((Product.category_id == category.id).desc(),
                                     (Category.parent_id == category.parent_id).desc(),
                                     (Product.pricing_mode == "quote").desc(), Product.id)
                           .limit(1)).all()
    return rows[0] if rows else None


def _require_can_propose(session: Session, user: User, need: Need, now: datetime):
    org = _require_institution(user)
    if need.status != "open":
        raise DemandError(_("This need is not open for proposals."), status=409)
    if _aware(need.proposal_deadline) <= now:
        raise DemandError(_("The deadline for proposals has passed."), status=409)
    invitation = invitation_for(session, need, org.id)
    invited = invitation is not None and invitation.status != "removed"
    if need.visibility == "invited" and not invited:
        raise DemandError(_("This need is open to invited institutions only."), status=403)
    return org, invitation


def _snapshot(proposal: Proposal) -> dict:
    data = ProposalData.of(proposal)
    values = {name: getattr(data, name) for name in ProposalData.FIELDS}
    values["delivery_date"] = proposal.delivery_date.isoformat()
    return values


def submit_proposal(session: Session, user: User, need: Need, data: ProposalData,
                    now: datetime | None = None) -> Proposal:
    now = now or utcnow()
    org, invitation = _require_can_propose(session, user, need, now)
    existing = proposal_for(session, need, org.id)
    if existing is not None and existing.status == "active":
        raise DemandError(_("Your institution already sent a proposal: revise it instead."),
                          status=409)
    if existing is not None:
        raise DemandError(_("Your institution withdrew its proposal to this need."), status=409)
    if invitation is not None and invitation.status == "declined":
        raise DemandError(_("Your institution declined this need."), status=409)
    validate_proposal(need, data, now)
    product = _listing_for(session, need, org)
    proposal = Proposal(need_id=need.id, provider_org_id=org.id, author_id=user.id,
                        product_id=product.id if product is not None else None,
                        currency=need.currency, created_at=now,
                        updated_at=now)
    for name in ProposalData.FIELDS:
        setattr(proposal, name, getattr(data, name))
    session.add(proposal)
    session.flush()
    session.add(ProposalVersion(proposal=proposal, version=1, snapshot=_snapshot(proposal),
                                author_id=user.id, created_at=now))
    if invitation is not None and invitation.status == "invited":
        invitation.status = "proposed"
        invitation.answered_at = now
    notify_organisation(session, need.buyer, "proposal_received",
                        _l("New proposal for “%(title)s”", title=need.title),
                        lambda: _("%(name)s sent a proposal: %(price)s, delivery by %(when)s.",
                                  name=org.name,
                                  price=format_amount(proposal.price, proposal.currency),
                                  when=format_date(proposal.delivery_date)), need_link(need))
    session.flush()
    if invitation is not None:
        _refresh_credibility(session, [org.id], now)
    return proposal


def _require_own_proposal(user: User, proposal: Proposal) -> None:
    if user.role != "provider" or not is_member_of(user, proposal.provider_org_id):
        raise DemandError(_("Only the institution that sent this proposal can change it."),
                          status=403)


def revise_proposal(session: Session, user: User, proposal: Proposal, data: ProposalData,
                    now: datetime | None = None) -> Proposal:
    """A new version of an active proposal, until the need's deadline."""
    now = now or utcnow()
    _require_own_proposal(user, proposal)
    need = proposal.need
    _require_can_propose(session, user, need, now)
    if proposal.status != "active":
        raise DemandError(_("Only an active proposal can be revised."), status=409)
    validate_proposal(need, data, now)
    taken = session.execute(update(Proposal).where(
        Proposal.id == proposal.id, Proposal.status == "active",
        Proposal.version == proposal.version).values(
            version=Proposal.version + 1, updated_at=now,
            **{name: getattr(data, name) for name in ProposalData.FIELDS})
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("This proposal changed a moment ago; reload it and try again."),
                          status=409)
    session.refresh(proposal)
    session.add(ProposalVersion(proposal=proposal, version=proposal.version,
                                snapshot=_snapshot(proposal), author_id=user.id,
                                created_at=now))
    notify_organisation(session, need.buyer, "proposal_revised",
                        _l("Proposal revised for “%(title)s”", title=need.title),
                        lambda: _("%(name)s revised its proposal (version %(version)s): "
                                  "%(price)s, delivery by %(when)s.",
                                  name=proposal.provider.name, version=proposal.version,
                                  price=format_amount(proposal.price, proposal.currency),
                                  when=format_date(proposal.delivery_date)), need_link(need))
    session.flush()
    return proposal


def withdraw_proposal(session: Session, user: User, proposal: Proposal,
                      now: datetime | None = None) -> None:
    now = now or utcnow()
    _require_own_proposal(user, proposal)
    taken = session.execute(update(Proposal).where(Proposal.id == proposal.id,
                                                   Proposal.status == "active")
                            .values(status="withdrawn", decided_at=now, updated_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("Only an active proposal can be withdrawn."), status=409)
    session.refresh(proposal)
    notify_organisation(session, proposal.need.buyer, "proposal_withdrawn",
                        _l("Proposal withdrawn for “%(title)s”", title=proposal.need.title),
                        _l("%(name)s withdrew its proposal.", name=proposal.provider.name),
                        need_link(proposal.need))
    session.flush()


def set_shortlisted(session: Session, user: User, proposal: Proposal, on: bool) -> None:
    _require_owner(user, proposal.need)
    if proposal.status != "active":
        raise DemandError(_("Only active proposals can be shortlisted."), status=409)
    proposal.shortlisted = bool(on)
    session.flush()


def post_message(session: Session, user: User, proposal: Proposal, body: str,
                 now: datetime | None = None) -> ProposalMessage:
    """A question or answer in the per-proposal thread (enterprise ↔ institution)."""
    now = now or utcnow()
    body = (body or "").strip()
    need = proposal.need
    if user.role == "enterprise" and is_member_of(user, need.buyer_org_id):
        side, other, link = "buyer", proposal.provider, need_link(need, "provider")
    elif user.role == "provider" and is_member_of(user, proposal.provider_org_id):
        side, other, link = "provider", need.buyer, need_link(need)
    else:
        raise DemandError(_("Only the enterprise and the proposing institution write here."),
                          status=403)
    if not body:
        raise DemandError(_("Write a message."))
    if len(body) > 5000:
        raise DemandError(_("Keep a message under 5,000 characters."))
    if need.status not in ("open", "awarded"):
        raise DemandError(_("This need is closed."), status=409)
    message = ProposalMessage(proposal_id=proposal.id, author_id=user.id, side=side,
                              body=body, created_at=now)
    session.add(message)
    notify_organisation(session, other, "proposal_message",
                        _l("New message about “%(title)s”", title=need.title), body[:500], link)
    session.flush()
    return message


# --------------------------------------------------------------------------- award

def award(session: Session, user: User, proposal: Proposal, feedback: str = "",
          now: datetime | None = None) -> Order:
    """The enterprise awards one proposal: exactly once per need (a conditional UPDATE of
    the need's status, so a double click or a second tab finds it already awarded). The
    proposal becomes an accepted quote on the institution's listing, i.e. a quote-mode order
    awaiting payment; the other proposals are not selected and told so."""
    from orders import quotes

    now = now or utcnow()
    need = proposal.need
    _require_owner(user, need)
    _require_enterprise(user)
    if need.status != "open":
        raise DemandError(_("This need has already been awarded or closed."), status=409)
    if proposal.status != "active":
        raise DemandError(_("Only an active proposal can be awarded."), status=409)
    if not proposal.provider.is_listed:
        raise DemandError(_("This institution is not in good standing on the platform now "
                          "(suspended or unverified) and cannot be awarded."), status=409)
    taken = session.execute(update(Need).where(Need.id == need.id, Need.status == "open")
                            .values(status="awarded", awarded_proposal_id=proposal.id,
                                    awarded_at=now, closed_at=now, updated_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise DemandError(_("This need has already been awarded or closed."), status=409)
    session.refresh(need)
    # On the proposal's listing, or (an institution without listings) on the need itself:
    # its title and sub-category name the order and decide its commission and contract.
    request = QuoteRequest(product_id=proposal.product_id, title=need.title[:200],
                           category_id=need.category_id, buyer_org_id=need.buyer_org_id,
                           buyer_user_id=user.id, provider_org_id=proposal.provider_org_id,
                           need=_requirements(need, proposal), budget=need.budget_max,
                           currency=proposal.currency, deadline=need.wanted_delivery,
                           status="quoted", created_at=now, expires_at=now + timedelta(days=1))
    session.add(request)
    session.flush()
    quote = Quote(request_id=request.id, price=proposal.price, currency=proposal.currency,
                  due_date=proposal.delivery_date, note=proposal.cover_note[:5000],
                  milestones=list(proposal.milestones or []),
                  valid_until=now + timedelta(days=1), created_by_id=proposal.author_id,
                  created_at=now)
    session.add(quote)
    session.flush()
    session.refresh(request)
    try:
        order = quotes.decide(session, user, quote, accept=True, now=now)
    except quotes.QuoteError as exc:
        raise DemandError(exc.message, exc.status) from None
    proposal.status = "awarded"
    proposal.decided_at = now
    proposal.quote_id = quote.id
    need.order_id = order.id
    _not_selected(session, need, proposal, now, (feedback or "").strip())
    session.flush()
    _refresh_credibility(session, [need.buyer_org_id], now)
    return order


def _requirements(need: Need, proposal: Proposal) -> str:
    parts = [f"Need (需求) #{need.id}: {need.title}", "", need.description]
    if need.financial_amount:
        parts += ["", f"Financing wanted: {format_amount(need.financial_amount, need.currency)}"
                      f", {need.financial_term_months} months; purpose: "
                      f"{need.financial_purpose}"]
    if proposal.offered_amount:
        parts += ["", f"Offer: {format_amount(proposal.offered_amount, proposal.currency)} at "
                      f"{proposal.rate_bp / 100:g} % a year for {proposal.term_months} months."
                      + (f" Conditions: {proposal.conditions}" if proposal.conditions else "")]
    if proposal.team:
        parts += ["", f"Team: {proposal.team}"]
    return "\n".join(parts)[:MAX_TEXT]


def _not_selected(session: Session, need: Need, winner: Proposal | None, now: datetime,
                  feedback: str) -> None:
    losers = session.scalars(select(Proposal).where(
        Proposal.need_id == need.id, Proposal.status == "active",
        Proposal.id != (winner.id if winner else -1))).all()
    for proposal in losers:
        proposal.status = "not_selected"
        proposal.decided_at = now
        proposal.feedback = feedback or None
        def body(title=need.title, chosen=winner is not None):
            text = (_("The enterprise chose another institution for “%(title)s”.", title=title)
                    if chosen else _("“%(title)s” was closed without an award.", title=title))
            if feedback:
                text += "\n\n" + _("Feedback from the enterprise: %(text)s", text=feedback)
            return text
        notify_organisation(session, proposal.provider, "proposal_not_selected",
                            _l("Proposal not selected: %(title)s", title=need.title), body,
                            need_link(need, "provider"))


# --------------------------------------------------------------------------- timers

@dataclass
class TimerReport:
    expired: int = 0
    reminded: int = 0

    def __str__(self) -> str:
        return f"needs expired: {self.expired}, buyers reminded: {self.reminded}"


def run_need_timers(session: Session, now: datetime | None = None) -> TimerReport:
    """Deadline passed: a need without proposals expires (staff see it among the
    unanswered needs); with proposals the enterprise is reminded once to compare and award,
    and NEED_AWARD_DAYS after the deadline it expires unawarded. Safe to re-run."""
    now = now or utcnow()
    report = TimerReport()
    active = select(Proposal.id).where(Proposal.need_id == Need.id,
                                       Proposal.status == "active").exists()
    for need in session.scalars(select(Need).where(
            Need.status == "open", Need.proposal_deadline <= now, ~active)).all():
        if _expire(session, need, now):
            report.expired += 1
            notify_organisation(session, need.buyer, "need_expired",
                                _l("Need expired without proposals: %(title)s",
                                   title=need.title),
                                _l("No institution sent a proposal before the deadline. You "
                                   "can publish it again with a later deadline or a wider "
                                   "brief."),
                                need_link(need))
    for need in session.scalars(select(Need).where(
            Need.status == "open", Need.proposal_deadline <= now, active,
            Need.reminded_at.is_(None))).all():
        need.reminded_at = now
        report.reminded += 1
        notify_organisation(session, need.buyer, "need_deadline",
                            _l("Proposals are in: %(title)s", title=need.title),
                            _l("The deadline for proposals has passed. Compare them side by "
                               "side and award one, or close the need with a reason."),
                            need_link(need))
    late = now - timedelta(days=_setting("NEED_AWARD_DAYS", DEFAULT_AWARD_DAYS))
    for need in session.scalars(select(Need).where(
            Need.status == "open", Need.proposal_deadline <= late)).all():
        if _expire(session, need, now):
            report.expired += 1
            _not_selected(session, need, None, now, "")
    session.flush()
    return report


def _expire(session: Session, need: Need, now: datetime) -> bool:
    taken = session.execute(update(Need).where(Need.id == need.id, Need.status == "open")
                            .values(status="expired", closed_at=now, updated_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount == 1:
        session.refresh(need)
        silent = session.scalars(select(NeedInvitation.provider_org_id).where(
            NeedInvitation.need_id == need.id, NeedInvitation.status == "invited")).all()
        _refresh_credibility(session, [need.buyer_org_id, *silent], now)
        return True
    return False


# --------------------------------------------------------------------------- queries

def load_need(session: Session, need_id: int) -> Need | None:
    return session.scalar(select(Need).where(Need.id == need_id).options(
        joinedload(Need.buyer), joinedload(Need.category).joinedload(Category.parent),
        selectinload(Need.versions)))


def proposals_of(session: Session, need: Need) -> list[Proposal]:
    return list(session.scalars(select(Proposal).where(Proposal.need_id == need.id).options(
        joinedload(Proposal.provider), selectinload(Proposal.versions),
        selectinload(Proposal.messages)).order_by(Proposal.shortlisted.desc(), Proposal.id)))


def invitations_of(session: Session, need: Need) -> list[NeedInvitation]:
    return list(session.scalars(select(NeedInvitation).where(NeedInvitation.need_id == need.id)
                                .options(joinedload(NeedInvitation.provider),
                                         joinedload(NeedInvitation.product))
                                .order_by(NeedInvitation.score.desc(), NeedInvitation.id)))


def needs_of(session: Session, org_id: int, *, status: str | None = None, page: int = 1,
             page_size: int = 24):
    from catalog.services import paginate

    stmt = select(Need).where(Need.buyer_org_id == org_id).options(joinedload(Need.category))
    if status in NEED_STATUS_LABELS:
        stmt = stmt.where(Need.status == status)
    return paginate(session, stmt.order_by(Need.created_at.desc(), Need.id.desc()), page,
                    page_size)


def moderation_queue(session: Session, *, page: int = 1, page_size: int = 24):
    from catalog.services import paginate

    return paginate(session, select(Need).where(Need.status == "submitted").options(
        joinedload(Need.buyer), joinedload(Need.category))
        .order_by(Need.submitted_at, Need.id), page, page_size)


def proposal_counts(session: Session, need_ids) -> dict[int, int]:
    if not need_ids:
        return {}
    return dict(session.execute(select(Proposal.need_id, func.count(Proposal.id)).where(
        Proposal.need_id.in_(list(need_ids)), Proposal.status.in_(("active", "awarded",
                                                                   "not_selected")))
        .group_by(Proposal.need_id)).all())


def order_for(session: Session, need: Need) -> Order | None:
    return session.get(Order, need.order_id) if need.order_id else None


def response_hours(session: Session, org_ids) -> dict[int, float]:
    """Median-free simple figure for the comparison table: the mean hours an institution
    took from invitation to answer (proposal or decline)."""
    if not org_ids:
        return {}
    rows = session.execute(select(NeedInvitation.provider_org_id, NeedInvitation.created_at,
                                  NeedInvitation.answered_at).where(
        NeedInvitation.provider_org_id.in_(list(org_ids)),
        NeedInvitation.answered_at.is_not(None))).all()
    sums: dict[int, list[float]] = {}
    for org_id, created, answered in rows:
        hours = (_aware(answered) - _aware(created)).total_seconds() / 3600
        sums.setdefault(org_id, []).append(hours)
    return {org_id: sum(values) / len(values) for org_id, values in sums.items()}


def invited_to(session: Session, org_id: int, *, page: int = 1, page_size: int = 24):
    """Needs an institution is invited to, newest invitation first."""
    from catalog.services import paginate

    stmt = (select(NeedInvitation).join(Need, Need.id == NeedInvitation.need_id)
            .where(NeedInvitation.provider_org_id == org_id,
                   NeedInvitation.status != "removed",
                   Need.status.in_(("open", "awarded", "closed", "expired")))
            .options(joinedload(NeedInvitation.need).joinedload(Need.category))
            .order_by(and_(Need.status == "open").desc(), NeedInvitation.created_at.desc(),
                      NeedInvitation.id.desc()))
    return paginate(session, stmt, page, page_size)


# --------------------------------------------------------------------------- files

MAX_FILES = 5


def check_files(file_storages, max_bytes: int | None = None):
    """Validate uploads like institution documents (type from content, size capped); raise
    providers.uploads.UploadError. Returns checked files, nothing written yet."""
    from providers import uploads

    max_bytes = max_bytes or _setting("MAX_DOCUMENT_BYTES", uploads.DEFAULT_MAX_DOCUMENT_BYTES)
    present = [f for f in file_storages if f is not None and f.filename]
    if len(present) > MAX_FILES:
        raise uploads.UploadError(f"Attach at most {MAX_FILES} files at a time.")
    return [uploads.check(uploads.read_limited(f.stream, max_bytes), f.filename,
                          max_bytes=max_bytes) for f in present]


def save_files(session: Session, upload_dir: str, need: Need, checked, user,
               proposal: Proposal | None = None) -> list[str]:
    """Write checked files under generated names and record them; returns the stored names
    (for the caller to delete if its transaction then fails)."""
    from demand.models import NeedFile
    from providers import uploads

    written = []
    for item in checked:
        stored = uploads.new_stored_name(item.content_type)
        uploads.write(upload_dir, item, stored)
        written.append(stored)
        session.add(NeedFile(need_id=need.id, proposal_id=proposal.id if proposal else None,
                             original_name=item.original_name, stored_name=stored,
                             content_type=item.content_type, size=item.size, sha256=item.sha256,
                             uploaded_by_id=getattr(user, "id", None)))
    session.flush()
    return written
