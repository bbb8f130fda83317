"""Layer 2, reading the inputs: ``gather(session, now, org_ids)`` collects the figures of
``score()`` with a handful of GROUP BY queries, for a few organisations or for all at once
(the nightly run reads purchase_order twice and review once, whatever their number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from marketplace.models import Organisation
from providers.credibility.score import (
    CredibilityInputs,
)

# --------------------------------------------------------------------------- gathering

def _hours(session: Session, start, end):
    """SQL for the hours between two timestamp columns (per dialect)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _provider_figures(session: Session, org_ids):
    from orders.models import Order as O  # noqa: N814

    measured = and_(O.paid_at.is_not(None), O.accepted_at.is_not(None))
    timed = and_(O.completed_at.is_not(None), O.due_at.is_not(None))
    stmt = select(
        O.provider_org_id,
        _count(timed),
        _count(and_(timed, O.delivered_at.is_not(None), O.delivered_at <= O.due_at)),
        _count(O.accepted_at.is_not(None)),
        _count(O.ruling == "full"),
        _count(O.ruling == "partial"),
        _count(O.status == "disputed"),
        _count(O.paid_at.is_not(None)),
        _count(or_(O.status == "declined",
                   and_(O.status == "cancelled", O.accepted_at.is_not(None)))),
        _count(measured),
        func.coalesce(func.sum(case((measured, _hours(session, O.paid_at, O.accepted_at)),
                                    else_=0.0)), 0.0),
        _count(O.completed_at.is_not(None)),
    ).group_by(O.provider_org_id)
    if org_ids is not None:
        stmt = stmt.where(O.provider_org_id.in_(org_ids))
    return session.execute(stmt).all()


def _enterprise_figures(session: Session, org_ids):
    from orders.models import Order as O  # noqa: N814

    lapsed = and_(O.status == "cancelled", O.paid_at.is_(None), O.payment_due_at.is_not(None),
                  O.closed_at >= O.payment_due_at)
    on_time = and_(O.paid_at.is_not(None),
                   or_(O.payment_due_at.is_(None), O.paid_at <= O.payment_due_at))
    answered = and_(O.delivered_at.is_not(None), O.completed_at.is_not(None))
    stmt = select(
        O.buyer_org_id,
        _count(or_(O.paid_at.is_not(None), lapsed)),
        _count(on_time),
        _count(O.accepted_at.is_not(None)),
        _count(O.ruling == "none"),
        _count(O.ruling == "partial"),
        _count(O.status == "disputed"),
        _count(O.paid_at.is_not(None)),
        _count(and_(O.status == "cancelled", O.paid_at.is_not(None), O.accepted_at.is_(None))),
        _count(answered),
        func.coalesce(func.sum(case((answered, _hours(session, O.delivered_at, O.completed_at)),
                                    else_=0.0)), 0.0),
        _count(O.completed_at.is_not(None)),
    ).group_by(O.buyer_org_id)
    if org_ids is not None:
        stmt = stmt.where(O.buyer_org_id.in_(org_ids))
    return session.execute(stmt).all()


def _review_figures(session: Session, org_ids) -> dict[int, tuple[int, int]]:
    from catalog.models import Review

    stmt = (select(Review.subject_org_id, func.count(), func.coalesce(func.sum(Review.score_x100), 0))
            .where(Review.published_at.is_not(None), Review.hidden_at.is_(None))
            .group_by(Review.subject_org_id))
    if org_ids is not None:
        stmt = stmt.where(Review.subject_org_id.in_(org_ids))
    return {row[0]: (int(row[1]), int(row[2])) for row in session.execute(stmt)}


_FIGURE_NAMES = ("timed", "on_time", "accepted", "disputes_lost", "disputes_partly",
                 "disputes_open", "paid", "cancelled", "responses", "response_hours",
                 "completed")


@dataclass
class OrgRow:
    """What a recompute needs of an organisation besides its figures."""

    id: int
    kind: str
    score: int | None
    level: str | None


def _age_days(created_at: datetime | None, now: datetime) -> int:
    if created_at is None:
        return 0
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return max(0, (now - created_at).days)


def _chunks(ids: list[int], size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def gather(session: Session, now: datetime,
           org_ids: list[int] | None = None) -> dict[int, tuple[OrgRow, CredibilityInputs]]:
    """Inputs of the given organisations (all of them when ``org_ids`` is None), read with
    one query per kind of figure, grouped by organisation."""
    session.flush()
    batches = [None] if org_ids is None else list(_chunks(sorted(set(org_ids))))
    out: dict[int, tuple[OrgRow, CredibilityInputs]] = {}
    for ids in batches:
        org_stmt = select(Organisation.id, Organisation.kind, Organisation.verification_status,
                          Organisation.credit_code.is_not(None), Organisation.suspended,
                          Organisation.created_at, Organisation.credibility_score,
                          Organisation.credibility_level)
        if ids is not None:
            org_stmt = org_stmt.where(Organisation.id.in_(ids))
        orgs = session.execute(org_stmt).all()
        if not orgs:
            continue
        figures: dict[tuple[str, int], dict] = {}
        for kind, rows in (("provider", _provider_figures(session, ids)),
                           ("enterprise", _enterprise_figures(session, ids))):
            for row in rows:
                values = dict(zip(_FIGURE_NAMES, row[1:], strict=True))
                values = {key: (float(value) if key == "response_hours" else int(value))
                          for key, value in values.items()}
                figures[(kind, row[0])] = values
        reviews = _review_figures(session, ids)
        from demand.credibility import figures as demand_figures

        demand = demand_figures(session, ids, now)
        for org_id, kind, status, has_code, suspended, created_at, cur_score, cur_level in orgs:
            found = figures.get((kind, org_id), {})
            count, total = reviews.get(org_id, (0, 0))
            inputs = CredibilityInputs(
                kind=kind, verification_status=status, has_credit_code=bool(has_code),
                suspended=bool(suspended), age_days=_age_days(created_at, now),
                reviews=count, review_sum_x100=total,
                **{key: value for key, value in found.items()}, **demand.get(org_id, {}))
            out[org_id] = (OrgRow(org_id, kind, cur_score, cur_level), inputs)
    return out

