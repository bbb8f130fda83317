"""Reading credibility for pages and the staff console: history, charts, trends, alerts,
the console's list statement, level counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, joinedload

from marketplace.database import utcnow
from marketplace.models import Organisation
from providers.credibility.score import (
    DEFAULT_ALERT_BELOW,
    LEVELS,
    TREND_DAYS,
    CredibilityResult,
    level_for,
)

# --------------------------------------------------------------------------- reading

def suspended_buyer_message(org: Organisation) -> str:
    """What a suspended enterprise is told when it tries to order."""
    text = (f"{org.name} is suspended by platform staff and cannot place new orders, request "
            "quotes or apply for financial products. Orders already placed continue as usual.")
    if org.suspended_reason:
        text += f" Reason: {org.suspended_reason}"
    return text


def history(session: Session, org_id: int, since: datetime | None = None,
            limit: int = 400) -> list:
    """Snapshots of one organisation, oldest first (the chart's points)."""
    from providers.models import CredibilitySnapshot as S  # noqa: N814

    stmt = select(S).where(S.organisation_id == org_id)
    if since is not None:
        stmt = stmt.where(S.computed_at >= since)
    rows = session.scalars(stmt.order_by(S.computed_at.desc(), S.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def chart_data(session: Session, org: Organisation, now: datetime,
               result: CredibilityResult | None = None) -> dict:
    """Points for the history chart (JSON): every snapshot, then the score as it is now."""
    points = [{"t": snap.computed_at.astimezone(UTC).isoformat(), "score": snap.score,
               "level": snap.level} for snap in history(session, org.id)]
    value = result.score if result is not None else org.credibility_score
    if value is not None:
        points.append({"t": now.astimezone(UTC).isoformat(), "score": value,
                       "level": level_for(value)})
    return {"points": points, "levels": [{"level": level, "from": floor}
                                         for level, floor in LEVELS]}


def trends(session: Session, org_ids: list[int], now: datetime,
           days: int = TREND_DAYS) -> dict[int, int | None]:
    """Change of the stored score over ``days``: current score minus the score the
    organisation had ``days`` ago (its latest snapshot by then, or its first snapshot when it
    is younger than that). None when there is nothing to compare."""
    from providers.models import CredibilitySnapshot as S  # noqa: N814

    ids = [i for i in org_ids if i is not None]
    if not ids:
        return {}
    cutoff = now - timedelta(days=days)
    current_scores = dict(session.execute(
        select(Organisation.id, Organisation.credibility_score).where(Organisation.id.in_(ids))
    ).all())
    before = (select(S.organisation_id, func.max(S.computed_at).label("at"))
              .where(S.organisation_id.in_(ids), S.computed_at <= cutoff)
              .group_by(S.organisation_id).subquery())
    first = (select(S.organisation_id, func.min(S.computed_at).label("at"))
             .where(S.organisation_id.in_(ids)).group_by(S.organisation_id).subquery())
    baseline: dict[int, int] = {}
    for sub in (first, before):  # "before" wins where both exist
        rows = session.execute(
            select(S.organisation_id, S.score, S.id)
            .join(sub, and_(sub.c.organisation_id == S.organisation_id, sub.c.at == S.computed_at))
            .order_by(S.id)).all()
        for org_id, value, _id in rows:
            baseline[org_id] = value
    out: dict[int, int | None] = {}
    for org_id in ids:
        now_score, then = current_scores.get(org_id), baseline.get(org_id)
        out[org_id] = None if now_score is None or then is None else now_score - then
    return out


def alert_threshold() -> int:
    try:
        from flask import current_app

        return int(current_app.config.get("CREDIBILITY_ALERT_BELOW", DEFAULT_ALERT_BELOW))
    except RuntimeError:  # outside an application context
        return DEFAULT_ALERT_BELOW


@dataclass
class Alert:
    organisation: Organisation
    score: int
    level: str
    trend: int | None


def low_credibility_alerts(session: Session, limit: int = 10, *,
                           threshold: int | None = None,
                           now: datetime | None = None) -> list[Alert]:
    """Organisations (not suspended) scoring below the alert threshold
    (``CREDIBILITY_ALERT_BELOW``), lowest first, with their 30-day trend."""
    threshold = alert_threshold() if threshold is None else threshold
    orgs = session.scalars(
        select(Organisation).where(Organisation.credibility_score < threshold,
                                   Organisation.suspended.is_(False))
        .order_by(Organisation.credibility_score, Organisation.name, Organisation.id)
        .limit(limit)).all()
    changes = trends(session, [o.id for o in orgs], now or utcnow())
    return [Alert(o, o.credibility_score, o.credibility_level, changes.get(o.id)) for o in orgs]


CONSOLE_SORTS = {
    "score_asc": "Lowest score first",
    "score_desc": "Highest score first",
    "trend_asc": "Biggest fall in 30 days first",
    "trend_desc": "Biggest rise in 30 days first",
    "name": "Name",
}


@dataclass
class ConsoleFilters:
    kind: str | None = None  # provider / enterprise
    level: str | None = None
    watch: bool = False
    suspended: bool = False
    alerts: bool = False  # below the alert threshold only
    q: str = ""
    sort: str = "score_asc"

    @classmethod
    def from_args(cls, args) -> ConsoleFilters:
        kind = args.get("kind") or None
        level = args.get("level") or None
        sort = args.get("sort") or "score_asc"
        yes = {"1", "on", "true", "yes"}
        return cls(
            kind=kind if kind in ("provider", "enterprise") else None,
            level=level if level in dict(LEVELS) else None,
            watch=str(args.get("watch", "")).lower() in yes,
            suspended=str(args.get("suspended", "")).lower() in yes,
            alerts=str(args.get("alerts", "")).lower() in yes,
            q=(args.get("q") or "").strip()[:100],
            sort=sort if sort in CONSOLE_SORTS else "score_asc",
        )

    def args(self, **changes) -> dict:
        values = {"kind": self.kind, "level": self.level, "watch": "1" if self.watch else None,
                  "suspended": "1" if self.suspended else None,
                  "alerts": "1" if self.alerts else None, "q": self.q or None,
                  "sort": self.sort if self.sort != "score_asc" else None}
        values.update(changes)
        return {key: value for key, value in values.items() if value not in (None, "")}


def _trend_expr(now: datetime, days: int = TREND_DAYS):
    """The 30-day change of ``trends`` as a column, for sorting the whole list by it: the
    stored score minus the latest snapshot by the cutoff, or the first one when younger."""
    from providers.models import CredibilitySnapshot as S  # noqa: N814

    cutoff = now - timedelta(days=days)
    then = (select(S.score).where(S.organisation_id == Organisation.id, S.computed_at <= cutoff)
            .order_by(S.computed_at.desc(), S.id.desc()).limit(1).scalar_subquery())
    first = (select(S.score).where(S.organisation_id == Organisation.id)
             .order_by(S.computed_at, S.id.desc()).limit(1).scalar_subquery())
    return Organisation.credibility_score - func.coalesce(then, first)


def console_statement(filters: ConsoleFilters, threshold: int, now: datetime | None = None):
    stmt = select(Organisation)
    if filters.kind:
        stmt = stmt.where(Organisation.kind == filters.kind)
    if filters.level:
        stmt = stmt.where(Organisation.credibility_level == filters.level)
    if filters.watch:
        stmt = stmt.where(Organisation.watch.is_(True))
    if filters.suspended:
        stmt = stmt.where(Organisation.suspended.is_(True))
    if filters.alerts:
        stmt = stmt.where(Organisation.credibility_score < threshold)
    if filters.q:
        pattern = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Organisation.name.ilike(pattern, escape="\\"),
                              Organisation.credit_code == filters.q.upper()))
    unscored = case((Organisation.credibility_score.is_(None), 1), else_=0)
    if filters.sort == "score_desc":
        order = (unscored, Organisation.credibility_score.desc(), Organisation.name)
    elif filters.sort in ("trend_asc", "trend_desc"):
        trend = _trend_expr(now or utcnow())
        untrended = case((trend.is_(None), 1), else_=0)
        order = (untrended, trend if filters.sort == "trend_asc" else trend.desc(),
                 Organisation.credibility_score, Organisation.name)
    elif filters.sort == "name":
        order = (Organisation.name,)
    else:
        order = (unscored, Organisation.credibility_score, Organisation.name)
    return stmt.order_by(*order, Organisation.id)


def level_counts(session: Session, kind: str | None = None) -> dict[str, int]:
    stmt = select(Organisation.credibility_level, func.count()).group_by(
        Organisation.credibility_level)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    return {level or "none": count for level, count in session.execute(stmt).all()}


def recent_orders(session: Session, org: Organisation, limit: int = 10) -> list:
    from orders.models import Order

    column = Order.provider_org_id if org.kind == "provider" else Order.buyer_org_id
    other = Order.buyer if org.kind == "provider" else Order.provider  # each row shows it
    return list(session.scalars(select(Order).where(column == org.id)
                                .options(joinedload(other))
                                .order_by(Order.created_at.desc(), Order.id.desc())
                                .limit(limit)).all())


def levels_of(session: Session, org_ids) -> dict[int, tuple[int | None, str | None]]:
    """Stored score and level of several organisations (order lists show the buyer's)."""
    ids = sorted({i for i in org_ids if i is not None})
    if not ids:
        return {}
    return {row[0]: (row[1], row[2]) for row in session.execute(
        select(Organisation.id, Organisation.credibility_score, Organisation.credibility_level)
        .where(Organisation.id.in_(ids))).all()}

