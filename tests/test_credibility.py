"""Credibility scores for both sides (providers/credibility.py).

The table of cases is computed BY HAND in the comments from the rule in the module docstring
(not by calling the code), so a change of the rule has to be made in both places on purpose.
"""

from datetime import UTC, datetime, timedelta

import factories
import order_support as osup
import pytest
from sqlalchemy import func, select

from catalog.models import Review, SearchOutbox
from marketplace.models import Organisation
from orders import workflow
from providers import credibility
from providers.credibility import CredibilityInputs, score
from providers.models import CredibilitySnapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

# --------------------------------------------------------------------------- hand-computed table
#
# Parts: verification 15, rating 25, on time 20, disputes 15, cancellations 10, response 5,
# history 10; each part rounded half up to 0.1, the score is the sum rounded half up.

CASES = [
    # New verified institution, nothing else:
    #   verification 15; rating (5×350 + 0)/5 = 350 → 25 × 250/400 = 15.625 → 15.6;
    #   on time (0+3)/(0+4) = 0.75 → 20 × (0.75−0.5)/0.5 = 10.0; disputes 0 → 15;
    #   cancellations 0 → 10; response (0 + 3×24)/3 = 24 h → 5 × (1 − 24/72) = 3.33 → 3.3;
    #   history 0.  Total 68.9 → 69 → B.
    ("new provider", CredibilityInputs(kind="provider", verification_status="verified"),
     69, "B", [15.0, 15.6, 10.0, 15.0, 10.0, 3.3, 0.0]),
    # Same but not verified: 0 + 15.6 + 10 + 15 + 10 + 3.3 + 0 = 53.9 → 54 → C.
    ("new unverified provider", CredibilityInputs(kind="provider"),
     54, "C", [0.0, 15.6, 10.0, 15.0, 10.0, 3.3, 0.0]),
    # Excellent: 30 reviews averaging 4.8 (sum 14400), 24 of 24 on time, 25 accepted,
    # 26 paid with 1 declined, 25 acceptances in 100 h total, 24 completed, 800 days old.
    #   rating (1750 + 14400)/35 = 461.43 → 25 × 361.43/400 = 22.59 → 22.6
    #   on time (24+3)/(24+4) = 0.9643 → 20 × 0.4643/0.5 = 18.57 → 18.6
    #   disputes 15; cancellations 1/(26+5) = 0.03226 → 10 × (1 − 0.1075) = 8.92 → 8.9
    #   response (100 + 72)/(25+3) = 6.143 h → 5 × (1 − 6.143/72) = 4.57 → 4.6
    #   history 5 × min(1, 24/20) + 5 × min(1, 800/730) = 10
    #   Total 15 + 22.6 + 18.6 + 15 + 8.9 + 4.6 + 10 = 94.7 → 95 → AAA.
    ("excellent history", CredibilityInputs(
        kind="provider", verification_status="verified", age_days=800, reviews=30,
        review_sum_x100=14400, timed=24, on_time=24, accepted=25, paid=26, cancelled=1,
        responses=25, response_hours=100.0, completed=24),
     95, "AAA", [15.0, 22.6, 18.6, 15.0, 8.9, 4.6, 10.0]),
    # Many disputes: 10 accepted orders, 4 lost, 1 partly lost, 1 open; 10 reviews at 2.5★;
    # 3 of 4 on time; 10 paid, none cancelled; 10 acceptances in 240 h; 4 completed; 365 days.
    #   rating (1750 + 2500)/15 = 283.33 → 25 × 183.33/400 = 11.46 → 11.5
    #   on time (3+3)/(4+4) = 0.75 → 10.0
    #   disputes (4 + 0.5 + 0.5)/(10+5) = 0.333 ≥ 0.2 → 0.0
    #   cancellations 10; response (240 + 72)/13 = 24 h → 3.3
    #   history 5 × 4/20 + 5 × 365/730 = 1 + 2.5 = 3.5
    #   Total 15 + 11.5 + 10 + 0 + 10 + 3.3 + 3.5 = 53.3 → 53 → C.
    ("many disputes", CredibilityInputs(
        kind="provider", verification_status="verified", age_days=365, reviews=10,
        review_sum_x100=2500, timed=4, on_time=3, accepted=10, disputes_lost=4,
        disputes_partly=1, disputes_open=1, paid=10, responses=10, response_hours=240.0,
        completed=4),
     53, "C", [15.0, 11.5, 10.0, 0.0, 10.0, 3.3, 3.5]),
    # Late deliveries: 6 of 20 on time, 12 reviews averaging 3.2 (sum 3840), 20 accepted and
    # paid, none cancelled, 20 acceptances in 480 h, 20 completed, 730 days.
    #   rating (1750 + 3840)/17 = 328.82 → 25 × 228.82/400 = 14.30 → 14.3
    #   on time (6+3)/(20+4) = 0.375 ≤ 0.5 → 0.0
    #   disputes 15; cancellations 10; response (480 + 72)/23 = 24 h → 3.3; history 10
    #   Total 15 + 14.3 + 0 + 15 + 10 + 3.3 + 10 = 67.6 → 68 → B.
    ("late deliveries", CredibilityInputs(
        kind="provider", verification_status="verified", age_days=730, reviews=12,
        review_sum_x100=3840, timed=20, on_time=6, accepted=20, paid=20, responses=20,
        response_hours=480.0, completed=20),
     68, "B", [15.0, 14.3, 0.0, 15.0, 10.0, 3.3, 10.0]),
    # New enterprise, registered with a credit code, not verified by staff:
    #   verification 10; rating 15.6; on time 10.0; disputes 15; cancellations 10;
    #   response (0 + 3×48)/3 = 48 h → 5 × (1 − 48/168) = 3.571 → 3.6; history 0.
    #   Total 64.2 → 64 → B.
    ("new enterprise", CredibilityInputs(kind="enterprise", has_credit_code=True),
     64, "B", [10.0, 15.6, 10.0, 15.0, 10.0, 3.6, 0.0]),
    # Enterprise with cancellations: verified, 400 days, 4 reviews at 4.0 (sum 1600), 10 of 12
    # paid on time, 6 accepted, 12 paid of which 6 cancelled before acceptance, 6 deliveries
    # answered in 144 h in all, 6 completed.
    #   rating (1750 + 1600)/9 = 372.22 → 25 × 272.22/400 = 17.01 → 17.0
    #   on time (10+3)/(12+4) = 0.8125 → 20 × 0.3125/0.5 = 12.5
    #   disputes 15; cancellations 6/(12+5) = 0.353 ≥ 0.3 → 0.0
    #   response (144 + 144)/(6+3) = 32 h → 5 × (1 − 32/168) = 4.05 → 4.0
    #   history 5 × 6/20 + 5 × 400/730 = 1.5 + 2.74 = 4.24 → 4.2
    #   Total 15 + 17 + 12.5 + 15 + 0 + 4 + 4.2 = 67.7 → 68 → B.
    ("enterprise with cancellations", CredibilityInputs(
        kind="enterprise", verification_status="verified", has_credit_code=True, age_days=400,
        reviews=4, review_sum_x100=1600, timed=12, on_time=10, accepted=6, paid=12,
        cancelled=6, responses=6, response_hours=144.0, completed=6),
     68, "B", [15.0, 17.0, 12.5, 15.0, 0.0, 4.0, 4.2]),
    # Suspended institution with the excellent record: verification drops to 0.
    #   94.7 − 15 = 79.7 → 80 → AA.
    ("suspended excellent provider", CredibilityInputs(
        kind="provider", verification_status="verified", suspended=True, age_days=800,
        reviews=30, review_sum_x100=14400, timed=24, on_time=24, accepted=25, paid=26,
        cancelled=1, responses=25, response_hours=100.0, completed=24),
     80, "AA", [0.0, 22.6, 18.6, 15.0, 8.9, 4.6, 10.0]),
]


@pytest.mark.parametrize(("name", "inputs", "expected", "level", "points"), CASES,
                         ids=[case[0] for case in CASES])
def test_hand_computed_cases(name, inputs, expected, level, points):
    result = score(inputs)
    assert [part.points for part in result.parts] == points
    assert result.score == expected
    assert result.level == level
    assert [part.key for part in result.parts] == list(credibility.WEIGHTS)
    assert [part.max_points for part in result.parts] == list(credibility.WEIGHTS.values())


def test_breakdown_sentences_name_the_figures():
    result = score(CredibilityInputs(kind="provider", verification_status="verified",
                                     timed=14, on_time=12, accepted=14, disputes_lost=1,
                                     paid=15, cancelled=1, reviews=3, review_sum_x100=1350))
    parts = {part.key: part for part in result.parts}
    assert parts["on_time"].explanation == "12 of 14 completed orders delivered by the due date."
    assert parts["on_time"].figure == "12 / 14"
    assert "1 lost (full refund)" in parts["disputes"].explanation
    assert "4.50★ average from 3 published reviews" in parts["rating"].explanation
    assert parts["cancellations"].explanation == (
        "Declined or cancelled after acceptance: 1 of 15 paid orders.")
    new = {p.key: p for p in score(CredibilityInputs(kind="enterprise")).parts}
    assert "neutral starting point" in new["rating"].explanation
    assert "No paid orders yet" in new["on_time"].explanation
    assert result.breakdown()["parts"][2]["explanation"] == parts["on_time"].explanation


def test_levels_at_their_boundaries():
    assert [credibility.level_for(s) for s in (100, 90, 89, 80, 79, 70, 69, 55, 54, 0)] == [
        "AAA", "AAA", "AA", "AA", "A", "A", "B", "B", "C", "C"]
    assert credibility.level_for(None) is None


def test_every_part_moves_the_right_way():
    base = dict(kind="provider", verification_status="verified", age_days=100, reviews=5,
                review_sum_x100=2000, timed=10, on_time=8, accepted=10, paid=10, cancelled=1,
                responses=10, response_hours=200.0, completed=8)
    start = score(CredibilityInputs(**base)).total
    worse = [dict(review_sum_x100=1000), dict(on_time=5), dict(disputes_lost=2),
             dict(cancelled=3), dict(response_hours=500.0), dict(verification_status="pending")]
    better = [dict(review_sum_x100=2400), dict(on_time=10), dict(cancelled=0),
              dict(response_hours=20.0), dict(completed=16), dict(age_days=500)]
    for change in worse:
        assert score(CredibilityInputs(**{**base, **change})).total < start, change
    for change in better:
        assert score(CredibilityInputs(**{**base, **change})).total > start, change


# --------------------------------------------------------------------------- gathering

def _order(session, p, status, **fields):
    return osup.order(session, p, status, **fields)


def _completed(session, p, *, due, delivered, paid=None, accepted=None, completed=None):
    paid = paid or due - 10 * DAY
    return _order(session, p, "completed", paid_at=paid, accepted_at=accepted or paid + 6 * HOUR,
                  due_at=due, delivered_at=delivered,
                  completed_at=completed or delivered + DAY, payment_due_at=paid + DAY)


def _review(session, order, side, subject, score_x100, *, published=True, hidden=False):
    author = order.buyer_org_id if side == "buyer" else order.provider_org_id
    review = Review(order_id=order.id, side=side, author_org_id=author,
                    subject_org_id=subject.id, score_x100=score_x100,
                    published_at=NOW - DAY if published else None,
                    hidden_at=NOW if hidden else None)
    session.add(review)
    session.flush()
    return review


def test_gathering_counts_what_the_orders_say(session):
    p = osup.parties(session)
    p.provider_org.created_at = NOW - 100 * DAY
    p.buyer_org.created_at = NOW - 10 * DAY
    # Two completed: one on time (delivered 1 day early), one late; answered in 24 h each.
    on_time = _completed(session, p, due=NOW - 20 * DAY, delivered=NOW - 21 * DAY)
    late = _completed(session, p, due=NOW - 20 * DAY, delivered=NOW - 18 * DAY)
    # A declined order (paid, never accepted) and one cancelled after acceptance.
    _order(session, p, "declined", paid_at=NOW - 5 * DAY, payment_due_at=NOW - 4 * DAY)
    _order(session, p, "cancelled", paid_at=NOW - 5 * DAY, accepted_at=NOW - 5 * DAY + 2 * HOUR,
           payment_due_at=NOW - 4 * DAY)
    # The buyer cancelled after paying, before acceptance.
    _order(session, p, "cancelled", paid_at=NOW - 3 * DAY, payment_due_at=NOW - 2 * DAY)
    # Disputes: one lost by the provider, one lost by the buyer, one open.
    _order(session, p, "resolved", paid_at=NOW - 9 * DAY, accepted_at=NOW - 9 * DAY + 4 * HOUR,
           ruling="full", payment_due_at=NOW - 8 * DAY)
    _order(session, p, "resolved", paid_at=NOW - 9 * DAY, accepted_at=NOW - 9 * DAY + 4 * HOUR,
           ruling="none", payment_due_at=NOW - 8 * DAY)
    _order(session, p, "disputed", paid_at=NOW - 9 * DAY, accepted_at=NOW - 9 * DAY + 4 * HOUR,
           payment_due_at=NOW - 8 * DAY)
    # Unpaid: one lapsed (cancelled by the timer after the window), one the buyer dropped.
    _order(session, p, "cancelled", payment_due_at=NOW - 2 * DAY, closed_at=NOW - DAY)
    _order(session, p, "cancelled", payment_due_at=NOW + 2 * DAY, closed_at=NOW - DAY)
    # Reviews: two counted about the provider, one hidden, one not yet published.
    _review(session, on_time, "buyer", p.provider_org, 500)
    _review(session, late, "buyer", p.provider_org, 300)
    hidden_order = _completed(session, p, due=NOW - 2 * DAY, delivered=NOW - 3 * DAY)
    _review(session, hidden_order, "buyer", p.provider_org, 100, hidden=True)
    _review(session, hidden_order, "provider", p.buyer_org, 400, published=False)
    session.commit()

    gathered = credibility.gather(session, NOW)
    provider = gathered[p.provider_org.id][1]
    assert (provider.timed, provider.on_time) == (3, 2)
    assert provider.accepted == 7  # 3 completed + cancelled after acceptance + 3 disputes
    assert (provider.disputes_lost, provider.disputes_partly, provider.disputes_open) == (1, 0, 1)
    assert provider.paid == 9
    assert provider.cancelled == 2  # declined + cancelled after acceptance
    assert provider.responses == 7
    assert provider.response_hours == pytest.approx(3 * 6 + 2 + 3 * 4)
    assert provider.completed == 3
    assert (provider.reviews, provider.review_sum_x100) == (2, 800)
    assert provider.age_days == 100

    buyer = gathered[p.buyer_org.id][1]
    assert buyer.timed == 10  # 9 paid + 1 lapsed; the dropped one has no payment outcome
    assert buyer.on_time == 9
    assert buyer.disputes_lost == 1  # ruling "none": the buyer's dispute was rejected
    assert buyer.cancelled == 1
    assert buyer.responses == 3 and buyer.response_hours == pytest.approx(3 * 24)
    assert (buyer.reviews, buyer.review_sum_x100) == (0, 0)  # not published yet
    assert buyer.age_days == 10


def test_bulk_and_single_organisation_gathering_agree(session):
    groups = [osup.parties(session) for _ in range(3)]
    # Cross orders: every buyer with every provider, in different states.
    statuses = ["completed", "declined", "resolved", "disputed", "cancelled", "paid"]
    n = 0
    for buyer in groups:
        for seller in groups:
            pair = osup.Parties(buyer.buyer_org, buyer.buyer, seller.provider_org,
                                seller.provider, buyer.staff, buyer.outsider)
            for status in statuses[n % 3: n % 3 + 4]:
                order = _order(session, pair, status, paid_at=NOW - (n + 3) * DAY,
                               accepted_at=NOW - (n + 3) * DAY + (n + 1) * HOUR,
                               due_at=NOW - n * DAY, delivered_at=NOW - (n + 1) * DAY,
                               completed_at=NOW - n * DAY if status == "completed" else None,
                               ruling="partial" if status == "resolved" else None,
                               payment_due_at=NOW - (n + 2) * DAY)
                if status == "completed":
                    _review(session, order, "buyer", seller.provider_org, 200 + 50 * n % 300)
                    _review(session, order, "provider", buyer.buyer_org, 450)
                n += 1
    session.commit()
    bulk = credibility.gather(session, NOW)
    assert len(bulk) == session.scalar(select(func.count()).select_from(Organisation))
    for org_id, (_row, inputs) in bulk.items():
        single = credibility.gather(session, NOW, [org_id])
        assert single[org_id][1] == inputs
    assert any(inputs.completed for _row, inputs in bulk.values())


# --------------------------------------------------------------------------- through the workflow

def _score_of(session, org) -> int:
    session.expire(org)
    return org.credibility_score


def test_the_stored_score_follows_acceptance_so_badge_and_breakdown_agree(session):
    """Accepting changes the provider's response time; the badge (the stored score) must move
    with it once the after-commit job ran, not wait for the nightly recompute while the
    breakdown already shows the new figure."""
    p = osup.parties(session)
    slow = [_order(session, p, "paid", paid_at=NOW - 71 * HOUR) for _ in range(2)]
    credibility.recompute(session, p.provider_org, NOW)
    session.commit()
    before = _score_of(session, p.provider_org)

    for order in slow:
        workflow.transition(session, order, "accept", p.provider, now=NOW)
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    stored = _score_of(session, p.provider_org)
    assert stored < before
    assert stored == credibility.current(session, p.provider_org, NOW).score


def test_a_late_completion_lowers_and_an_on_time_one_raises_the_provider_score(session):
    p = osup.parties(session)
    late = _order(session, p, "delivered", paid_at=NOW - 10 * DAY,
                  accepted_at=NOW - 10 * DAY + HOUR, due_at=NOW - 3 * DAY,
                  delivered_at=NOW - DAY)
    punctual = _order(session, p, "delivered", paid_at=NOW - 10 * DAY,
                      accepted_at=NOW - 10 * DAY + HOUR, due_at=NOW + 3 * DAY,
                      delivered_at=NOW - DAY)
    credibility.recompute(session, p.provider_org, NOW)
    session.commit()
    before = _score_of(session, p.provider_org)

    workflow.transition(session, late, "complete", p.buyer, now=NOW)
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    after_late = _score_of(session, p.provider_org)
    assert after_late < before
    on_time = {part.key: part for part in credibility.current(session, p.provider_org,
                                                               NOW).parts}["on_time"]
    assert on_time.explanation == "0 of 1 completed order delivered by the due date."

    workflow.transition(session, punctual, "complete", p.buyer, now=NOW)
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    assert _score_of(session, p.provider_org) > after_late
    # Each change left a snapshot for the chart.
    snapshots = session.scalars(select(CredibilitySnapshot.score).where(
        CredibilitySnapshot.organisation_id == p.provider_org.id)
        .order_by(CredibilitySnapshot.id)).all()
    assert snapshots == [before, after_late, _score_of(session, p.provider_org)]


def test_a_lost_dispute_lowers_the_provider_and_a_rejected_one_the_buyer(session):
    p = osup.parties(session)
    fields = dict(paid_at=NOW - 5 * DAY, accepted_at=NOW - 5 * DAY + HOUR, due_at=NOW + DAY)
    first = _order(session, p, "in_progress", **fields)
    second = _order(session, p, "in_progress", **fields)
    credibility.recompute_many(session, [p.provider_org.id, p.buyer_org.id], NOW)
    session.commit()
    provider_start, buyer_start = (_score_of(session, p.provider_org),
                                   _score_of(session, p.buyer_org))

    workflow.transition(session, first, "dispute", p.buyer, note="Nothing delivered.", now=NOW)
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    provider_open = _score_of(session, p.provider_org)
    assert provider_open < provider_start  # an open dispute counts half against the provider
    assert _score_of(session, p.buyer_org) == buyer_start  # opening one is the buyer's right

    workflow.transition(session, first, "resolve", p.staff, note="Work not done.", now=NOW,
                        changes={"ruling": "full", "ruling_refund": first.subtotal})
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    provider_lost = _score_of(session, p.provider_org)
    assert provider_lost < provider_open
    assert _score_of(session, p.buyer_org) == buyer_start

    workflow.transition(session, second, "dispute", p.buyer, note="Late.", now=NOW)
    workflow.transition(session, second, "resolve", p.staff, note="The work was fine.",
                        now=NOW, changes={"ruling": "none", "ruling_refund": 0})
    session.commit()
    osup.drain_credibility(session, NOW)  # the after-commit job
    assert _score_of(session, p.buyer_org) < buyer_start
    disputes = {part.key: part for part in credibility.current(session, p.buyer_org,
                                                                NOW).parts}["disputes"]
    assert "1 rejected by staff" in disputes.explanation


# --------------------------------------------------------------------------- storing

def test_a_changed_provider_score_queues_its_published_listings(session):
    org = factories.provider(session)
    shown = factories.product(session, org)
    factories.product(session, org, status="draft")
    session.commit()
    credibility.recompute(session, org, NOW)
    session.commit()
    queued = session.scalars(select(SearchOutbox.product_id).where(
        SearchOutbox.reason == "credibility_changed")).all()
    assert queued == [shown.id]
    assert (org.credibility_score, org.credibility_level) == (69, "B")
    assert org.credibility_updated_at == NOW

    credibility.recompute(session, org, NOW + HOUR)  # nothing changed: nothing queued
    session.commit()
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == 1
    assert org.credibility_updated_at == NOW

    # A listing another service queued in the same transaction is not queued twice.
    from catalog.search import outbox as search_outbox

    search_outbox.enqueue(session, shown.id, "listing_changed")
    org.verification_status = "pending"
    credibility.recompute(session, org, NOW + HOUR)
    session.commit()
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == 2
    assert org.credibility_score == 59  # 69 with 5 instead of 15 verification points


def test_recompute_all_is_idempotent(session):
    p = osup.parties(session)
    _completed(session, p, due=NOW - 5 * DAY, delivered=NOW - 6 * DAY)
    factories.product(session, p.provider_org)
    session.commit()
    orgs = session.scalar(select(func.count()).select_from(Organisation))

    first = credibility.recompute_all(session, NOW)
    session.commit()
    assert (first.organisations, first.changed, first.snapshots) == (orgs, orgs, orgs)
    assert first.listings_queued == 2  # the order's listing and the other one
    outbox = session.scalar(select(func.count()).select_from(SearchOutbox))

    again = credibility.recompute_all(session, NOW)
    session.commit()
    assert (again.changed, again.snapshots, again.listings_queued) == (0, 0, 0)
    assert session.scalar(select(func.count()).select_from(CredibilitySnapshot)) == orgs
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == outbox

    # A late completion later: only the two parties change.
    _completed(session, p, due=NOW - 5 * DAY, delivered=NOW - DAY, completed=NOW)
    session.commit()
    third = credibility.recompute_all(session, NOW + DAY)
    session.commit()
    assert third.changed <= 2 and third.snapshots == third.changed
    assert str(third).startswith(f"Credibility recomputed for {orgs} organisations")


def test_recompute_command(app, session):
    org = factories.provider(session)
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["recompute-credibility", "--now", "2026-11-20T12:00"])
    assert result.exit_code == 0, result.output
    assert "Credibility recomputed for 1 organisations: 1 changed" in result.output
    result = runner.invoke(args=["recompute-credibility", "--now", "2026-11-20T12:00"])
    assert "0 changed, 0 snapshots" in result.output
    session.expire_all()
    assert session.get(Organisation, org.id).credibility_level == "B"
    bad = runner.invoke(args=["recompute-credibility", "--now", "yesterday"])
    assert bad.exit_code != 0 and "ISO time" in bad.output


def test_trend_compares_with_the_score_thirty_days_ago(session):
    old, young, unscored = (factories.provider(session) for _ in range(3))
    old.credibility_score, young.credibility_score = 75, 66
    for org, days, value in [(old, 45, 60), (old, 31, 62), (old, 10, 70), (young, 5, 70)]:
        session.add(CredibilitySnapshot(organisation_id=org.id, score=value, level="B",
                                        breakdown={}, computed_at=NOW - days * DAY))
    session.commit()
    trends = credibility.trends(session, [old.id, young.id, unscored.id], NOW)
    assert trends == {old.id: 75 - 62, young.id: 66 - 70, unscored.id: None}


def test_low_credibility_alerts(session):
    low = factories.provider(session, credibility_score=40, credibility_level="C")
    lower = factories.enterprise(session, credibility_score=30, credibility_level="C")
    factories.provider(session, credibility_score=54, credibility_level="C", suspended=True)
    factories.provider(session, credibility_score=55, credibility_level="B")
    session.commit()
    alerts = credibility.low_credibility_alerts(session, 10, now=NOW)
    assert [a.organisation.id for a in alerts] == [lower.id, low.id]
    assert [a.score for a in alerts] == [30, 40]
    assert len(credibility.low_credibility_alerts(session, 1, now=NOW)) == 1
    assert credibility.low_credibility_alerts(session, 10, threshold=35, now=NOW)[0].score == 30


# --------------------------------------------------------------------------- search

@pytest.fixture
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def test_search_filters_and_sorts_by_credibility(session, client, index_dir):
    from catalog.search.index import reindex_all
    from catalog.search.query import SearchParams, search

    trusted = factories.provider(session, name="Trusted Patent Agency",
                                 credibility_score=92, credibility_level="AAA")
    decent = factories.provider(session, name="Decent Patent Agency",
                                credibility_score=72, credibility_level="A")
    weak = factories.provider(session, name="Weak Patent Agency",
                              credibility_score=40, credibility_level="C")
    unscored = factories.provider(session, name="Brand New Patent Agency")
    listings = {org.id: factories.product(session, org, title=f"Patent filing by {org.name}")
                for org in (weak, unscored, decent, trusted)}
    session.commit()
    assert reindex_all(session, index_dir) == 4

    page = search(session, index_dir, SearchParams(sort="credibility"), page_size=10)
    assert [hit.product.id for hit in page.hits] == [
        listings[trusted.id].id, listings[decent.id].id, listings[weak.id].id,
        listings[unscored.id].id]
    page = search(session, index_dir, SearchParams(q="patent", min_credibility=70,
                                                   sort="credibility"), page_size=10)
    assert [hit.product.id for hit in page.hits] == [listings[trusted.id].id,
                                                    listings[decent.id].id]
    counts = {value.value: value.count for value in page.facets.credibility}
    assert counts == {"90": 1, "80": 1, "70": 2, "55": 2}

    html = client.get("/search?q=patent&cred=80&sort=credibility").get_data(as_text=True)
    assert "Trusted Patent Agency" in html and "Decent Patent Agency" not in html
    assert 'data-level="AAA"' in html and "Credibility AA &amp; up" in html
    assert 'data-facet="cred"' in html
    assert "Most credible" in html
    # An unknown floor is ignored rather than failing.
    assert SearchParams.from_args({"cred": "63"}).min_credibility is None


def test_a_score_change_reaches_the_search_index_through_the_outbox(session, index_dir):
    from catalog.search.index import reindex_all
    from catalog.search.query import SearchParams, search
    from catalog.search.worker import drain_outbox

    org = factories.provider(session)
    listing = factories.product(session, org, title="Trademark registration")
    session.commit()
    reindex_all(session, index_dir)
    assert search(session, index_dir, SearchParams(min_credibility=55)).total == 0
    credibility.recompute(session, org, NOW)  # 69, B
    session.commit()
    drain_outbox(session, index_dir)
    page = search(session, index_dir, SearchParams(min_credibility=55))
    assert [hit.product.id for hit in page.hits] == [listing.id]


# --------------------------------------------------------------------------- pages

def test_badges_and_breakdown_on_public_pages(session, client):
    org = factories.provider(session, name="Yuanhe Patent Agency")
    product = factories.product(session, org, title="Invention patent filing")
    session.commit()
    credibility.recompute(session, org, NOW - 40 * DAY)
    org.verification_status = "pending"  # pretend it changed later: a second snapshot
    credibility.recompute(session, org, NOW - 5 * DAY)
    org.verification_status = "verified"
    credibility.recompute(session, org, NOW - DAY)
    session.commit()

    profile = client.get(f"/institutions/{org.id}").get_data(as_text=True)
    assert 'data-testid="credibility-badge" data-level="B" data-score="69"' in profile
    assert 'data-testid="credibility-breakdown"' in profile
    assert "No completed orders with a due date yet" in profile
    assert 'type="application/json" id="credibility-chart-' in profile
    assert "js/credibility.js" in profile and "<script>" not in profile
    product_page = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-level="B"' in product_page
    assert f"/institutions/{org.id}#credibility" in product_page
    category = client.get(f"/c/{product.category.slug}").get_data(as_text=True)
    assert 'data-testid="credibility-badge" data-level="B"' in category
    explained = client.get("/credibility")
    assert explained.status_code == 200
    assert "new verified institution starts at 69 (B)" in explained.get_data(as_text=True)


def test_enterprise_sees_its_own_breakdown_and_providers_see_the_buyer_level(session, client):
    p = osup.parties(session)
    order = _order(session, p, "paid", paid_at=NOW - DAY, payment_due_at=NOW + DAY)
    credibility.recompute_many(session, [p.buyer_org.id, p.provider_org.id], NOW)
    session.commit()
    level = p.buyer_org.credibility_level

    osup.login(client, p.buyer)
    account = client.get("/account").get_data(as_text=True)
    assert "Your credibility" in account
    assert "paid within the payment window" in account
    osup.logout(client)

    osup.login(client, p.provider)
    listing = client.get("/provider/orders").get_data(as_text=True)
    assert f'data-testid="credibility-badge" data-level="{level}"' in listing
    detail = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    assert f'data-level="{level}"' in detail and "buyer credibility" in detail


# --------------------------------------------------------------------------- reviews

def test_published_and_hidden_reviews_move_the_score(session):
    from catalog import reviews

    p = osup.parties(session)
    order = _order(session, p, "completed", completed_at=NOW - DAY, paid_at=NOW - 5 * DAY,
                   accepted_at=NOW - 5 * DAY + HOUR, due_at=NOW, delivered_at=NOW - 2 * DAY)
    credibility.recompute_many(session, [p.provider_org.id, p.buyer_org.id], NOW)
    session.commit()
    provider_start, buyer_start = (_score_of(session, p.provider_org),
                                   _score_of(session, p.buyer_org))

    poor = {"quality": "1", "timeliness": "1", "communication": "2", "value": "1"}
    review = reviews.submit_review(session, order, p.buyer, poor, "Late and sloppy.",
                                   now=NOW, blind_days=14)
    assert _score_of(session, p.provider_org) == provider_start  # still blind: not counted
    reviews.submit_review(session, order, p.provider,
                          {"clarity": "5", "cooperation": "5", "payment": "5"}, now=NOW,
                          blind_days=14)
    assert _score_of(session, p.provider_org) < provider_start  # both published
    assert _score_of(session, p.buyer_org) > buyer_start

    reviews.hide_review(session, review, p.staff, "Abusive language.", now=NOW)
    assert _score_of(session, p.provider_org) == provider_start  # hidden: not counted
    reviews.unhide_review(session, review, p.staff, "Reviewed again.", now=NOW)
    assert _score_of(session, p.provider_org) < provider_start
