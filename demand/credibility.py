"""What the demand side adds to both sides' credibility (providers/credibility/):

- an institution's **invitation response rate**: invitations to needs it answered (a
  proposal or "not interested") out of those it could have answered (answered, or the
  need's deadline has passed or it is no longer open); it scales the response part;
- an enterprise's **needs left without an award**: needs that received proposals and were
  closed without a reason or left to expire, out of its needs with proposals that ended;
  they count with its cancellations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from demand.models import Need, NeedInvitation, Proposal


def figures(session: Session, org_ids, now: datetime) -> dict[int, dict[str, int]]:
    """CredibilityInputs fields per organisation (only those with demand history)."""
    out: dict[int, dict[str, int]] = {}
    answered = NeedInvitation.status.in_(("declined", "proposed"))
    lapsed = and_(NeedInvitation.status == "invited",
                  or_(Need.status != "open", Need.proposal_deadline <= now))
    stmt = (select(NeedInvitation.provider_org_id,
                   func.sum(case((or_(answered, lapsed), 1), else_=0)),
                   func.sum(case((answered, 1), else_=0)))
            .join(Need, Need.id == NeedInvitation.need_id)
            .group_by(NeedInvitation.provider_org_id))
    if org_ids is not None:
        stmt = stmt.where(NeedInvitation.provider_org_id.in_(org_ids))
    for org_id, counted, yes in session.execute(stmt):
        if counted:
            out[org_id] = {"invitations": int(counted), "invitations_answered": int(yes or 0)}
    has_proposal = (select(Proposal.id).where(Proposal.need_id == Need.id,
                                              Proposal.status != "withdrawn").exists())
    unawarded = and_(Need.status.in_(("closed", "expired")), Need.close_reason.is_(None))
    stmt = (select(Need.buyer_org_id, func.count(Need.id),
                   func.sum(case((unawarded, 1), else_=0)))
            .where(Need.status.in_(("awarded", "closed", "expired")), has_proposal)
            .group_by(Need.buyer_org_id))
    if org_ids is not None:
        stmt = stmt.where(Need.buyer_org_id.in_(org_ids))
    for org_id, ended, left in session.execute(stmt):
        out.setdefault(org_id, {}).update(needs_with_proposals=int(ended),
                                          needs_unawarded=int(left or 0))
    return out
