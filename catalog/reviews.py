"""Two-way ratings of completed orders (DESIGN.md §6): the rules, as plain functions.

- After an order is completed (completed, settled or resolved) each side writes one review:
  the buyer rates the institution (quality, timeliness, communication, value), the
  institution rates the buyer (clarity of requirements, cooperation, payment), 1-5 each.
- Double-blind: a review stays unpublished (invisible to the other side) until both are in,
  or until the blind window (REVIEW_BLIND_DAYS, 14 by default) has passed since the order
  completed; then whatever is in is published (``publish_due_reviews``, run by
  ``run-order-timers``) and the order can no longer be rated, so nobody answers a score
  they have already seen.
- The institution may reply once to a published buyer review.
- Staff hide a review with a recorded reason (audit log) and may show it again; a hidden
  review counts nowhere.

Services here flush; the view or job that calls them commits (docs/development.md,
Transactions).

A review COUNTS (averages, public pages) when it is published and not hidden:
``counted_reviews_condition()``. Every change of what counts for a listing recomputes
``Product.rating_x100``/``rating_count`` and queues the listing in the search outbox, in the
same transaction.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from catalog.models import BUYER_DIMENSIONS, PROVIDER_DIMENSIONS, Product, Review
from catalog.search import outbox as search_outbox
from marketplace import audit, permissions
from marketplace.database import utcnow
from marketplace.i18n import format_date
from marketplace.models import Organisation, User
from marketplace.notifications import notify, recipient_locale
from marketplace.permissions import can_moderate_reviews, can_reply_to_review, review_side
from orders import states
from orders.models import Order

DEFAULT_BLIND_DAYS = 14
REVIEWABLE_STATUSES = states.REVIEWABLE
MAX_BODY = 4000
MAX_REPLY = 2000
MAX_REASON = 1000

# (label, Chinese name); the label is lazy, so it shows in the viewer's language.
DIMENSION_LABELS = {
    "quality": (_l("Quality of work"), "服务质量"),
    "timeliness": (_l("Timeliness"), "交付及时"),
    "communication": (_l("Communication"), "沟通"),
    "value": (_l("Value for money"), "性价比"),
    "clarity": (_l("Clarity of requirements"), "需求清晰"),
    "cooperation": (_l("Cooperation"), "配合程度"),
    "payment": (_l("Payment"), "付款"),
}
SIDE_DIMENSIONS = {"buyer": BUYER_DIMENSIONS, "provider": PROVIDER_DIMENSIONS}


class ReviewError(Exception):
    """A refused review action; ``status`` is the HTTP status a view answers with."""

    status = 409

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ReviewForbidden(ReviewError):
    status = 403


class ReviewInvalid(ReviewError):
    """Scores or text that cannot be accepted; ``errors`` maps field names to messages."""

    status = 400

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(errors.values()))
        self.errors = errors


# --------------------------------------------------------------------------- small rules

def counted_reviews_condition():
    """SQL condition of a review that counts: published and not hidden (the rule lives in
    marketplace.permissions)."""
    return permissions.public_reviews_filter(Review)


def mean_x100(total: int, count: int) -> int:
    """``total / count`` x100, rounded half up, in integers (4.25 -> 425, 4.125 -> 413)."""
    return (2 * 100 * total + count) // (2 * count)


def ratio_x100(total_x100: int, count: int) -> int:
    """Mean of values already x100, rounded half up."""
    return (2 * total_x100 + count) // (2 * count)


def stars_of(score_x100: int) -> int:
    """The whole-star bucket of a score for the distribution (4.49 -> 4, 4.50 -> 5)."""
    return (score_x100 + 50) // 100


def blind_days_setting() -> int:
    """REVIEW_BLIND_DAYS of the running app, or the default outside one."""
    from flask import current_app, has_app_context

    if has_app_context():
        return int(current_app.config.get("REVIEW_BLIND_DAYS") or DEFAULT_BLIND_DAYS)
    return DEFAULT_BLIND_DAYS


def completed_at(order: Order) -> datetime | None:
    """When the order reached a rateable state: completion, or the dispute ruling."""
    if order.status not in REVIEWABLE_STATUSES:
        return None
    return order.completed_at or order.closed_at or order.updated_at


def blind_until(order: Order, blind_days: int | None = None) -> datetime | None:
    """When the blind window of an order ends (None before the order is complete)."""
    done = completed_at(order)
    if done is None:
        return None
    return done + timedelta(days=blind_days if blind_days is not None else blind_days_setting())


def validate(side: str, scores: dict, body: str | None) -> tuple[dict[str, int], str]:
    """Scores of ``side`` as integers 1-5 and the trimmed text, or ``ReviewInvalid``."""
    errors: dict[str, str] = {}
    clean: dict[str, int] = {}
    for name in SIDE_DIMENSIONS[side]:
        raw = scores.get(name)
        label = str(DIMENSION_LABELS[name][0]).lower()
        if raw is None or str(raw).strip() == "":
            errors[name] = _("Choose a score from 1 to 5 for %(dimension)s.", dimension=label)
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = 0
        if not 1 <= value <= 5:
            errors[name] = _("The score for %(dimension)s must be a whole number from 1 to 5.",
                             dimension=label)
            continue
        clean[name] = value
    text = (body or "").strip()
    if len(text) > MAX_BODY:
        errors["body"] = _("Please keep the review under %(max)s characters.",
                           max=format(MAX_BODY, ","))
    if errors:
        raise ReviewInvalid(errors)
    return clean, text


# --------------------------------------------------------------------------- writing

@dataclass
class OrderReviews:
    """Both reviews of an order (either may be None)."""

    buyer: Review | None = None
    provider: Review | None = None

    def of(self, side: str) -> Review | None:
        return self.buyer if side == "buyer" else self.provider


def reviews_of_order(session: Session, order_id: int) -> OrderReviews:
    found = OrderReviews()
    for review in session.scalars(select(Review).where(Review.order_id == order_id)):
        setattr(found, review.side, review)
    return found


def check_can_review(session: Session, order: Order, user: User, now: datetime,
                     blind_days: int | None = None) -> str:
    """The side ``user`` may write now, or a ``ReviewError`` saying why not."""
    side = review_side(user, order)
    if side is None:
        raise ReviewForbidden(_("Only members of the buying enterprise or of the institution "
                                "of this order can rate it."))
    if order.status not in REVIEWABLE_STATUSES:
        raise ReviewError(_("This order can be rated once it is completed."))
    if reviews_of_order(session, order.id).of(side) is not None:
        raise ReviewError(_("Your organisation has already rated this order; "
                            "a review cannot be changed or written twice."))
    closes = blind_until(order, blind_days)
    if closes is not None and now >= closes:
        raise ReviewError(_("Rating for this order closed on %(date)s: reviews are accepted "
                            "during the first %(days)d days after completion.",
                            date=format_date(closes),
                            days=(closes - completed_at(order)).days))
    return side


def submit_review(session: Session, order: Order, user: User, scores: dict,
                  body: str | None = "", *, now: datetime | None = None,
                  blind_days: int | None = None) -> Review:
    """Write ``user``'s side's review of ``order`` (flushed; the caller commits). Publishes both reviews when
    the other side's is already in. Raises ``ReviewError`` (nothing stored) when the user is
    not a party, the order is not complete, the side has rated already, or the window closed;
    ``ReviewInvalid`` when scores or text are wrong."""
    now = now or utcnow()
    # Serialise the two sides of one order (PostgreSQL), so two reviews arriving at the same
    # moment cannot both miss each other and stay blind.
    session.execute(select(Order.id).where(Order.id == order.id).with_for_update())
    side = check_can_review(session, order, user, now, blind_days)
    clean, text = validate(side, scores, body)
    subject_id = order.provider_org_id if side == "buyer" else order.buyer_org_id
    review = Review(
        order_id=order.id, side=side, author_org_id=user.organisation_id,
        author_user_id=user.id, subject_org_id=subject_id,
        product_id=order.product_id if side == "buyer" else None,
        score_x100=mean_x100(sum(clean.values()), len(clean)), body=text, created_at=now,
        **clean)
    session.add(review)
    try:
        session.flush()
    except IntegrityError:  # the same side, written a moment ago in another request
        session.rollback()
        raise ReviewError(_("Your organisation has already rated this order; "
                            "a review cannot be changed or written twice.")) from None
    other = reviews_of_order(session, order.id).of("provider" if side == "buyer" else "buyer")
    if other is not None:
        _publish(session, [review, other], now)
    else:
        _tell_other_side(session, order, side, blind_until(order, blind_days))
    session.flush()
    return review


def _notify_members(session: Session, organisation: Organisation, kind: str, title,
                        body=lambda: "", link: str | None = None) -> int:
    """Notify every active member of ``organisation``, each in their own language:
    ``title`` and ``body`` are functions called under the member's locale."""
    members = session.scalars(
        select(User).where(User.organisation_id == organisation.id, User.active.is_(True))
    ).all()
    for member in members:
        with force_locale(recipient_locale(member)):
            notify(session, member, kind, title(), body(), link)
    return len(members)


def _tell_other_side(session: Session, order: Order, side: str, closes: datetime | None) -> None:
    other_party = "provider" if side == "buyer" else "buyer"
    organisation = order.provider if other_party == "provider" else order.buyer

    def body() -> str:
        values = {"number": order.number, "title": order.title}
        if side == "buyer":
            text = _("The buyer has rated order %(number)s (%(title)s).", **values)
        else:
            text = _("The institution has rated order %(number)s (%(title)s).", **values)
        if closes:
            rest = _("Reviews are double-blind: rate it too by %(date)s and both reviews are "
                     "published together. Until then neither side sees the other's.",
                     date=format_date(closes))
        else:
            rest = _("Reviews are double-blind: rate it too and both reviews are published "
                     "together. Until then neither side sees the other's.")
        return f"{text} {rest}"

    _notify_members(
        session, organisation, "review_waiting",
        lambda: _("Order %(number)s: please rate it", number=order.number), body,
        _order_link(order, other_party) + "#rating")


def _order_link(order: Order, party: str) -> str:
    from orders.workflow import order_link

    return order_link(order, party)


# --------------------------------------------------------------------------- publishing

def _publish(session: Session, reviews: list[Review], now: datetime) -> int:
    """Publish unpublished ``reviews`` (idempotent: a conditional update per review)."""
    published = []
    for review in reviews:
        result = session.execute(
            update(Review).where(Review.id == review.id, Review.published_at.is_(None))
            .values(published_at=now).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            set_committed_value(review, "published_at", now)
            published.append(review)
    if not published:
        return 0
    for product_id in {r.product_id for r in published if r.side == "buyer" and r.product_id}:
        refresh_product_rating(session, product_id)
    _refresh_credibility(session, {r.subject_org_id for r in published}, now)
    order = session.get(Order, published[0].order_id)
    for party in ("buyer", "provider"):
        organisation = order.buyer if party == "buyer" else order.provider
        _notify_members(
            session, organisation, "review_published",
            lambda: _("Order %(number)s: reviews published", number=order.number),
            lambda: _("The reviews of order %(number)s (%(title)s) are now published.",
                      number=order.number, title=order.title),
            _order_link(order, party) + "#rating")
    return len(published)


def publish_due_reviews(session: Session, now: datetime, blind_days: int | None = None) -> int:
    """Publish every review whose blind window has passed (the other side never wrote).
    Idempotent: published reviews are never touched again. Flushes (the job commits);
    returns how many reviews were published."""
    days = blind_days if blind_days is not None else blind_days_setting()
    cutoff = now - timedelta(days=days)
    done = func.coalesce(Order.completed_at, Order.closed_at, Order.updated_at)
    due = session.scalars(
        select(Review).join(Order, Order.id == Review.order_id)
        .where(Review.published_at.is_(None), Order.status.in_(REVIEWABLE_STATUSES),
               done <= cutoff)
        .order_by(Review.order_id, Review.id)).all()
    count = 0
    by_order: dict[int, list[Review]] = {}
    for review in due:
        by_order.setdefault(review.order_id, []).append(review)
    for group in by_order.values():
        count += _publish(session, group, now)
    session.flush()
    return count


def _refresh_credibility(session: Session, org_ids, now: datetime | None) -> None:
    """Counted reviews are part of the credibility score (providers/credibility.py)."""
    from providers.credibility import recompute_many

    recompute_many(session, org_ids, now)


# --------------------------------------------------------------------------- aggregates

def refresh_product_rating(session: Session, product_id: int) -> None:
    """Recompute a listing's rating from its counted buyer reviews and queue it for search."""
    total, count = session.execute(
        select(func.coalesce(func.sum(Review.score_x100), 0), func.count(Review.id))
        .where(Review.product_id == product_id, Review.side == "buyer",
               counted_reviews_condition())).one()
    product = session.get(Product, product_id)
    if product is None:
        return
    product.rating_count = int(count)
    product.rating_x100 = ratio_x100(int(total), int(count)) if count else None
    search_outbox.enqueue(session, product_id, "rating")


@dataclass
class Dimension:
    name: str
    label: str
    label_zh: str
    average_x100: int | None

    @property
    def average(self) -> float | None:
        return self.average_x100 / 100 if self.average_x100 is not None else None


@dataclass
class Bucket:
    stars: int
    count: int
    percent: int


@dataclass
class RatingSummary:
    side: str
    count: int = 0
    average_x100: int | None = None
    dimensions: list[Dimension] = field(default_factory=list)
    distribution: list[Bucket] = field(default_factory=list)

    @property
    def average(self) -> float | None:
        return self.average_x100 / 100 if self.average_x100 is not None else None


def _scope(side: str, product_id: int | None, subject_org_id: int | None) -> list:
    conditions = [Review.side == side, counted_reviews_condition()]
    if product_id is not None:
        conditions.append(Review.product_id == product_id)
    if subject_org_id is not None:
        conditions.append(Review.subject_org_id == subject_org_id)
    return conditions


def rating_summary(session: Session, *, side: str = "buyer", product_id: int | None = None,
                   subject_org_id: int | None = None) -> RatingSummary:
    """Counted reviews of a listing or an organisation: the average, the average of each
    dimension and how many reviews fall on each whole star (5 to 1)."""
    dims = SIDE_DIMENSIONS[side]
    if side == "buyer" and product_id is not None and subject_org_id is None:
        listing = session.get(Product, product_id)  # usually already in the session
        if listing is not None and not listing.rating_count:
            # The listing's count of counted reviews is kept with every change of what
            # counts (refresh_product_rating): none, so nothing to add up.
            return _summary(side, 0, 0, [0] * len(dims), [0] * 5)
    bucket = (Review.score_x100 + 50) // 100
    row = session.execute(
        select(func.count(Review.id), func.coalesce(func.sum(Review.score_x100), 0),
               *(func.coalesce(func.sum(getattr(Review, d)), 0) for d in dims),
               *(func.coalesce(func.sum(case((bucket == stars, 1), else_=0)), 0)
                 for stars in (5, 4, 3, 2, 1)))
        .where(*_scope(side, product_id, subject_org_id))).one()
    count, total = int(row[0]), int(row[1])
    sums = [int(value) for value in row[2:2 + len(dims)]]
    buckets = [int(value) for value in row[2 + len(dims):]]
    return _summary(side, count, total, sums, buckets)


def _summary(side: str, count: int, total: int, sums: list[int],
             buckets: list[int]) -> RatingSummary:
    dims = SIDE_DIMENSIONS[side]
    summary = RatingSummary(side=side, count=count)
    summary.average_x100 = ratio_x100(total, count) if count else None
    summary.dimensions = [
        Dimension(name, *DIMENSION_LABELS[name], mean_x100(value, count) if count else None)
        for name, value in zip(dims, sums, strict=True)]
    summary.distribution = [
        Bucket(stars, n, round(100 * n / count) if count else 0)
        for stars, n in zip((5, 4, 3, 2, 1), buckets, strict=True)]
    return summary


def counted_reviews(session: Session, *, side: str = "buyer", product_id: int | None = None,
                    subject_org_id: int | None = None):
    """Statement of the counted reviews in scope, newest first (for ``paginate``)."""
    return (select(Review).where(*_scope(side, product_id, subject_org_id))
            .options(joinedload(Review.author_org), joinedload(Review.product))
            .order_by(Review.published_at.desc(), Review.id.desc()))


# --------------------------------------------------------------------------- reply

def reply_to_review(session: Session, review: Review, user: User, text: str | None,
                    *, now: datetime | None = None) -> Review:
    """The institution answers a published buyer review, once."""
    now = now or utcnow()
    if not can_reply_to_review(user, review):
        raise ReviewForbidden(_("Only members of the rated institution can reply to this "
                                "review."))
    if review.published_at is None:
        raise ReviewError(_("You can reply once the review is published."))
    if review.reply is not None:
        raise ReviewError(_("This review already has your reply; a reply cannot be changed."))
    body = (text or "").strip()
    if not body:
        raise ReviewInvalid({"reply": _("Write your reply first.")})
    if len(body) > MAX_REPLY:
        raise ReviewInvalid({"reply": _("Please keep the reply under %(max)s characters.",
                                        max=format(MAX_REPLY, ","))})
    result = session.execute(
        update(Review).where(Review.id == review.id, Review.reply.is_(None))
        .values(reply=body, replied_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        raise ReviewError(_("This review already has your reply; a reply cannot be changed."))
    set_committed_value(review, "reply", body)
    set_committed_value(review, "replied_at", now)
    order = session.get(Order, review.order_id)
    _notify_members(
        session, session.get(Organisation, review.author_org_id), "review_reply",
        lambda: _("Order %(number)s: the institution replied to your review",
                  number=order.number),
        lambda: body, _order_link(order, "buyer") + "#rating")
    session.flush()
    return review


# --------------------------------------------------------------------------- moderation

def hide_review(session: Session, review: Review, staff: User, reason: str | None,
                *, now: datetime | None = None) -> Review:
    """Staff hide a review from every public place and average, with a recorded reason."""
    now = now or utcnow()
    if not can_moderate_reviews(staff):
        raise ReviewForbidden(_("Only platform staff can hide reviews."))
    reason = (reason or "").strip()
    if not reason:
        raise ReviewInvalid({"reason": _("Give the reason for hiding this review.")})
    if len(reason) > MAX_REASON:
        raise ReviewInvalid({"reason": _("Please keep the reason under %(max)s characters.",
                                         max=format(MAX_REASON, ","))})
    if review.hidden_at is not None:
        raise ReviewError(_("This review is already hidden."))
    review.hidden_at, review.hidden_reason, review.hidden_by_id = now, reason, staff.id
    session.flush()
    audit.record(session, staff, "review.hide", review, reason, order_id=review.order_id,
                 side=review.side)
    if review.side == "buyer" and review.product_id:
        refresh_product_rating(session, review.product_id)
    _refresh_credibility(session, {review.subject_org_id}, now)
    order = session.get(Order, review.order_id)
    party = review.side
    _notify_members(
        session, session.get(Organisation, review.author_org_id), "review_hidden",
        lambda: _("Order %(number)s: your review was hidden by platform staff",
                  number=order.number),
        lambda: _("Reason: %(reason)s", reason=reason), _order_link(order, party) + "#rating")
    session.flush()
    return review


def unhide_review(session: Session, review: Review, staff: User, reason: str | None = "",
                  *, now: datetime | None = None) -> Review:
    """Staff show a hidden review again; the audit log keeps why it was hidden."""
    if not can_moderate_reviews(staff):
        raise ReviewForbidden(_("Only platform staff can show hidden reviews again."))
    if review.hidden_at is None:
        raise ReviewError(_("This review is not hidden."))
    reason = (reason or "").strip()[:MAX_REASON] or None
    audit.record(session, staff, "review.unhide", review, reason, order_id=review.order_id,
                 side=review.side, was_hidden_for=review.hidden_reason)
    review.hidden_at, review.hidden_reason, review.hidden_by_id = None, None, None
    session.flush()
    if review.side == "buyer" and review.product_id:
        refresh_product_rating(session, review.product_id)
    _refresh_credibility(session, {review.subject_org_id}, now)
    session.flush()
    return review


def staff_reviews(*, side: str | None = None, state: str | None = None,
                  subject_org_id: int | None = None, order_number: str | None = None):
    """Statement of reviews for the staff list: every review, newest first, filtered."""
    stmt = (select(Review).join(Order, Order.id == Review.order_id)
            .options(joinedload(Review.author_org), joinedload(Review.subject_org),
                     joinedload(Review.product)))
    if side in ("buyer", "provider"):
        stmt = stmt.where(Review.side == side)
    if state == "hidden":
        stmt = stmt.where(Review.hidden_at.is_not(None))
    elif state == "blind":
        stmt = stmt.where(Review.published_at.is_(None))
    elif state == "published":
        stmt = stmt.where(counted_reviews_condition())
    if subject_org_id:
        stmt = stmt.where(Review.subject_org_id == subject_org_id)
    if order_number:
        stmt = stmt.where(Order.number == order_number.strip())
    return stmt.order_by(Review.created_at.desc(), Review.id.desc())
