"""Two-way ratings: who may rate, once per side, double-blind publication (also by the timer
job with a frozen clock), one reply, staff hiding with a reason, averages, distribution,
pagination, and search by rating."""

import re
from datetime import UTC, datetime, timedelta

import factories
import order_support as support
import pytest
from conftest import post_form
from sqlalchemy import func, select

from catalog import reviews
from catalog.models import Product, Review, SearchOutbox
from catalog.search.index import reindex_all
from catalog.search.query import SearchParams, search
from catalog.search.worker import drain_outbox
from marketplace.models import AuditLog
from orders import timers

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = {"quality": "5", "timeliness": "4", "communication": "5", "value": "4"}
FAIR = {"clarity": "4", "cooperation": "3", "payment": "5"}


@pytest.fixture
def p(session):
    parties = support.parties(session)
    session.commit()
    return parties


def completed(session, p, status="completed", when=None, **fields):
    when = when or datetime.now(UTC) - timedelta(days=1)
    order = support.order(session, p, status, completed_at=when if status != "resolved" else None,
                          closed_at=when if status in ("resolved", "settled") else None,
                          **fields)
    session.commit()
    return order


def review_count(session) -> int:
    return session.scalar(select(func.count(Review.id)))


def rate(client, order, data):
    return post_form(client, f"/orders/{order.id}/review", data)


def write(session, order, user, scores, body="", now=None):
    review = reviews.submit_review(session, order, user, scores, body, now=now or T0,
                                   blind_days=14)
    session.commit()  # services flush; here the test is the caller
    return review


# --------------------------------------------------------------------------- rules

def test_scores_are_means_rounded_half_up():
    assert reviews.mean_x100(17, 4) == 425  # 4.25
    assert reviews.mean_x100(13, 3) == 433  # 4.333...
    assert reviews.mean_x100(14, 3) == 467  # 4.666...
    assert reviews.ratio_x100(825, 2) == 413  # 4.125 -> 4.13
    assert reviews.ratio_x100(300 + 449, 2) == 375  # 3.745 -> 3.75
    assert [reviews.stars_of(x) for x in (100, 149, 150, 349, 350, 449, 450, 500)] == [
        1, 1, 2, 3, 4, 4, 5, 5]


def test_buyer_review_stores_scores_subject_and_product(session, client, p):
    order = completed(session, p)
    support.login(client, p.buyer)
    response = rate(client, order, {**GOOD, "body": "Fast and careful drafting."})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/orders/{order.id}#rating")
    review = session.scalar(select(Review))
    assert (review.side, review.author_org_id, review.author_user_id, review.subject_org_id,
            review.product_id) == ("buyer", p.buyer_org.id, p.buyer.id, p.provider_org.id,
                                   order.product_id)
    assert (review.quality, review.timeliness, review.communication, review.value) == (5, 4, 5, 4)
    assert review.clarity is None and review.score_x100 == 450
    assert review.published_at is None  # blind until the institution rates too
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Fast and careful drafting." in page and "Not published yet" in page


@pytest.mark.parametrize("who", ["outsider", "staff", "other_provider", "other_member_role"])
def test_only_parties_may_review(session, client, p, who):
    order = completed(session, p)
    if who == "other_provider":
        user = factories.user(session, factories.provider(session))
    elif who == "other_member_role":  # a staff account is never a party, even by org id
        user = p.staff
    else:
        user = p.actor(who)
    session.commit()
    support.login(client, user)
    assert client.get(f"/orders/{order.id}/review").status_code == 403
    response = rate(client, order, GOOD)
    assert response.status_code == 403
    assert "Only members of the buying enterprise or of the institution" in response.get_data(
        as_text=True)
    assert review_count(session) == 0


def test_visitor_is_sent_to_log_in(session, client, p):
    order = completed(session, p)
    response = rate(client, order, GOOD)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert review_count(session) == 0


@pytest.mark.parametrize("status", ["paid", "in_progress", "delivered", "disputed",
                                    "cancelled", "declined"])
def test_only_completed_orders_can_be_rated(session, client, p, status):
    order = support.order(session, p, status)
    session.commit()
    support.login(client, p.buyer)
    response = rate(client, order, GOOD)
    assert response.status_code == 409
    assert "can be rated once it is completed" in response.get_data(as_text=True)
    assert review_count(session) == 0
    assert 'data-testid="rate-order"' not in client.get(f"/orders/{order.id}").get_data(
        as_text=True)


@pytest.mark.parametrize("status", ["completed", "settled", "resolved"])
def test_completed_settled_and_resolved_orders_can_be_rated(session, p, status):
    order = completed(session, p, status, when=T0)
    review = write(session, order, p.provider, FAIR, now=T0 + timedelta(days=1))
    assert review.side == "provider" and review.subject_org_id == p.buyer_org.id
    assert review.product_id is None and review.score_x100 == 400


def test_one_review_per_side(session, client, p):
    order = completed(session, p)
    colleague = factories.user(session, p.buyer_org)
    session.commit()
    support.login(client, p.buyer)
    assert rate(client, order, GOOD).status_code == 302
    again = rate(client, order, {**GOOD, "quality": "1"})
    assert again.status_code == 409
    assert "already rated this order" in again.get_data(as_text=True)
    support.logout(client)
    support.login(client, colleague)  # another member of the same enterprise
    assert rate(client, order, GOOD).status_code == 409
    assert review_count(session) == 1
    assert session.scalar(select(Review.quality)) == 5
    # The institution's side is still open.
    support.logout(client)
    support.login(client, p.provider)
    assert rate(client, order, FAIR).status_code == 302
    assert review_count(session) == 2


@pytest.mark.parametrize("data, field, message", [
    ({"timeliness": "4", "communication": "5", "value": "4"}, "quality",
     "Choose a score from 1 to 5 for quality of work."),
    ({**GOOD, "quality": "7"}, "quality",
     "The score for quality of work must be a whole number from 1 to 5."),
    ({**GOOD, "value": "0"}, "value",
     "The score for value for money must be a whole number from 1 to 5."),
    ({**GOOD, "timeliness": "four"}, "timeliness",
     "The score for timeliness must be a whole number from 1 to 5."),
    ({**GOOD, "body": "x" * 4001}, "body", "Please keep the review under 4,000 characters."),
])
def test_invalid_scores_re_render_the_form(session, client, p, data, field, message):
    order = completed(session, p)
    support.login(client, p.buyer)
    response = rate(client, order, {"body": "Kept text", **data})
    assert response.status_code == 200  # the form again, with the messages
    html = response.get_data(as_text=True)
    assert message in html
    assert f'data-testid="error-{field}"' in html
    assert 'data-testid="review-form"' in html
    if field != "body":
        assert "Kept text" in html  # what was typed is not lost
        assert re.search(r'value="5"[^>]*checked[^>]*data-testid="score-communication-5"', html)
    assert review_count(session) == 0


def test_provider_form_validates_its_own_dimensions(session, client, p):
    order = completed(session, p)
    support.login(client, p.provider)
    response = rate(client, order, {"clarity": "4", "cooperation": "6"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "must be a whole number from 1 to 5" in html
    assert "Choose a score from 1 to 5 for payment." in html
    assert review_count(session) == 0


# --------------------------------------------------------------------------- double-blind

def test_double_blind_until_both_are_in(session, client, p):
    order = completed(session, p)
    support.login(client, p.buyer)
    assert rate(client, order, {**GOOD, "body": "Buyer says: excellent agents"}).status_code == 302
    support.logout(client)

    support.login(client, p.provider)
    page = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    assert "Buyer says: excellent agents" not in page
    assert "has already rated this order" in page  # they may know that, not what
    assert rate(client, order, {**FAIR, "body": "Provider says: clear brief"}).status_code == 302
    page = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    assert "Buyer says: excellent agents" in page and "Provider says: clear brief" in page
    support.logout(client)

    support.login(client, p.buyer)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Provider says: clear brief" in page
    stored = session.scalars(select(Review).order_by(Review.id)).all()
    assert all(r.published_at is not None for r in stored)
    assert stored[0].published_at == stored[1].published_at


def test_provider_side_stays_blind_to_the_buyer(session, client, p):
    order = completed(session, p)
    write(session, order, p.provider, FAIR, "Slow to pay the invoice",
          now=datetime.now(UTC))
    support.login(client, p.buyer)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Slow to pay the invoice" not in page
    assert 'data-testid="rate-order"' in page


def test_published_after_the_window_with_a_frozen_clock(session, p):
    order = completed(session, p, when=T0)
    write(session, order, p.buyer, GOOD, "Only the buyer wrote", now=T0 + timedelta(days=2))
    product = session.get(Product, order.product_id)
    assert product.rating_count == 0 and product.rating_x100 is None

    assert reviews.publish_due_reviews(session, T0 + timedelta(days=14, seconds=-1), 14) == 0
    assert session.scalar(select(Review.published_at)) is None
    session.query(SearchOutbox).delete()
    session.commit()

    at = T0 + timedelta(days=14)
    assert reviews.publish_due_reviews(session, at, 14) == 1
    assert session.scalar(select(Review.published_at)) == at
    session.refresh(product)
    assert (product.rating_count, product.rating_x100, product.rating_average) == (1, 450, 4.5)
    assert session.scalar(select(func.count()).select_from(SearchOutbox)
                          .where(SearchOutbox.product_id == product.id)) == 1
    # Idempotent: nothing new on a re-run.
    assert reviews.publish_due_reviews(session, at + timedelta(days=3), 14) == 0
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == 1
    # Rating is closed now: the institution can no longer answer a score it could read.
    with pytest.raises(reviews.ReviewError, match="Rating for this order closed"):
        write(session, order, p.provider, FAIR, now=at + timedelta(hours=1))
    session.rollback()
    assert review_count(session) == 1


def test_order_timers_publish_due_reviews(session, p, app):
    order = completed(session, p, when=T0)
    write(session, order, p.provider, FAIR, now=T0 + timedelta(days=1))
    report = timers.run(session, T0 + timedelta(days=15))
    assert report.reviews_published == 1
    assert "1 reviews published" in report.summary()
    assert timers.run(session, T0 + timedelta(days=16)).reviews_published == 0
    runner = app.test_cli_runner()
    result = runner.invoke(args=["publish-reviews", "--now", "2026-04-01T00:00:00"])
    assert result.exit_code == 0 and "0 reviews published" in result.output


def test_window_setting_comes_from_config(session, client, p, app, monkeypatch):
    monkeypatch.setitem(app.config, "REVIEW_BLIND_DAYS", 3)
    order = completed(session, p, when=datetime.now(UTC) - timedelta(days=4))
    support.login(client, p.buyer)
    response = rate(client, order, GOOD)
    assert response.status_code == 409
    assert "Rating for this order closed" in response.get_data(as_text=True)


# --------------------------------------------------------------------------- reply

def test_provider_replies_once_after_publication(session, client, p):
    order = completed(session, p)
    review = write(session, order, p.buyer, GOOD, "Good work", now=datetime.now(UTC))
    support.login(client, p.provider)
    early = post_form(client, f"/reviews/{review.id}/reply", {"reply": "Thanks!"})
    assert early.status_code == 409 and "once the review is published" in early.get_data(
        as_text=True)
    write(session, order, p.provider, FAIR, now=datetime.now(UTC))  # both in: published
    page = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    assert 'data-testid="reply-form"' in page

    empty = post_form(client, f"/reviews/{review.id}/reply", {"reply": "  "},
                      follow_redirects=True)
    assert "Write your reply first." in empty.get_data(as_text=True)
    assert post_form(client, f"/reviews/{review.id}/reply",
                     {"reply": "Thank you for the kind words."}).status_code == 302
    second = post_form(client, f"/reviews/{review.id}/reply", {"reply": "Edited"})
    assert second.status_code == 409
    assert "already has your reply" in second.get_data(as_text=True)
    session.refresh(review)
    assert review.reply == "Thank you for the kind words." and review.replied_at is not None
    assert 'data-testid="reply-form"' not in client.get(
        f"/provider/orders/{order.id}").get_data(as_text=True)
    product_page = client.get(f"/products/{order.product_id}").get_data(as_text=True)
    assert "Thank you for the kind words." in product_page


@pytest.mark.parametrize("who", ["buyer", "outsider", "other_provider", "staff"])
def test_only_the_rated_institution_replies(session, client, p, who):
    order = completed(session, p)
    review = write(session, order, p.buyer, GOOD, now=datetime.now(UTC))
    write(session, order, p.provider, FAIR, now=datetime.now(UTC))
    user = (factories.user(session, factories.provider(session)) if who == "other_provider"
            else p.actor(who))
    session.commit()
    support.login(client, user)
    response = post_form(client, f"/reviews/{review.id}/reply", {"reply": "Not mine to say"})
    assert response.status_code == 403
    session.refresh(review)
    assert review.reply is None


def test_buyer_reviews_of_the_buyer_cannot_be_replied_to(session, client, p):
    order = completed(session, p)
    write(session, order, p.buyer, GOOD, now=datetime.now(UTC))
    about_buyer = write(session, order, p.provider, FAIR, now=datetime.now(UTC))
    support.login(client, p.buyer)
    assert post_form(client, f"/reviews/{about_buyer.id}/reply",
                     {"reply": "I disagree"}).status_code == 403


# --------------------------------------------------------------------------- moderation

def published_pair(session, p, buyer_scores, body, product=None):
    order = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                          **({"product": product} if product else {}))
    session.commit()
    now = datetime.now(UTC)
    review = write(session, order, p.buyer, buyer_scores, body, now=now)
    write(session, order, p.provider, FAIR, now=now)
    return order, review


def test_staff_hide_with_reason_and_unhide(session, client, p):
    product = factories.product(session, p.provider_org)
    session.commit()
    _, kept = published_pair(session, p, {"quality": "5", "timeliness": "5",
                                           "communication": "5", "value": "5"},
                             "Superb service", product)
    _, rude = published_pair(session, p, {"quality": "1", "timeliness": "2",
                                           "communication": "1", "value": "1"},
                             "Insulting words here", product)
    session.refresh(product)
    assert (product.rating_count, product.rating_x100) == (2, 313)  # (500 + 125) / 2 = 312.5
    assert "Insulting words here" in client.get(f"/products/{product.id}").get_data(as_text=True)

    support.login(client, p.staff)
    missing = post_form(client, f"/staff/reviews/{rude.id}/hide", {"reason": " "},
                        follow_redirects=True)
    assert "Give the reason for hiding this review." in missing.get_data(as_text=True)
    session.refresh(rude)
    assert rude.hidden_at is None

    assert post_form(client, f"/staff/reviews/{rude.id}/hide",
                     {"reason": "Abusive language"}).status_code == 302
    session.refresh(rude)
    session.refresh(product)
    assert rude.hidden_reason == "Abusive language" and rude.hidden_by_id == p.staff.id
    assert (product.rating_count, product.rating_x100) == (1, 500)
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "review.hide"))
    assert (entry.actor_id, entry.target_type, entry.target_id, entry.reason) == (
        p.staff.id, "review", rude.id, "Abusive language")
    assert session.scalar(select(func.count()).select_from(SearchOutbox)
                          .where(SearchOutbox.product_id == product.id,
                                 SearchOutbox.reason == "rating")) >= 3
    staff_page = client.get("/staff/reviews?state=hidden").get_data(as_text=True)
    assert "Abusive language" in staff_page and "Insulting words here" in staff_page
    assert "Superb service" not in staff_page
    support.logout(client)

    public = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "Insulting words here" not in public and "Superb service" in public
    profile = client.get(f"/institutions/{p.provider_org.id}").get_data(as_text=True)
    assert "Insulting words here" not in profile
    summary = reviews.rating_summary(session, subject_org_id=p.provider_org.id)
    assert (summary.count, summary.average_x100) == (1, 500)

    support.login(client, p.staff)
    assert post_form(client, f"/staff/reviews/{rude.id}/unhide",
                     {"reason": "Author apologised; words were quotes"}).status_code == 302
    session.refresh(product)
    assert (product.rating_count, product.rating_x100) == (2, 313)
    assert session.scalar(select(AuditLog.reason).where(AuditLog.action == "review.unhide")) == (
        "Author apologised; words were quotes")


@pytest.mark.parametrize("hidden_side", ["buyer", "provider"])
def test_a_hidden_review_leaves_the_order_page_of_the_rated_party(session, client, p,
                                                                   hidden_side):
    """Hidden by staff, a review disappears for the party it rates, on the order page too;
    its author (with the reason) and staff still see it."""
    order, buyer_review = published_pair(session, p, GOOD, "Rude words about the agency")
    provider_review = session.scalar(select(Review).where(Review.order_id == order.id,
                                                          Review.side == "provider"))
    provider_review.body = "Rude words about the buyer"
    session.commit()
    hidden = buyer_review if hidden_side == "buyer" else provider_review
    reviews.hide_review(session, hidden, p.staff, "Abusive language", now=datetime.now(UTC))
    session.commit()
    author, subject = ((p.buyer, p.provider) if hidden_side == "buyer"
                       else (p.provider, p.buyer))
    pages = {"buyer": f"/orders/{order.id}", "provider": f"/provider/orders/{order.id}",
             "staff": f"/staff/orders/{order.id}"}

    def page_of(user, side):
        support.login(client, user)
        try:
            response = client.get(pages[side])
            assert response.status_code == 200
            return response.get_data(as_text=True)
        finally:
            support.logout(client)

    subject_page = page_of(subject, "provider" if hidden_side == "buyer" else "buyer")
    assert hidden.body not in subject_page
    assert "Abusive language" not in subject_page
    author_page = page_of(author, hidden_side)
    assert hidden.body in author_page and "Abusive language" in author_page
    staff_page = page_of(p.staff, "staff")
    assert hidden.body in staff_page and "Abusive language" in staff_page


@pytest.mark.parametrize("who", ["visitor", "buyer", "provider", "outsider"])
def test_moderation_is_staff_only(session, client, p, who):
    _, review = published_pair(session, p, GOOD, "Fine")
    if who != "visitor":
        support.login(client, p.actor(who))
    listing = client.get("/staff/reviews")
    hide = post_form(client, f"/staff/reviews/{review.id}/hide", {"reason": "No"})
    if who == "visitor":
        assert listing.status_code == 302 and "/login" in listing.headers["Location"]
        assert hide.status_code == 302 and "/login" in hide.headers["Location"]
    else:
        assert listing.status_code == 403 and hide.status_code == 403
    session.refresh(review)
    assert review.hidden_at is None
    review.hidden_at, review.hidden_reason = datetime.now(UTC), "staff did it"
    session.commit()
    assert post_form(client, f"/staff/reviews/{review.id}/unhide", {}).status_code in (
        (302,) if who == "visitor" else (403,))
    session.refresh(review)
    assert review.hidden_at is not None
    assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


# --------------------------------------------------------------------------- aggregates

HAND_SET = [  # quality, timeliness, communication, value -> score
    ((5, 5, 5, 5), 500), ((4, 4, 5, 4), 425), ((3, 2, 3, 2), 250), ((1, 2, 1, 1), 125)]


def test_averages_and_distribution_match_hand_computed_values(session, client, p):
    product = factories.product(session, p.provider_org, title="Patent drafting")
    other = factories.product(session, p.provider_org, title="Trademark filing")
    session.commit()
    for scores, expected in HAND_SET:
        _, review = published_pair(
            session, p, dict(zip(reviews.SIDE_DIMENSIONS["buyer"], map(str, scores),
                                 strict=True)), f"score {expected}", product)
        assert review.score_x100 == expected
    # One blind (unpublished) review elsewhere counts nowhere.
    lone = support.order(session, p, "completed", completed_at=datetime.now(UTC), product=other)
    session.commit()
    write(session, lone, p.buyer, {"quality": "1", "timeliness": "1", "communication": "1",
                                   "value": "1"}, now=datetime.now(UTC))

    summary = reviews.rating_summary(session, product_id=product.id)
    assert summary.count == 4 and summary.average_x100 == 325  # 1300 / 4
    assert {d.name: d.average_x100 for d in summary.dimensions} == {
        "quality": 325, "timeliness": 325, "communication": 350, "value": 300}
    assert [(b.stars, b.count) for b in summary.distribution] == [
        (5, 1), (4, 1), (3, 1), (2, 0), (1, 1)]
    session.refresh(product)
    assert (product.rating_count, product.rating_average) == (4, 3.25)
    assert session.get(Product, other.id).rating_count == 0

    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert re.search(r'data-testid="rating-average">3\.25<', html)
    assert re.search(r'data-testid="rating-count">4 reviews<', html)
    assert re.search(r'data-testid="rating-badge">.*?3\.25</strong>.*?\(4 reviews\)', html, re.S)
    for name, value in (("quality", "3.25"), ("communication", "3.50"), ("value", "3.00")):
        assert re.search(rf'data-dimension="{name}">.*?data-testid="dimension-average">'
                         rf'{re.escape(value)}<', html, re.S)
    buckets = re.findall(r'<tr data-stars="(\d)">.*?data-testid="bucket-count">(\d+)<', html, re.S)
    assert buckets == [("5", "1"), ("4", "1"), ("3", "1"), ("2", "0"), ("1", "1")]

    provider_summary = reviews.rating_summary(session, subject_org_id=p.provider_org.id)
    assert (provider_summary.count, provider_summary.average_x100) == (4, 325)
    profile = client.get(f"/institutions/{p.provider_org.id}").get_data(as_text=True)
    assert re.search(r'data-testid="rating-average">3\.25<', profile)
    # The enterprise's own rating (from the institution, 4/3/5 each time) is not public.
    assert "Clarity of requirements" not in profile and "Clarity of requirements" not in html


def test_unrated_pages_say_so(session, client, p):
    product = factories.product(session, p.provider_org)
    session.commit()
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "No reviews yet. Buyers rate this service after a completed order." in html
    assert 'data-testid="rating-badge"' not in html
    profile = client.get(f"/institutions/{p.provider_org.id}").get_data(as_text=True)
    assert "No reviews yet. Buyers rate this institution after a completed order." in profile


def test_reviews_paginate_newest_first_on_product_and_profile(session, client, p):
    product = factories.product(session, p.provider_org)
    session.commit()
    base = datetime.now(UTC) - timedelta(days=30)
    for n in range(12):
        order = support.order(session, p, "completed", completed_at=base, product=product)
        session.commit()
        when = base + timedelta(days=n)
        write(session, order, p.buyer, GOOD, f"Review number {n:02d}", now=when)
        write(session, order, p.provider, FAIR, now=when)

    def bodies(html):
        return re.findall(r"Review number (\d\d)", html)

    first = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert bodies(first) == [f"{n:02d}" for n in range(11, 1, -1)]
    assert "Reviews 1–10 of 12" in first
    assert f'href="/products/{product.id}?rpage=2#reviews"' in first
    assert f'hx-get="/reviews/products/{product.id}?rpage=2"' in first
    second = client.get(f"/products/{product.id}?rpage=2").get_data(as_text=True)
    assert bodies(second) == ["01", "00"]
    fragment = client.get(f"/reviews/products/{product.id}?rpage=2")
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert bodies(html) == ["01", "00"] and "<html" not in html

    profile = client.get(f"/institutions/{p.provider_org.id}?rpage=2").get_data(as_text=True)
    assert bodies(profile) == ["01", "00"]
    frag = client.get(f"/reviews/institutions/{p.provider_org.id}").get_data(as_text=True)
    assert bodies(frag)[:2] == ["11", "10"] and len(bodies(frag)) == 10


def test_review_fragments_follow_listing_visibility(session, client, p):
    draft = factories.product(session, p.provider_org, status="draft")
    session.commit()
    assert client.get(f"/reviews/products/{draft.id}").status_code == 404
    assert client.get("/reviews/products/999999").status_code == 404
    enterprise = p.buyer_org
    assert client.get(f"/reviews/institutions/{enterprise.id}").status_code == 404


# --------------------------------------------------------------------------- enterprise rating

def test_enterprise_rating_shown_to_providers_and_staff_only(session, client, p):
    published_pair(session, p, GOOD, "ok")  # the institution rated the buyer 4, 3, 5 -> 4.00
    incoming = support.order(session, p, "paid")
    session.commit()
    support.login(client, p.provider)
    html = client.get(f"/provider/orders/{incoming.id}").get_data(as_text=True)
    assert 'data-testid="buyer-rating"' in html
    assert re.search(r'data-testid="buyer-rating">.*?data-testid="rating-average">4\.00<.*?'
                     r'data-testid="rating-count">1 review<', html, re.S)
    support.logout(client)
    support.login(client, p.staff)
    assert 'data-testid="buyer-rating"' in client.get(
        f"/staff/orders/{incoming.id}").get_data(as_text=True)
    staff_list = client.get(f"/staff/reviews?org={p.buyer_org.id}").get_data(as_text=True)
    assert 'data-testid="subject-summary"' in staff_list and "4.00" in staff_list
    support.logout(client)
    support.login(client, p.buyer)
    assert 'data-testid="buyer-rating"' not in client.get(
        f"/orders/{incoming.id}").get_data(as_text=True)


# --------------------------------------------------------------------------- search

@pytest.fixture
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def test_search_sorts_and_filters_by_rating(session, client, p, index_dir):
    best = factories.product(session, p.provider_org, title="Alpha patent service",
                             sales_count=1)
    middle = factories.product(session, p.provider_org, title="Beta patent service",
                               sales_count=5)
    unrated = factories.product(session, p.provider_org, title="Gamma patent service",
                                sales_count=50)
    session.commit()
    reindex_all(session, index_dir)
    five = {"quality": "5", "timeliness": "5", "communication": "5", "value": "4"}  # 4.75
    three = {"quality": "3", "timeliness": "3", "communication": "3", "value": "3"}
    published_pair(session, p, five, "a", best)
    published_pair(session, p, three, "b", middle)
    # The ratings reach the index through the outbox only.
    drain_outbox(session, index_dir)

    def ids(**params):
        page = search(session, index_dir, SearchParams(**params), page_size=50)
        return [hit.product.id for hit in page.hits]

    assert ids(sort="rating") == [best.id, middle.id, unrated.id]
    assert ids(q="patent", sort="rating") == [best.id, middle.id, unrated.id]
    assert ids(min_rating=4) == [best.id]
    assert sorted(ids(min_rating=3)) == sorted([best.id, middle.id])
    page = search(session, index_dir, SearchParams(), page_size=50)
    assert {v.value: v.count for v in page.facets.ratings}["4"] == 1

    html = client.get("/search?sort=rating&rating=3").get_data(as_text=True)
    assert html.index("Alpha patent service") < html.index("Beta patent service")
    assert "Gamma patent service" not in html

    # Hiding the best review drops it below the threshold after the drain.
    support.login(client, p.staff)
    hidden = session.scalar(select(Review).where(Review.product_id == best.id,
                                                 Review.side == "buyer"))
    post_form(client, f"/staff/reviews/{hidden.id}/hide", {"reason": "Fake review"})
    drain_outbox(session, index_dir)
    assert ids(min_rating=4) == []
    assert ids(sort="rating")[0] == middle.id
