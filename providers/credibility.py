"""Credibility of both sides (DESIGN.md §6): a 0-100 score and a level for every service
institution and every enterprise, built from parts a person can check.

Three layers, kept apart so the same rule serves pages, the nightly command and tests:

1. ``score(inputs)`` is a PURE function from the figures of one organisation
   (``CredibilityInputs``) to a ``CredibilityResult`` with a per-part breakdown (points, max
   points, the raw figure and a sentence). No database, no clock.
2. ``gather(session, now, org_ids)`` collects those figures with a handful of GROUP BY
   queries, for a few organisations or for all of them at once (the nightly run reads
   purchase_order twice and review once, whatever the number of organisations).
3. ``recompute``/``recompute_many``/``recompute_all`` store the score on ``Organisation``,
   write a ``CredibilitySnapshot`` when the score or level changed, and queue the published
   listings of an institution whose score changed in the search outbox, all in the caller's
   transaction.

The parts and their weights (100 points in all)
-------------------------------------------------
=============  ===  ===========================================================================
verification    15  provider: verified 15, application under review 5, otherwise 0;
                    enterprise: verified 15, registered with a checked credit code 10;
                    suspended organisations get 0 while suspended
rating          25  Bayesian average of published, not hidden reviews about the organisation,
                    blended with 5 neutral 3.5★ reviews: (5 × 3.5 + sum) / (5 + n);
                    1★ = 0 points, 5★ = 25
on time         20  provider: completed orders delivered by their due date; enterprise: orders
                    paid within the payment window (unpaid ones that lapsed count as late);
                    rate = (on time + 3) / (counted + 4), i.e. a prior of 3 of 4;
                    50 % or less = 0 points, 100 % = 20
disputes        15  provider: disputes lost (full refund) 1, partly lost (partial refund) ½,
                    still open ½; enterprise: disputes rejected (no refund) 1, partly
                    upheld ½; rate = weighted disputes / (accepted orders + 5);
                    0 % = 15 points, 20 % or more = 0
cancellations   10  provider: orders declined (by the institution or for not answering in
                    time) or cancelled after acceptance, out of paid orders; enterprise:
                    orders cancelled after paying and before acceptance, out of paid orders;
                    rate = cancelled / (paid + 5); 0 % = 10 points, 30 % or more = 0
response         5  provider: hours from payment to acceptance; enterprise: hours from
                    delivery to completion (answering the delivery; auto-completion after
                    AUTO_COMPLETE_DAYS counts in full); average blended with 3 orders at the
                    prior (24 h / 48 h); 0 h = 5 points, 72 h / 168 h or more = 0
history         10  5 × min(1, completed orders / 20) + 5 × min(1, days on the platform / 730)
=============  ===  ===========================================================================

Each part is rounded to one decimal; the score is their sum rounded half up. Levels:
AAA ≥ 90, AA ≥ 80, A ≥ 70, B ≥ 55, C below 55.

The prior: an organisation without history is neither trusted nor distrusted. Its rating
counts as 3.5★, its on-time rate as 3 of 4, it has no disputes or cancellations against
it, and its response time is the prior; it has no history points. So a new verified
institution scores 69 (B) and an unverified one 54 (C): verification decides where
newcomers start, and real orders move them from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, event, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from marketplace.database import utcnow
from marketplace.models import Organisation

# --------------------------------------------------------------------------- the rule

WEIGHTS = {
    "verification": 15, "rating": 25, "on_time": 20, "disputes": 15, "cancellations": 10,
    "response": 5, "history": 10,
}
PART_LABELS = {
    "verification": "Verification", "rating": "Rating", "on_time": "On time",
    "disputes": "Disputes", "cancellations": "Cancellations", "response": "Response time",
    "history": "History",
}
LEVELS = (("AAA", 90), ("AA", 80), ("A", 70), ("B", 55), ("C", 0))
LEVEL_DESCRIPTIONS = {
    "AAA": "Outstanding record", "AA": "Very reliable", "A": "Reliable",
    "B": "Limited or mixed record", "C": "Caution: weak record",
}
LEVEL_BADGES = {"AAA": "success", "AA": "success", "A": "primary", "B": "secondary",
                "C": "danger"}

RATING_PRIOR_X100 = 350  # 3.5 stars
RATING_PRIOR_WEIGHT = 5
ON_TIME_PRIOR = (3, 4)  # 3 of 4 on time
ON_TIME_FLOOR = 0.5  # at or below this rate: no points
DISPUTE_PRIOR_ORDERS = 5
DISPUTE_ZERO_AT = 0.2
CANCEL_PRIOR_ORDERS = 5
CANCEL_ZERO_AT = 0.3
RESPONSE_PRIOR_ORDERS = 3
RESPONSE_PRIOR_HOURS = {"provider": 24.0, "enterprise": 48.0}
RESPONSE_ZERO_AT_HOURS = {"provider": 72.0, "enterprise": 168.0}
HISTORY_FULL_ORDERS = 20
HISTORY_FULL_DAYS = 730
DEFAULT_ALERT_BELOW = 55
TREND_DAYS = 30


@dataclass(frozen=True)
class CredibilityInputs:
    """The figures of one organisation. Counts whose meaning depends on the side say so."""

    kind: str  # "provider" or "enterprise"
    verification_status: str = "unverified"
    has_credit_code: bool = False
    suspended: bool = False
    age_days: int = 0
    reviews: int = 0  # published, not hidden reviews about this organisation
    review_sum_x100: int = 0  # their scores ×100 (1★ = 100 … 5★ = 500), summed
    # provider: completed orders with a due date / of those, delivered by it
    # enterprise: orders with a payment outcome / of those, paid within the window
    timed: int = 0
    on_time: int = 0
    accepted: int = 0  # orders the institution accepted
    disputes_lost: int = 0  # provider: full refund ruled; enterprise: no refund ruled
    disputes_partly: int = 0  # partial refund ruled
    disputes_open: int = 0  # still in dispute (counted against providers only)
    paid: int = 0  # orders paid
    cancelled: int = 0  # see the module docstring, per side
    responses: int = 0  # orders with a measured response
    response_hours: float = 0.0  # summed hours of those responses
    completed: int = 0  # orders completed
    # Demand side (demand/credibility.py): provider invitations it could answer / answered;
    # enterprise needs with proposals that ended / of those left without award or reason.
    invitations: int = 0
    invitations_answered: int = 0
    needs_with_proposals: int = 0
    needs_unawarded: int = 0


@dataclass(frozen=True)
class Part:
    key: str
    label: str
    points: float
    max_points: int
    figure: str  # the raw figure, short ("12 / 14", "4.60★ (10)")
    explanation: str  # a sentence a person understands


@dataclass(frozen=True)
class CredibilityResult:
    score: int
    level: str
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def total(self) -> float:
        return round(sum(part.points for part in self.parts), 1)

    def breakdown(self) -> dict:
        """JSON for the snapshot table and the pages."""
        return {"score": self.score, "level": self.level,
                "parts": [{"key": p.key, "label": p.label, "points": p.points,
                           "max_points": p.max_points, "figure": p.figure,
                           "explanation": p.explanation} for p in self.parts]}


def _round1(value: float) -> float:
    """Half up to one decimal (Python's round() is half-to-even)."""
    return math.floor(value * 10 + 0.5 + 1e-9) / 10


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def level_for(score: int | None) -> str | None:
    if score is None:
        return None
    for level, floor in LEVELS:
        if score >= floor:
            return level
    return "C"


def _verification(i: CredibilityInputs) -> Part:
    full = WEIGHTS["verification"]
    if i.suspended:
        return Part("verification", PART_LABELS["verification"], 0.0, full, "suspended",
                    "Suspended by platform staff: no verification points while suspended.")
    if i.verification_status == "verified":
        who = "institution" if i.kind == "provider" else "enterprise"
        how = ("licence and qualification documents checked by platform staff"
               if i.kind == "provider" else "checked by platform staff")
        return Part("verification", PART_LABELS["verification"], float(full), full, "verified",
                    f"Verified {who}: {how}.")
    if i.kind == "provider":
        if i.verification_status in ("pending", "more_info"):
            return Part("verification", PART_LABELS["verification"], 5.0, full, "under review",
                        "Application under review by platform staff (5 of 15 until verified).")
        return Part("verification", PART_LABELS["verification"], 0.0, full, "not verified",
                    "Not verified: the institution has not passed the platform's checks.")
    if i.has_credit_code:
        return Part("verification", PART_LABELS["verification"], 10.0, full, "registered",
                    "Registered with a checked unified social credit code; not yet verified "
                    "by platform staff (10 of 15).")
    return Part("verification", PART_LABELS["verification"], 0.0, full, "not verified",
                "No checked registration.")


def _rating(i: CredibilityInputs) -> Part:
    full = WEIGHTS["rating"]
    smoothed = ((RATING_PRIOR_X100 * RATING_PRIOR_WEIGHT + i.review_sum_x100)
                / (RATING_PRIOR_WEIGHT + i.reviews))
    points = _round1(full * _clamp((smoothed - 100) / 400))
    by = "buyers" if i.kind == "provider" else "institutions"
    if not i.reviews:
        return Part("rating", PART_LABELS["rating"], points, full, "no reviews",
                    f"No published reviews by {by} yet: counted as 3.5★, the neutral "
                    "starting point.")
    average = i.review_sum_x100 / i.reviews / 100
    return Part("rating", PART_LABELS["rating"], points, full,
                f"{average:.2f}★ ({i.reviews})",
                f"{average:.2f}★ average from {_plural(i.reviews, 'published review')} by {by}, "
                f"counted as {smoothed / 100:.2f}★ after blending in five neutral 3.5★ "
                "reviews, so a few reviews cannot swing the score.")


def _on_time(i: CredibilityInputs) -> Part:
    full = WEIGHTS["on_time"]
    prior_on, prior_n = ON_TIME_PRIOR
    rate = (i.on_time + prior_on) / (i.timed + prior_n)
    points = _round1(full * _clamp((rate - ON_TIME_FLOOR) / (1 - ON_TIME_FLOOR)))
    if i.kind == "provider":
        if not i.timed:
            text = ("No completed orders with a due date yet: counted as 3 of 4 on time, "
                    "the neutral starting point.")
        else:
            text = (f"{i.on_time} of {_plural(i.timed, 'completed order')} delivered by the "
                    "due date.")
    elif not i.timed:
        text = "No paid orders yet: counted as 3 of 4 paid on time, the neutral starting point."
    else:
        text = (f"{i.on_time} of {_plural(i.timed, 'order')} paid within the payment window "
                "(orders left unpaid until they lapsed count as late).")
    figure = f"{i.on_time} / {i.timed}" if i.timed else "none yet"
    return Part("on_time", PART_LABELS["on_time"], points, full, figure, text)


def _disputes(i: CredibilityInputs) -> Part:
    full = WEIGHTS["disputes"]
    if i.kind == "provider":
        weighted = i.disputes_lost + 0.5 * i.disputes_partly + 0.5 * i.disputes_open
    else:
        weighted = i.disputes_lost + 0.5 * i.disputes_partly
    rate = weighted / (i.accepted + DISPUTE_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - rate / DISPUTE_ZERO_AT))
    orders = _plural(i.accepted, "accepted order")
    if i.kind == "provider":
        pieces = [f"{i.disputes_lost} lost (full refund)" if i.disputes_lost else "",
                  f"{i.disputes_partly} partly lost" if i.disputes_partly else "",
                  f"{i.disputes_open} still open" if i.disputes_open else ""]
    else:
        pieces = [f"{i.disputes_lost} rejected by staff" if i.disputes_lost else "",
                  f"{i.disputes_partly} partly upheld" if i.disputes_partly else ""]
    pieces = [piece for piece in pieces if piece]
    if not pieces:
        text = f"No disputes counted against it in {orders}."
        figure = f"0 / {i.accepted}"
    else:
        text = f"Disputes in {orders}: {', '.join(pieces)}."
        figure = f"{weighted:g} / {i.accepted}"
    return Part("disputes", PART_LABELS["disputes"], points, full, figure, text)


def _cancellations(i: CredibilityInputs) -> Part:
    full = WEIGHTS["cancellations"]
    unawarded = i.needs_unawarded if i.kind == "enterprise" else 0
    ended = i.needs_with_proposals if i.kind == "enterprise" else 0
    rate = (i.cancelled + unawarded) / (i.paid + ended + CANCEL_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - rate / CANCEL_ZERO_AT))
    if i.kind == "provider":
        what = "Declined or cancelled after acceptance"
    else:
        what = "Cancelled after paying, before the institution accepted"
    text = f"{what}: {i.cancelled} of {_plural(i.paid, 'paid order')}."
    figure = f"{i.cancelled} / {i.paid}"
    if ended:
        text += (f" Needs (需求) that received proposals and were closed without an award "
                 f"and without a reason, or left to expire: {unawarded} of {ended}; they "
                 "count like cancellations.")
        figure += f" · needs {unawarded} / {ended}"
    return Part("cancellations", PART_LABELS["cancellations"], points, full, figure, text)


def _response(i: CredibilityInputs) -> Part:
    full = WEIGHTS["response"]
    prior = RESPONSE_PRIOR_HOURS[i.kind]
    zero_at = RESPONSE_ZERO_AT_HOURS[i.kind]
    hours = (i.response_hours + prior * RESPONSE_PRIOR_ORDERS) / (i.responses
                                                                  + RESPONSE_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - hours / zero_at))
    if i.kind == "provider":
        what, none = "accepts paid orders", "No accepted orders yet"
    else:
        what, none = "answers deliveries", "No answered deliveries yet"
    if not i.responses:
        text = f"{none}: counted as {prior:g} h, the neutral starting point."
        figure = "none yet"
    else:
        actual = i.response_hours / i.responses
        text = (f"{what[0].upper()}{what[1:]} in {actual:.1f} h on average "
                f"({_plural(i.responses, 'order')}); {zero_at:g} h or slower earns nothing.")
        figure = f"{actual:.1f} h"
    if i.kind == "provider" and i.invitations:
        # Answering invitations to needs (a proposal or "not interested") is responsiveness
        # too: the part is scaled by the answer rate, with a prior of 1 answered of 2.
        rate = (i.invitations_answered + 1) / (i.invitations + 2)
        points = _round1(points * rate)
        text += (f" Answered {i.invitations_answered} of {_plural(i.invitations, 'invitation')}"
                 f" to needs (需求); the part is scaled by that rate ({rate:.0%}).")
        figure += f" · {i.invitations_answered}/{i.invitations} invitations"
    return Part("response", PART_LABELS["response"], points, full, figure, text)


def _history(i: CredibilityInputs) -> Part:
    full = WEIGHTS["history"]
    half = full / 2
    points = _round1(half * min(1.0, i.completed / HISTORY_FULL_ORDERS)
                     + half * min(1.0, max(0, i.age_days) / HISTORY_FULL_DAYS))
    months = max(0, i.age_days) * 12 // 365
    age = _plural(months, "month") if months else _plural(max(0, i.age_days), "day")
    return Part("history", PART_LABELS["history"], points, full,
                f"{i.completed} orders · {age}",
                f"{_plural(i.completed, 'completed order')} and {age} on the platform "
                f"(full marks at {HISTORY_FULL_ORDERS} orders and two years).")


def score(inputs: CredibilityInputs) -> CredibilityResult:
    """THE credibility rule: figures in, score, level and breakdown out."""
    if inputs.kind not in RESPONSE_PRIOR_HOURS:
        raise ValueError(f"unknown organisation kind {inputs.kind!r}")
    parts = (_verification(inputs), _rating(inputs), _on_time(inputs), _disputes(inputs),
             _cancellations(inputs), _response(inputs), _history(inputs))
    total = sum(part.points for part in parts)
    value = max(0, min(100, math.floor(total + 0.5 + 1e-9)))
    return CredibilityResult(score=value, level=level_for(value), parts=parts)


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


# --------------------------------------------------------------------------- storing

# Listings already queued for the search index in the current transaction (by any service):
# one outbox row per listing and transaction is enough, because the writer reads the listing
# and its institution after the commit. Rows of earlier transactions are not counted: the
# writer may be applying them right now, before this transaction's change is visible.
_QUEUED = "credibility.outbox_queued"


@event.listens_for(Session, "before_flush")
def _note_queued_listings(session, _flush_context, _instances) -> None:
    from catalog.models import SearchOutbox

    for obj in session.new:
        if isinstance(obj, SearchOutbox):
            session.info.setdefault(_QUEUED, set()).add(obj.product_id)


@event.listens_for(Session, "after_transaction_end")
def _forget_queued_listings(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_QUEUED, None)


@dataclass
class RecomputeReport:
    organisations: int = 0
    changed: int = 0
    snapshots: int = 0
    listings_queued: int = 0

    def __str__(self) -> str:
        return (f"Credibility recomputed for {self.organisations} organisations: "
                f"{self.changed} changed, {self.snapshots} snapshots written, "
                f"{self.listings_queued} listings queued for the search index.")


def _store(session: Session, gathered: dict[int, tuple[OrgRow, CredibilityInputs]],
           now: datetime, queue_listings: bool = True,
           ) -> tuple[RecomputeReport, dict[int, CredibilityResult]]:
    from catalog import search_outbox
    from catalog.models import Product
    from providers.models import CredibilitySnapshot

    report = RecomputeReport(organisations=len(gathered))
    results: dict[int, CredibilityResult] = {}
    updates, snapshots, changed_providers = [], [], []
    for org_id, (row, inputs) in gathered.items():
        result = score(inputs)
        results[org_id] = result
        if (row.score, row.level) == (result.score, result.level):
            continue
        report.changed += 1
        updates.append({"id": org_id, "credibility_score": result.score,
                        "credibility_level": result.level, "credibility_updated_at": now})
        snapshots.append({"organisation_id": org_id, "score": result.score,
                          "level": result.level, "breakdown": result.breakdown(),
                          "computed_at": now})
        if row.kind == "provider" and queue_listings:
            changed_providers.append(org_id)
    for batch in _chunks(updates, 1000):
        session.execute(update(Organisation), batch)
    for batch in _chunks(snapshots, 1000):
        session.execute(CredibilitySnapshot.__table__.insert(), batch)
    report.snapshots = len(snapshots)
    queued = session.info.get(_QUEUED, set())
    for batch in _chunks(changed_providers):
        product_ids = [pid for pid in session.scalars(select(Product.id).where(
            Product.provider_id.in_(batch), Product.status == "published")).all()
            if pid not in queued]
        report.listings_queued += search_outbox.enqueue_many(session, product_ids,
                                                             "credibility_changed")
    # Keep loaded Organisation objects in step with the bulk UPDATE.
    for org_id in (u["id"] for u in updates):
        org = session.identity_map.get((Organisation, (org_id,), None))
        if org is not None:
            session.expire(org, ["credibility_score", "credibility_level",
                                 "credibility_updated_at"])
    session.flush()
    return report, results


def recompute_many(session: Session, org_ids, now: datetime | None = None) -> RecomputeReport:
    """Recompute the given organisations in the caller's transaction."""
    now = now or utcnow()
    ids = [org_id for org_id in org_ids if org_id is not None]
    if not ids:
        return RecomputeReport()
    report, _ = _store(session, gather(session, now, ids), now)
    return report


def recompute(session: Session, org: Organisation, now: datetime | None = None
              ) -> CredibilityResult:
    """Recompute one organisation and return its result (with the breakdown)."""
    now = now or utcnow()
    _, results = _store(session, gather(session, now, [org.id]), now)
    return results[org.id]


def recompute_all(session: Session, now: datetime | None = None, *,
                  queue_listings: bool = True) -> RecomputeReport:
    """The nightly job: every organisation, in bulk. Idempotent: a second run with nothing
    changed writes nothing. The caller commits. ``queue_listings=False`` only when every
    listing is queued for the search index anyway (the demo loader)."""
    now = now or utcnow()
    report, _ = _store(session, gather(session, now), now, queue_listings)
    return report


def refresh_for_order(session: Session, order, now: datetime | None = None) -> RecomputeReport:
    """After an order transition that matters: both parties of the order."""
    return recompute_many(session, [order.buyer_org_id, order.provider_org_id], now)


def refresh_organisation(session: Session, org: Organisation,
                         now: datetime | None = None) -> RecomputeReport:
    """After a verification, suspension or review change of one organisation."""
    return recompute_many(session, [org.id], now)


def current(session: Session, org: Organisation, now: datetime | None = None
            ) -> CredibilityResult:
    """The breakdown as it stands now, computed on the fly (nothing is written)."""
    now = now or utcnow()
    gathered = gather(session, now, [org.id])
    return score(gathered[org.id][1])


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
