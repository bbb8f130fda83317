"""Layer 1, the rule: ``score(inputs)`` is a PURE function from the figures of one organisation
(``CredibilityInputs``) to a ``CredibilityResult`` with a per-part breakdown. No database,
no clock. The parts, weights and priors are described in providers/credibility/__init__.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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

