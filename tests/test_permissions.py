"""The rules of marketplace/permissions.py that exist both as a Python predicate (one object
in hand) and as a SQL filter (a query over many) must agree on every case: each test builds
every combination and compares the two forms."""

import itertools

import factories
from sqlalchemy import select

from catalog.models import PRODUCT_STATUSES, Product
from catalog.services import listed_providers_condition, visible_products_condition
from marketplace import permissions
from marketplace.models import ROLES, VERIFICATION_STATUSES, Organisation, User


def _every_kind_of_institution(session) -> list[Organisation]:
    orgs = []
    for status, suspended in itertools.product(VERIFICATION_STATUSES, (False, True)):
        org = factories.provider(session, verified=status == "verified", suspended=suspended)
        org.verification_status = status
        orgs.append(org)
    orgs.append(factories.enterprise(session))  # verified, but not an institution
    session.flush()
    return orgs


def test_listed_institution_python_and_sql_agree(session):
    orgs = _every_kind_of_institution(session)
    in_sql = set(session.scalars(select(Organisation.id).where(
        permissions.listed_providers_filter())))
    in_python = {org.id for org in orgs if permissions.is_listed_provider(org)}
    assert in_python == in_sql
    # The rule itself: only a verified provider that is not suspended.
    assert [(o.verification_status, o.suspended) for o in orgs if o.id in in_sql] == [
        ("verified", False)]
    # The catalogue's name for it is the same filter.
    assert set(session.scalars(select(Organisation.id).where(
        listed_providers_condition()))) == in_sql


def test_public_listing_python_and_sql_agree(session):
    orgs = _every_kind_of_institution(session)
    products = [factories.product(session, org, status=status)
                for org, status in itertools.product(orgs, PRODUCT_STATUSES)]
    session.flush()
    ids = {p.id for p in products}
    in_sql = set(session.scalars(select(Product.id).where(
        Product.id.in_(ids), permissions.public_listings_filter(Product))))
    in_python = {p.id for p in products if permissions.is_public_listing(p)}
    assert in_python == in_sql
    assert {(p.status, p.provider.verification_status, p.provider.suspended)
            for p in products if p.id in in_sql} == {("published", "verified", False)}
    assert set(session.scalars(select(Product.id).where(
        Product.id.in_(ids), visible_products_condition()))) == in_sql


def test_staff_users_query_and_is_staff_agree(session):
    org = factories.enterprise(session)
    users = [factories.user(session, org if role == "enterprise" else None, role=role,
                            active=active)
             for role, active in itertools.product(ROLES, (True, False))]
    session.flush()
    ids = {u.id for u in users}
    in_sql = set(session.scalars(permissions.staff_users().with_only_columns(User.id)
                                 .where(User.id.in_(ids))))
    assert in_sql == {u.id for u in users if permissions.is_staff(u) and u.active}
    assert {u.role for u in users if u.id in in_sql} == {"staff", "admin"}


def test_public_review_python_and_sql_agree(session):
    from datetime import UTC, datetime

    import order_support as support

    from catalog.models import Review

    p = support.parties(session)
    now = datetime.now(UTC)
    reviews = []
    for published, hidden in itertools.product((False, True), (False, True)):
        order = support.order(session, p, "completed", completed_at=now)
        review = Review(order_id=order.id, side="buyer", author_org_id=p.buyer_org.id,
                        author_user_id=p.buyer.id, subject_org_id=p.provider_org.id,
                        score_x100=400, quality=4, timeliness=4, communication=4, value=4,
                        body="", created_at=now, published_at=now if published else None,
                        hidden_at=now if hidden else None,
                        hidden_reason="Abusive" if hidden else None)
        session.add(review)
        reviews.append(review)
    session.flush()
    in_sql = set(session.scalars(select(Review.id).where(
        permissions.public_reviews_filter(Review))))
    assert in_sql == {r.id for r in reviews if permissions.is_public_review(r)}
    assert [(r.published_at is not None, r.hidden_at is not None)
            for r in reviews if r.id in in_sql] == [(True, False)]
