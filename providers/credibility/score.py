"""Layer 1, the rule: ``score(inputs)`` is a PURE function from the figures of one organisation
(``CredibilityInputs``) to a ``CredibilityResult`` with a per-part breakdown. No database,
no clock. The parts, weights and priors are described in providers/credibility/__init__.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

# --------------------------------------------------------------------------- the rule

WEIGHTS = {
    "verification": 15, "rating": 25, "on_time": 20, "disputes": 15, "cancellations": 10,
    "response": 5, "history": 10,
}
PART_LABELS = {
    "verification": _l("Verification"), "rating": _l("Rating"), "on_time": _l("On time"),
    "disputes": _l("Disputes"), "cancellations": _l("Cancellations"),
    "response": _l("Response time"), "history": _l("History"),
}
LEVELS = (("AAA", 90), ("AA", 80), ("A", 70), ("B", 55), ("C", 0))
LEVEL_DESCRIPTIONS = {
    "AAA": _l("Outstanding record"), "AA": _l("Very reliable"), "A": _l("Reliable"),
    "B": _l("Limited or mixed record"), "C": _l("Caution: weak record"),
}
# How a level reads on a page ("AAA级" in Chinese); the stored code stays "AAA".
LEVEL_LABELS = {"AAA": _l("AAA"), "AA": _l("AA"), "A": _l("A"), "B": _l("B"), "C": _l("C")}


def level_label(level: str | None) -> str:
    return str(LEVEL_LABELS.get(level, level or ""))


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
                "parts": [{"key": p.key, "label": str(p.label), "points": p.points,
                           "max_points": p.max_points, "figure": p.figure,
                           "explanation": p.explanation} for p in self.parts]}


def _round1(value: float) -> float:
    """Half up to one decimal (Python's round() is half-to-even)."""
    return math.floor(value * 10 + 0.5 + 1e-9) / 10


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def level_for(score: int | None) -> str | None:
    if score is None:
        return None
    for level, floor in LEVELS:
        if score >= floor:
            return level
    return "C"


def _verification(i: CredibilityInputs) -> Part:
    full = WEIGHTS["verification"]
    label = PART_LABELS["verification"]
    if i.suspended:
        return Part("verification", label, 0.0, full, _("suspended"),
                    _("Suspended by platform staff: no verification points while suspended."))
    if i.verification_status == "verified":
        return Part("verification", label, float(full), full, _("verified"),
                    _("Verified institution: licence and qualification documents checked by "
                      "platform staff.") if i.kind == "provider" else
                    _("Verified enterprise: checked by platform staff."))
    if i.kind == "provider":
        if i.verification_status in ("pending", "more_info"):
            return Part("verification", label, 5.0, full, _("under review"),
                        _("Application under review by platform staff (5 of 15 until "
                          "verified)."))
        return Part("verification", label, 0.0, full, _("not verified"),
                    _("Not verified: the institution has not passed the platform's checks."))
    if i.has_credit_code:
        return Part("verification", label, 10.0, full, _("registered"),
                    _("Registered with a checked unified social credit code; not yet verified "
                      "by platform staff (10 of 15)."))
    return Part("verification", label, 0.0, full, _("not verified"),
                _("No checked registration."))


def _rating(i: CredibilityInputs) -> Part:
    full = WEIGHTS["rating"]
    smoothed = ((RATING_PRIOR_X100 * RATING_PRIOR_WEIGHT + i.review_sum_x100)
                / (RATING_PRIOR_WEIGHT + i.reviews))
    points = _round1(full * _clamp((smoothed - 100) / 400))
    if not i.reviews:
        return Part("rating", PART_LABELS["rating"], points, full, _("no reviews"),
                    _("No published reviews by buyers yet: counted as 3.5★, the neutral "
                      "starting point.") if i.kind == "provider" else
                    _("No published reviews by institutions yet: counted as 3.5★, the neutral "
                      "starting point."))
    average = f"{i.review_sum_x100 / i.reviews / 100:.2f}"
    counted = f"{smoothed / 100:.2f}"
    if i.kind == "provider":
        text = ngettext("%(average)s★ average from %(num)d published review by buyers, counted "
                        "as %(counted)s★ after blending in five neutral 3.5★ reviews, so a few "
                        "reviews cannot swing the score.",
                        "%(average)s★ average from %(num)d published reviews by buyers, counted "
                        "as %(counted)s★ after blending in five neutral 3.5★ reviews, so a few "
                        "reviews cannot swing the score.", i.reviews,
                        average=average, counted=counted)
    else:
        text = ngettext("%(average)s★ average from %(num)d published review by institutions, "
                        "counted as %(counted)s★ after blending in five neutral 3.5★ reviews, "
                        "so a few reviews cannot swing the score.",
                        "%(average)s★ average from %(num)d published reviews by institutions, "
                        "counted as %(counted)s★ after blending in five neutral 3.5★ reviews, "
                        "so a few reviews cannot swing the score.", i.reviews,
                        average=average, counted=counted)
    return Part("rating", PART_LABELS["rating"], points, full, f"{average}★ ({i.reviews})", text)


def _on_time(i: CredibilityInputs) -> Part:
    full = WEIGHTS["on_time"]
    prior_on, prior_n = ON_TIME_PRIOR
    rate = (i.on_time + prior_on) / (i.timed + prior_n)
    points = _round1(full * _clamp((rate - ON_TIME_FLOOR) / (1 - ON_TIME_FLOOR)))
    if i.kind == "provider":
        if not i.timed:
            text = _("No completed orders with a due date yet: counted as 3 of 4 on time, "
                     "the neutral starting point.")
        else:
            text = ngettext("%(on_time)s of %(num)d completed order delivered by the due date.",
                            "%(on_time)s of %(num)d completed orders delivered by the due date.",
                            i.timed, on_time=i.on_time)
    elif not i.timed:
        text = _("No paid orders yet: counted as 3 of 4 paid on time, the neutral starting "
                 "point.")
    else:
        text = ngettext("%(on_time)s of %(num)d order paid within the payment window (orders "
                        "left unpaid until they lapsed count as late).",
                        "%(on_time)s of %(num)d orders paid within the payment window (orders "
                        "left unpaid until they lapsed count as late).", i.timed,
                        on_time=i.on_time)
    figure = f"{i.on_time} / {i.timed}" if i.timed else _("none yet")
    return Part("on_time", PART_LABELS["on_time"], points, full, figure, text)


def _disputes(i: CredibilityInputs) -> Part:
    full = WEIGHTS["disputes"]
    if i.kind == "provider":
        weighted = i.disputes_lost + 0.5 * i.disputes_partly + 0.5 * i.disputes_open
    else:
        weighted = i.disputes_lost + 0.5 * i.disputes_partly
    rate = weighted / (i.accepted + DISPUTE_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - rate / DISPUTE_ZERO_AT))
    if i.kind == "provider":
        pieces = [_("%(num)s lost (full refund)", num=i.disputes_lost) if i.disputes_lost else "",
                  _("%(num)s partly lost", num=i.disputes_partly) if i.disputes_partly else "",
                  _("%(num)s still open", num=i.disputes_open) if i.disputes_open else ""]
    else:
        pieces = [_("%(num)s rejected by staff", num=i.disputes_lost) if i.disputes_lost else "",
                  _("%(num)s partly upheld", num=i.disputes_partly) if i.disputes_partly else ""]
    pieces = [piece for piece in pieces if piece]
    if not pieces:
        text = ngettext("No disputes counted against it in %(num)d accepted order.",
                        "No disputes counted against it in %(num)d accepted orders.", i.accepted)
        figure = f"0 / {i.accepted}"
    else:  # one message per piece: a sentence stays whole in every language
        text = " ".join([ngettext("Disputes in %(num)d accepted order:",
                                  "Disputes in %(num)d accepted orders:", i.accepted),
                         _(", ").join(pieces)])
        figure = f"{weighted:g} / {i.accepted}"
    return Part("disputes", PART_LABELS["disputes"], points, full, figure, text)


def _cancellations(i: CredibilityInputs) -> Part:
    full = WEIGHTS["cancellations"]
    unawarded = i.needs_unawarded if i.kind == "enterprise" else 0
    ended = i.needs_with_proposals if i.kind == "enterprise" else 0
    rate = (i.cancelled + unawarded) / (i.paid + ended + CANCEL_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - rate / CANCEL_ZERO_AT))
    if i.kind == "provider":
        text = ngettext("Declined or cancelled after acceptance: %(cancelled)s of %(num)d paid "
                        "order.", "Declined or cancelled after acceptance: %(cancelled)s of "
                        "%(num)d paid orders.", i.paid, cancelled=i.cancelled)
    else:
        text = ngettext("Cancelled after paying, before the institution accepted: %(cancelled)s "
                        "of %(num)d paid order.", "Cancelled after paying, before the "
                        "institution accepted: %(cancelled)s of %(num)d paid orders.", i.paid,
                        cancelled=i.cancelled)
    figure = f"{i.cancelled} / {i.paid}"
    if ended:
        text += " " + _("Needs that received proposals and were closed without an award and "
                        "without a reason, or left to expire: %(unawarded)s of %(ended)s; "
                        "they count like cancellations.", unawarded=unawarded, ended=ended)
        figure += " · " + _("needs %(unawarded)s / %(ended)s", unawarded=unawarded,
                            ended=ended)
    return Part("cancellations", PART_LABELS["cancellations"], points, full, figure, text)


def _response(i: CredibilityInputs) -> Part:
    full = WEIGHTS["response"]
    prior = RESPONSE_PRIOR_HOURS[i.kind]
    zero_at = RESPONSE_ZERO_AT_HOURS[i.kind]
    hours = (i.response_hours + prior * RESPONSE_PRIOR_ORDERS) / (i.responses
                                                                  + RESPONSE_PRIOR_ORDERS)
    points = _round1(full * _clamp(1 - hours / zero_at))
    prior_text, zero_text = f"{prior:g}", f"{zero_at:g}"
    if not i.responses:
        text = (_("No accepted orders yet: counted as %(hours)s h, the neutral starting point.",
                  hours=prior_text) if i.kind == "provider" else
                _("No answered deliveries yet: counted as %(hours)s h, the neutral starting "
                  "point.", hours=prior_text))
        figure = _("none yet")
    else:
        actual = f"{i.response_hours / i.responses:.1f}"
        if i.kind == "provider":
            text = ngettext("Accepts paid orders in %(hours)s h on average (%(num)d order); "
                            "%(zero)s h or slower earns nothing.",
                            "Accepts paid orders in %(hours)s h on average (%(num)d orders); "
                            "%(zero)s h or slower earns nothing.", i.responses,
                            hours=actual, zero=zero_text)
        else:
            text = ngettext("Answers deliveries in %(hours)s h on average (%(num)d order); "
                            "%(zero)s h or slower earns nothing.",
                            "Answers deliveries in %(hours)s h on average (%(num)d orders); "
                            "%(zero)s h or slower earns nothing.", i.responses,
                            hours=actual, zero=zero_text)
        figure = f"{actual} h"
    if i.kind == "provider" and i.invitations:
        # Answering invitations to needs (a proposal or "not interested") is responsiveness
        # too: the part is scaled by the answer rate, with a prior of 1 answered of 2.
        rate = (i.invitations_answered + 1) / (i.invitations + 2)
        points = _round1(points * rate)
        rate_text = format(rate, ".0%")
        text += " " + _("Answered %(answered)s of %(invited)s invitations to needs; the part "
                        "is scaled by that rate (%(rate)s).", answered=i.invitations_answered,
                        invited=i.invitations, rate=rate_text)
        figure += " · " + _("%(answered)s/%(invited)s invitations",
                            answered=i.invitations_answered, invited=i.invitations)
    return Part("response", PART_LABELS["response"], points, full, figure, text)


def _history(i: CredibilityInputs) -> Part:
    full = WEIGHTS["history"]
    half = full / 2
    points = _round1(half * min(1.0, i.completed / HISTORY_FULL_ORDERS)
                     + half * min(1.0, max(0, i.age_days) / HISTORY_FULL_DAYS))
    months = max(0, i.age_days) * 12 // 365
    age = (ngettext("%(num)d month", "%(num)d months", months) if months else
           ngettext("%(num)d day", "%(num)d days", max(0, i.age_days)))
    on_platform = (ngettext("%(num)d month on the platform.", "%(num)d months on the platform.",
                            months) if months else
                   ngettext("%(num)d day on the platform.", "%(num)d days on the platform.",
                            max(0, i.age_days)))
    # Separate sentences, each translated whole (no message inside another).
    text = " ".join([ngettext("%(num)d completed order.", "%(num)d completed orders.",
                              i.completed), on_platform,
                     _("Full marks at %(full)s orders and two years.",
                       full=HISTORY_FULL_ORDERS)])
    return Part("history", PART_LABELS["history"], points, full,
                f"{i.completed} · {age}", text)


def score(inputs: CredibilityInputs) -> CredibilityResult:
    """THE credibility rule: figures in, score, level and breakdown out."""
    if inputs.kind not in RESPONSE_PRIOR_HOURS:
        raise ValueError(f"unknown organisation kind {inputs.kind!r}")
    parts = (_verification(inputs), _rating(inputs), _on_time(inputs), _disputes(inputs),
             _cancellations(inputs), _response(inputs), _history(inputs))
    total = sum(part.points for part in parts)
    value = max(0, min(100, math.floor(total + 0.5 + 1e-9)))
    return CredibilityResult(score=value, level=level_for(value), parts=parts)

