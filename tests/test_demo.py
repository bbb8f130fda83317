"""The demo supermarket: real figures at full scale, consistency, determinism, hidden
institutions and the idempotent `load-demo` command."""

import hashlib
import json
import re
from collections import Counter

import pytest
from conftest import post_form
from query_budget import count_queries
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from catalog.categories import CATEGORY_TREE, seed_categories
from catalog.models import Category, Package, Product, SearchOutbox
from marketplace.credit_code import is_valid
from marketplace.database import db, make_engine
from marketplace.demo import content as demo_content
from marketplace.demo.catalogue import (
    ADMIN_EMAIL,
    BUYER_EMAIL,
    DEMO_PASSWORD,
    PROVIDER_EMAIL,
    STAFF_EMAIL,
    DemoDataError,
    load_demo_data,
)
from marketplace.migrate import upgrade
from marketplace.models import Organisation, User
from marketplace.passwords import verify_password
from marketplace.reference import INSTITUTION_TYPES, REGIONS

SUBCATEGORY_SLUGS = [slug for _top, _n, _z, children in CATEGORY_TREE for slug, *_ in children]
REGION_CODES = {code for code, _en, _zh in REGIONS}
DEMO_LOAD_STATEMENT_BUDGET = 6_000  # 4,806 measured on 2026-12-07; a per-row path adds thousands


def _visible(session):
    """Published listings of verified, non-suspended institutions: what the public sees."""
    return (select(Product).join(Organisation, Product.provider_id == Organisation.id)
            .where(Product.status == "published", Organisation.verification_status == "verified",
                   Organisation.suspended.is_(False)))


def test_content_tables_cover_every_seeded_category():
    assert sorted(demo_content.SUBCATEGORIES) == sorted(SUBCATEGORY_SLUGS)
    types = {code for code, _en, _zh in INSTITUTION_TYPES}
    assert set(demo_content.INSTITUTION_COUNTS) == types
    assert sum(demo_content.INSTITUTION_COUNTS.values()) == 150
    for slug, sub in demo_content.SUBCATEGORIES.items():
        assert set(sub.types) <= types, slug
        for template in sub.templates:
            assert set(template.modes) <= set("pqf"), (slug, template.en)
            assert "f" not in template.modes or (template.terms or sub.terms), (slug, template.en)
            assert "q" not in template.modes or sub.quote_brief, (slug, template.en)
            # Both languages name the same slots.
            assert (set(re.findall(r"{(\w+)}", template.en))
                    == set(re.findall(r"{(\w+)}", template.zh))), (slug, template.en)


def test_full_demo_load_has_the_real_figures(app, client):
    with app.app_context():
        hidden_ids, visible_id = _check_full_load(db.session)
    # Through the web, outside any application context, as a browser would.
    for email in (BUYER_EMAIL, PROVIDER_EMAIL, STAFF_EMAIL, ADMIN_EMAIL):
        browser = app.test_client()
        response = post_form(browser, "/login", {"email": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302 and response.location.endswith("/account"), email
        assert email in browser.get("/account").get_data(as_text=True)
    # Listings of the pending and the suspended institution are not shown to the public.
    for product_id in hidden_ids:
        assert client.get(f"/products/{product_id}").status_code == 404
    assert client.get(f"/products/{visible_id}").status_code == 200


def _check_full_load(session) -> tuple[list[int], int]:
    # Bulk inserts, not a statement per row: the statement count, unlike the wall clock, does
    # not depend on the machine or its load. (~3,900 organisations and users, ~400 listings.)
    with count_queries() as counted:
        summary = load_demo_data(session, seed=20261123)
        session.commit()
    assert counted.count <= DEMO_LOAD_STATEMENT_BUDGET, counted.report()[:3000]
    for email in (BUYER_EMAIL, PROVIDER_EMAIL, STAFF_EMAIL, ADMIN_EMAIL, DEMO_PASSWORD):
        assert email in summary

    # Institutions: 150 of all ten types, all with valid and unique credit codes.
    providers = session.scalars(select(Organisation).where(Organisation.kind == "provider")).all()
    assert len(providers) >= 150
    assert {p.institution_type for p in providers} == {code for code, _e, _z in INSTITUTION_TYPES}
    listed = [p for p in providers if p.is_listed]
    assert len(listed) == len(providers) - 2
    for p in providers:
        assert p.description.count("\n\n") >= 2 and p.website.endswith(".example.com")
        assert p.regions_served and set(p.regions_served) <= REGION_CODES
        assert p.founded_year and p.contact_name and p.region in REGION_CODES
    enterprises = session.scalar(select(func.count()).select_from(Organisation)
                                 .where(Organisation.kind == "enterprise"))
    assert enterprises >= 3000
    codes = session.scalars(select(Organisation.credit_code)).all()
    assert all(is_valid(code) for code in codes)
    assert len(codes) == len(set(codes))
    # Every enterprise has exactly one owner account.
    owners = session.scalar(select(func.count()).select_from(User).join(Organisation)
                            .where(Organisation.kind == "enterprise", User.is_org_owner,
                                   User.role == "enterprise"))
    assert owners == enterprises

    # Listings: at least 342 visible, in every sub-category, in all three pricing modes.
    products = session.scalars(select(Product)).all()
    visible = session.scalars(_visible(session)).all()
    assert len(visible) >= 342
    slugs = dict(session.execute(select(Category.id, Category.slug)).all())
    assert {slugs[p.category_id] for p in visible} >= set(SUBCATEGORY_SLUGS)
    assert {p.pricing_mode for p in visible} == {"packaged", "quote", "financial"}
    assert {p.status for p in products} == {"draft", "pending_review", "published",
                                            "suspended", "archived"}
    titles = [p.title for p in products]
    assert len(titles) == len(set(titles))
    # Neighbouring cards must not read alike: summaries differ within every sub-category.
    by_category: dict[int, list[str]] = {}
    for p in products:
        by_category.setdefault(p.category_id, []).append(p.summary)
    for summaries in by_category.values():
        assert len(set(summaries)) >= 0.8 * len(summaries)
    # Every listing speaks both languages: a Chinese and an English title and summary, one
    # as the listing's own text and the other as its second-language version.
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for p in products:
        assert p.title_alt and p.summary_alt, p.title
        assert bool(cjk.search(p.title)) != bool(cjk.search(p.title_alt)), p.title
        assert bool(cjk.search(p.summary)) != bool(cjk.search(p.summary_alt)), p.title
    assert sum(p.featured for p in products) == 12
    assert 0.3 <= sum(p.voucher_eligible for p in products) / len(products) <= 0.5
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", t)) for t in titles) > len(titles) * 0.35
    # Every listing is queued for the search index.
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == len(products)

    # Packaged: one to three packages, rising prices and days, price_from the cheapest.
    packages = {}
    for package in session.scalars(select(Package).order_by(Package.product_id, Package.position)):
        packages.setdefault(package.product_id, []).append(package)
    for p in products:
        assert p.regions and set(p.regions) <= REGION_CODES
        assert p.published_at is None or p.created_at < p.published_at
        if p.pricing_mode == "packaged":
            own = packages[p.id]
            assert 1 <= len(own) <= 3
            assert p.price_from == min(k.price for k in own)
            assert [k.price for k in own] == sorted({k.price for k in own})
            assert all(k.deliverable_list and k.price >= 10_000 for k in own)
        else:
            assert p.id not in packages
        if p.pricing_mode == "financial":
            assert 0 < p.amount_min <= p.amount_max < 2**31
            assert 0 < p.rate_min_bp <= p.rate_max_bp
            assert 0 < p.term_min_months <= p.term_max_months
            assert p.service_fee is not None and p.price_from == p.service_fee
        if p.pricing_mode == "quote":
            assert p.quote_brief and p.price_from is None
    # Prices in realistic ranges: invention-patent filing packages cost ¥3,000–¥12,000.
    filings = [p for p in products
               if re.search(r"Invention patent (filing|drafting)", f"{p.title} {p.title_alt}")]
    assert filings
    assert all(300_000 <= k.price <= 1_200_000 for p in filings for k in packages[p.id])

    # The four known logins work with the demo password and land on the right roles.
    roles = dict(session.execute(select(User.email, User.role)
                                 .where(User.email.like("%@demo.example"))).all())
    assert roles == {BUYER_EMAIL: "enterprise", PROVIDER_EMAIL: "provider",
                     STAFF_EMAIL: "staff", ADMIN_EMAIL: "admin"}
    for email in roles:
        user = session.scalar(select(User).where(User.email == email))
        assert verify_password(user.password_hash, DEMO_PASSWORD)
    buyer = session.scalar(select(User).where(User.email == BUYER_EMAIL))
    assert buyer.organisation.name == "Suzhou Demo Robotics Co., Ltd. 苏州演示机器人有限公司"
    agency = session.scalar(select(User).where(User.email == PROVIDER_EMAIL)).organisation
    assert agency.institution_type == "ip_agency" and agency.is_listed
    assert sum(1 for p in visible if p.provider_id == agency.id) >= 5

    # The pending and the suspended institution have listings, and nobody outside sees them.
    hidden = [p for p in providers if not p.is_listed]
    assert {("pending", False), ("verified", True)} == {
        (p.verification_status, p.suspended) for p in hidden}
    assert all(p.suspended_reason for p in hidden if p.suspended)
    hidden_listings = [p for p in products if p.provider_id in {h.id for h in hidden}]
    assert hidden_listings and all(p.status == "published" for p in hidden_listings)
    return [p.id for p in hidden_listings], visible[0].id


def _digest(session) -> str:
    """A fingerprint of every demo row by natural keys (ids and the salted hash left out)."""
    org = aliased(Organisation)
    rows = []
    org_columns = [c for c in Organisation.__table__.columns if c.name != "id"]
    rows += session.execute(select(*org_columns).order_by(Organisation.id)).all()
    user_columns = [c for c in User.__table__.columns
                    if c.name not in ("id", "password_hash", "organisation_id")]
    rows += session.execute(select(*user_columns, org.credit_code)
                            .outerjoin(org, User.organisation_id == org.id)
                            .order_by(User.id)).all()
    product_columns = [c for c in Product.__table__.columns
                       if c.name not in ("id", "provider_id", "category_id")]
    rows += session.execute(select(*product_columns, org.credit_code, Category.slug)
                            .join(org, Product.provider_id == org.id)
                            .join(Category, Product.category_id == Category.id)
                            .order_by(Product.id)).all()
    package_columns = [c for c in Package.__table__.columns if c.name not in ("id", "product_id")]
    rows += session.execute(select(*package_columns, Product.title).join(Product)
                            .order_by(Package.id)).all()
    text = json.dumps([list(row) for row in rows], default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_into_fresh_database(tmp_path, name: str, seed: int) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as fresh:
            seed_categories(fresh)
            load_demo_data(fresh, seed=seed, enterprises=150)
            fresh.commit()
            return _digest(fresh)
    finally:
        engine.dispose()


def test_same_seed_gives_identical_rows_and_another_seed_differs(session, tmp_path):
    load_demo_data(session, seed=7, enterprises=150)
    session.commit()
    first = _digest(session)
    assert _load_into_fresh_database(tmp_path, "again.sqlite", seed=7) == first
    assert _load_into_fresh_database(tmp_path, "other.sqlite", seed=8) != first


def test_loader_refuses_a_catalogue_that_already_has_listings(session):
    load_demo_data(session, seed=3, enterprises=20)
    session.commit()
    before = session.scalar(select(func.count()).select_from(Product))
    with pytest.raises(DemoDataError, match="already has listings"):
        load_demo_data(session, seed=3, enterprises=20)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Product)) == before


def test_load_demo_command_with_if_empty_never_duplicates(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["load-demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "Demo supermarket loaded" in first.output and "buyer@demo.example" in first.output
    counts = Counter(session.scalars(select(Organisation.kind)))
    products = session.scalar(select(func.count()).select_from(Product))
    assert counts["provider"] == 150 and counts["enterprise"] == 3000 and products >= 342

    second = runner.invoke(args=["load-demo", "--if-empty"])
    assert second.exit_code == 0 and "nothing to do" in second.output
    forced = runner.invoke(args=["load-demo"])
    assert forced.exit_code != 0 and "already has listings" in forced.output
    session.expire_all()
    assert Counter(session.scalars(select(Organisation.kind))) == counts
    assert session.scalar(select(func.count()).select_from(Product)) == products
