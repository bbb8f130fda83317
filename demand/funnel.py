"""The staff console's needs funnel: published → matched → with proposals → awarded → order
completed, for needs published in a period; the median time to the first proposal; needs
still without proposals N days after publication; the same by top category; CSV rows."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from catalog.models import Category
from demand.models import Need, NeedInvitation, Proposal
from marketplace.database import utcnow
from orders.models import Order

STAGES = (("published", _l("Published")), ("matched", _l("Matched")),
          ("with_proposals", _l("With proposals")), ("awarded", _l("Awarded")),
          ("completed", _l("Order completed")))
COMPLETED_ORDER_STATUSES = ("completed", "settled")
DEFAULT_UNANSWERED_DAYS = 7


@dataclass
class NeedRow:
    need: Need
    top_name: str
    invitations: int
    proposals: int
    first_proposal_at: datetime | None
    order: Order | None

    @property
    def hours_to_first(self) -> float | None:
        if self.first_proposal_at is None or self.need.opened_at is None:
            return None
        return (_aware(self.first_proposal_at) - _aware(self.need.opened_at)) \
            .total_seconds() / 3600

    def stages(self) -> dict[str, bool]:
        return {"published": True, "matched": self.invitations > 0,
                "with_proposals": self.proposals > 0,
                "awarded": self.need.status == "awarded",
                "completed": self.order is not None
                and self.order.status in COMPLETED_ORDER_STATUSES}


@dataclass
class Funnel:
    start: date
    end: date
    counts: dict[str, int]
    by_category: list[tuple[str, dict[str, int]]]
    median_hours_to_first: float | None
    unanswered: list[NeedRow]
    unanswered_days: int
    rows: list[NeedRow] = field(default_factory=list)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))


def _rows(session: Session, stmt) -> list[NeedRow]:
    needs = list(session.scalars(stmt.options(
        joinedload(Need.category).joinedload(Category.parent))).unique())
    ids = [need.id for need in needs]
    if not ids:
        return []
    invitations = dict(session.execute(
        select(NeedInvitation.need_id, func.count(NeedInvitation.id))
        .where(NeedInvitation.need_id.in_(ids), NeedInvitation.status != "removed")
        .group_by(NeedInvitation.need_id)).all())
    proposals = {need_id: (n, first) for need_id, n, first in session.execute(
        select(Proposal.need_id, func.count(Proposal.id), func.min(Proposal.created_at))
        .where(Proposal.need_id.in_(ids)).group_by(Proposal.need_id)).all()}
    orders = {order.id: order for order in session.scalars(select(Order).where(
        Order.id.in_([n.order_id for n in needs if n.order_id])))}
    rows = []
    for need in needs:
        top = need.category.parent or need.category
        count, first = proposals.get(need.id, (0, None))
        rows.append(NeedRow(need=need, top_name=top.name, invitations=invitations.get(need.id, 0),
                            proposals=count, first_proposal_at=first,
                            order=orders.get(need.order_id)))
    return rows


def build(session: Session, start: date, end: date, unanswered_days: int =
          DEFAULT_UNANSWERED_DAYS, now: datetime | None = None) -> Funnel:
    now = now or utcnow()
    low, high = _bounds(start, end)
    rows = _rows(session, select(Need).where(Need.opened_at >= low, Need.opened_at < high)
                 .order_by(Need.opened_at, Need.id))
    counts = {key: 0 for key, _label in STAGES}
    categories: dict[str, dict[str, int]] = {}
    for row in rows:
        per = categories.setdefault(row.top_name, {key: 0 for key, _label in STAGES})
        for key, reached in row.stages().items():
            if reached:
                counts[key] += 1
                per[key] += 1
    hours = [h for h in (row.hours_to_first for row in rows) if h is not None]
    cutoff = now - timedelta(days=unanswered_days)
    has_proposal = select(Proposal.id).where(Proposal.need_id == Need.id).exists()
    unanswered = _rows(session, select(Need).where(
        Need.status.in_(("open", "expired")), Need.opened_at <= cutoff, ~has_proposal)
        .order_by(Need.opened_at, Need.id).limit(200))
    return Funnel(start=start, end=end, counts=counts,
                  by_category=sorted(categories.items()),
                  median_hours_to_first=statistics.median(hours) if hours else None,
                  unanswered=unanswered, unanswered_days=unanswered_days, rows=rows)


def csv_text(funnel: Funnel) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["need_id", "title", "category", "status", "opened_at", "deadline",
                     "invitations", "proposals", "first_proposal_at", "hours_to_first",
                     "order_number", "order_status"])
    for row in funnel.rows:
        need = row.need
        hours = row.hours_to_first
        writer.writerow([
            need.id, need.title, row.top_name, need.status,
            _aware(need.opened_at).isoformat() if need.opened_at else "",
            _aware(need.proposal_deadline).isoformat(), row.invitations, row.proposals,
            _aware(row.first_proposal_at).isoformat() if row.first_proposal_at else "",
            f"{hours:.1f}" if hours is not None else "",
            row.order.number if row.order else "", row.order.status if row.order else ""])
    return out.getvalue()

