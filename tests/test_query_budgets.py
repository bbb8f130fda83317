"""Query budgets: every page sends a fixed number of SQL statements, however much is on it.

One module-scoped run builds a small marketplace, counts the statements of every page, then
grows it in bulk to a catalogue ten times the demo's (4,000 more listings from 400 more
institutions) with ten times the orders, reviews, favourites, cart lines, moderation and
verification queue entries, audit rows, timeline events and messages on the measured pages
(and eleven statements in a settlement batch instead of two, twenty orders in a statement
instead of two, each settled order paid partly with an innovation voucher), and counts again.
The growth comes from many different enterprises and institutions, not the one buyer and
one institution the pages are measured for: each settled order has a buyer of its own, the
reviews of the measured listing come from different enterprises, and the buyer's new
orders are with different institutions, so a page that loads something per buyer or per
institution shows too. Each page must stay within its budget AND send exactly as
many statements at both sizes: a page that loads something per listing, order or review
(N+1) fails one or the other.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, replace
from datetime import timedelta

import factories
import pytest
from conftest import _wipe
from order_support import order, parties
from query_budget import count_queries
from sqlalchemy import func, insert, select

from catalog.categories import seed_categories
from catalog.compare import SESSION_KEY as COMPARE_KEY
from catalog.models import Category, Favourite, Package, Product, Review
from catalog.search.index import document_for, load_products, open_index
from catalog.search.pool import forget_index
from marketplace.audit import record
from marketplace.credit_code import generate
from marketplace.database import db, utcnow
from marketplace.models import Organisation
from orders import cart as carts
from orders import payments, quotes, services, settlement, vouchers
from orders.models import (
    Order,
    OrderEvent,
    OrderMessage,
    SettlementStatement,
    VoucherProgramme,
)

DEMO_LISTINGS = 400
SEARCH = "/search?q=patent&region=suzhou&price_max=100000&sort=price_asc"

# page name -> (who looks, path template, budget). Paths are filled from World. Each budget is
# what the page sends today plus one: a new query on a page is a decision, made here.
PAGES = {
    # public
    "home": (None, "/", 7),
    "category": (None, "/c/patent-application", 8),
    "product (packaged)": (None, "/products/{packaged}", 9),
    "product (quote)": (None, "/products/{quote}", 9),
    "product (financial)": (None, "/products/{financial}", 9),
    "institution directory": (None, "/institutions", 5),
    "institution profile": (None, "/institutions/{provider_org}", 14),
    "institution reviews": (None, "/reviews/institutions/{provider_org}", 7),
    "search with filters": (None, SEARCH, 5),
    # enterprise buyer
    "favourites": ("buyer", "/favourites", 13),
    "institution directory (buyer)": ("buyer", "/institutions", 10),  # stars: one look-up
    # The credibility breakdown also reads the needs (issue 15): one grouped query per side.
    "my account": ("buyer", "/account", 14),
    "notifications": ("buyer", "/notifications", 10),
    "my quote requests": ("buyer", "/quotes", 9),
    "quote detail (buyer)": ("buyer", "/quotes/{quote_request}", 10),
    "my vouchers": ("buyer", "/vouchers", 8),
    "compare": ("buyer", "/compare", 9),
    "cart": ("buyer", "/cart", 10),
    "checkout": ("buyer", "/checkout", 14),
    "my orders": ("buyer", "/orders", 12),
    "order detail (buyer)": ("buyer", "/orders/{order}", 20),
    # provider portal
    # +1 for the orders card: order counts per status and unanswered quote requests are two
    # statements; an unused load of the qualification documents was dropped for one of them.
    "portal dashboard": ("provider", "/provider", 14),
    "portal listings": ("provider", "/provider/listings", 9),
    "portal orders": ("provider", "/provider/orders", 10),
    "portal order detail": ("provider", "/provider/orders/{order}", 19),
    "portal quote requests": ("provider", "/provider/quotes", 7),
    "portal quote detail": ("provider", "/provider/quotes/{quote_request}", 8),
    "portal statements": ("provider", "/provider/statements", 8),
    "team": ("provider", "/team", 8),
    # staff and monitors' console
    "staff console": ("admin", "/staff", 25),
    "staff orders": ("admin", "/staff/orders", 11),
    "staff order detail": ("admin", "/staff/orders/{order}", 21),
    "progress": ("admin", "/staff/progress", 11),
    "credibility console": ("admin", "/staff/credibility", 13),
    "credibility detail": ("admin", "/staff/credibility/{provider_org}", 17),
    "audit log": ("admin", "/staff/audit", 9),
    "moderation queue": ("admin", "/staff/moderation", 11),
    "verification queue": ("admin", "/staff/verification", 9),
    "reviews (staff)": ("admin", "/staff/reviews", 8),
    "settlement batches": ("admin", "/staff/settlement", 9),
    "settlement batch": ("admin", "/staff/settlement/{batch}", 7),
    "settlement statement": ("admin", "/staff/settlement/statements/{statement}", 9),
    "portal statement": ("provider", "/provider/statements/{statement}", 9),
    "settlement batch CSV": ("admin", "/staff/settlement/{batch}/export.csv", 5),
    "settlement statement CSV": ("admin",
                                 "/staff/settlement/statements/{statement}/export.csv", 5),
    "portal statement CSV": ("provider", "/provider/statements/{statement}/export.csv", 5),
    "voucher report": ("admin", "/staff/settlement/vouchers?programme={programme}&month={month}",
                       9),
    "voucher report CSV": (
        "admin", "/staff/settlement/vouchers?programme={programme}&month={month}&format=csv",
        5),
    "voucher programme": ("admin", "/staff/vouchers/{programme}", 10),
    "product reviews": (None, "/reviews/products/{packaged}", 8),
    "moderation detail": ("admin", "/staff/moderation/{pending_listing}", 12),
    "verification detail": ("admin", "/staff/verification/{provider_org}", 11),
    "voucher programmes": ("admin", "/staff/vouchers", 8),
    "commissions": ("admin", "/staff/commissions", 10),
    "lockouts": ("admin", "/staff/lockouts", 7),
}


@dataclass
class World:
    parties: object
    admin: object
    packaged: int
    quote: int
    financial: int
    order: int
    pending_listing: int
    quote_request: int
    rng: random.Random
    batch: int = 0  # the latest settlement batch and the institution's statement in it
    statement: int = 0
    programme: int = 0  # the voucher programme of the settled orders, and their month
    month: str = ""

    def ids(self) -> dict:
        return {"packaged": self.packaged, "quote": self.quote, "financial": self.financial,
                "order": self.order, "provider_org": self.parties.provider_org.id,
                "pending_listing": self.pending_listing, "quote_request": self.quote_request,
                "batch": self.batch, "statement": self.statement,
                "programme": self.programme, "month": self.month}


# --------------------------------------------------------------------------- building

def _more_of_everything(session, world: World, n: int) -> None:
    """``n`` more of each thing the measured pages list (idempotent in shape, not in rows)."""
    p = world.parties
    provider_listings = [factories.product(session, p.provider_org, title=f"Patent filing {i}",
                                           prices=(300000 + i,)) for i in range(n)]
    for listing in provider_listings[: max(1, n // 2)]:
        session.add(Favourite(user_id=p.buyer.id, product_id=listing.id,
                              seen_price_from=listing.price_from))
    measured_listing = session.get(Product, world.packaged)
    for i in range(n):
        # Reviews of the measured listing, each by an enterprise of its own.
        buyer_org = factories.enterprise(session)
        other = replace(p, buyer_org=buyer_org, buyer=factories.user(session, buyer_org))
        bought = order(session, other, status="completed", product=measured_listing,
                       completed_at=utcnow() - timedelta(days=30))
        session.add(Review(order_id=bought.id, side="buyer", author_org_id=buyer_org.id,
                           author_user_id=other.buyer.id, subject_org_id=p.provider_org.id,
                           product_id=measured_listing.id, quality=4, timeliness=4,
                           communication=5, value=4, score_x100=425, body=f"Solid work {i}",
                           published_at=utcnow() - timedelta(days=2)))
        # Our buyer's orders with institutions of their own.
        institution = factories.provider(session)
        order(session, replace(p, provider_org=institution,
                               provider=factories.user(session, institution)),
              status="paid", product=factories.product(session, institution))
    for i in range(n):
        completed = order(session, p, status="completed", product=provider_listings[i],
                          completed_at=utcnow() - timedelta(days=30))
        session.add(Review(order_id=completed.id, side="buyer", author_org_id=p.buyer_org.id,
                           author_user_id=p.buyer.id, subject_org_id=p.provider_org.id,
                           product_id=provider_listings[i].id, quality=5, timeliness=4,
                           communication=5, value=4, score_x100=450, body=f"Good work {i}",
                           published_at=utcnow() - timedelta(days=1)))
        order(session, p, status=["paid", "accepted", "in_progress", "delivered"][i % 4],
              product=provider_listings[i])
        factories.product(session, p.provider_org, status="pending_review",
                          title=f"Awaiting review {i}")
        factories.provider(session, verified=False).verification_status = "pending"
        record(session, world.admin, "note", p.provider_org, f"Checked {i}")
    # Quote requests: ours to other institutions, and other enterprises' to us.
    our_quote_listing = session.get(Product, world.quote)
    for i in range(n):
        institution = factories.provider(session)
        listing = factories.product(session, institution, mode="quote", title=f"Strategy {i}")
        quotes.request_quote(session, p.buyer, listing, f"Need {i}", budget=None,
                             deadline=utcnow().date() + timedelta(days=60))
        enterprise = factories.enterprise(session)
        quotes.request_quote(session, factories.user(session, enterprise), our_quote_listing,
                             f"Their need {i}", budget=None,
                             deadline=utcnow().date() + timedelta(days=60))
    measured = session.get(type(completed), world.order)
    for i in range(n):
        session.add(OrderEvent(order_id=measured.id, name="note", actor_id=p.provider.id,
                               actor_role="provider", note=f"Step {i}"))
        session.add(OrderMessage(order_id=measured.id, author_id=p.buyer.id,
                                 author_role="buyer", body=f"Question {i}"))
    session.flush()
    for listing in provider_listings[: max(1, n // 3)]:
        carts.add(session, p.buyer, listing.packages[0].id, 1)
    session.commit()
    index_listings(session, [listing.id for listing in provider_listings])


def _completed_and_paid(session, p, provider_org, provider, programme) -> Order:
    """A completed order with the money a real one has (part voucher, the rest by transfer,
    captured), bought by an enterprise of its own, so that settlement takes it."""
    buyer_org = factories.enterprise(session)
    p = replace(p, provider_org=provider_org, provider=provider, buyer_org=buyer_org,
                buyer=factories.user(session, buyer_org))
    voucher = vouchers.grant(session, p.staff, programme, buyer_org, 100_000)
    listing = factories.product(session, provider_org, prices=(250000,), voucher_eligible=True)
    placed = order(session, p, price=250000, product=listing)
    vouchers.apply_to_order(session, voucher, placed)
    payment = payments.begin_bank_transfer(session, placed)
    payments.mark_transfer_received(session, placed, p.staff, payment.amount, "TRX")
    session.commit()
    services.accept(session, placed, provider)
    services.deliver(session, placed, provider, "Report delivered")
    services.complete(session, placed, p.buyer)
    session.commit()
    return placed


def voucher_programme(session, world: World):
    """The programme that pays part of every settled order (made once)."""
    if world.programme:
        return session.get(VoucherProgramme, world.programme)
    today = utcnow().date()
    programme = vouchers.create_programme(session, world.admin, vouchers.ProgrammeInput(
        name="Innovation vouchers 创新券", funder="Science bureau", budget=100_000_000,
        valid_from=today - timedelta(days=40), valid_until=today + timedelta(days=300),
        max_share_bp=3000, eligible_category_ids=[]))
    session.commit()
    world.programme = programme.id
    return programme


def settle_new_orders(session, world: World, ours: int, other_institutions: int) -> None:
    """``ours`` more settleable orders of the world's institution and one each of
    ``other_institutions`` new ones, then a settlement run: the batch and our statement
    in it are the ones the settlement pages show."""
    p = world.parties
    programme = voucher_programme(session, world)
    made = [_completed_and_paid(session, p, p.provider_org, p.provider, programme)
            for _ in range(ours)]
    for _ in range(other_institutions):
        org = factories.provider(session)
        made.append(_completed_and_paid(session, p, org, factories.user(session, org),
                                        programme))
    session.refresh(made[-1])
    world.month = f"{made[-1].completed_at:%Y-%m}"
    result = settlement.run_period(session, settlement.month(f"{made[-1].completed_at:%Y-%m}"),
                                   world.admin)
    session.commit()
    assert result.created and result.batch.order_count == len(made), result.waiting
    world.batch = result.batch.id
    world.statement = session.scalar(select(SettlementStatement.id).where(
        SettlementStatement.batch_id == result.batch.id,
        SettlementStatement.provider_org_id == p.provider_org.id))


def bulk_catalogue(session, rng: random.Random, institutions: int, listings: int) -> None:
    """Verified institutions and published packaged listings, inserted in bulk."""
    categories = list(session.scalars(select(Category.id).where(Category.parent_id.is_not(None))))
    now = utcnow()
    codes: set[str] = set(session.scalars(select(Organisation.credit_code)))
    org_rows = []
    while len(org_rows) < institutions:
        code = generate(rng)
        if code in codes:
            continue
        codes.add(code)
        org_rows.append({"kind": "provider", "name": f"Bulk Institution {len(org_rows)}",
                         "credit_code": code, "region": "suzhou", "institution_type": "advisory",
                         "regions_served": ["jiangsu"], "verification_status": "verified",
                         "verified_at": now, "description": "Advisory services."})
    org_ids = list(session.scalars(insert(Organisation).returning(
        Organisation.id, sort_by_parameter_order=True), org_rows))
    product_rows = [{
        "provider_id": org_ids[i % len(org_ids)], "category_id": categories[i % len(categories)],
        "title": f"Bulk service {i}", "summary": "A service for growing companies.",
        "description": "Details.", "regions": ["jiangsu"], "tags": ["service"],
        "pricing_mode": "packaged", "currency": "CNY", "price_from": 100000 + i,
        "delivery_days": 10, "status": "published", "published_at": now - timedelta(minutes=i),
    } for i in range(listings)]
    for start in range(0, len(product_rows), 1000):
        ids = list(session.scalars(insert(Product).returning(
            Product.id, sort_by_parameter_order=True), product_rows[start:start + 1000]))
        session.execute(insert(Package), [{
            "product_id": product_id, "position": 0, "name": "Standard",
            "price": 100000 + start + n, "delivery_days": 10, "deliverables": "Report"}
            for n, product_id in enumerate(ids)])
    session.commit()


def index_listings(session, product_ids) -> None:
    from flask import current_app

    ix = open_index(current_app.config["SEARCH_INDEX_DIR"])
    writer = ix.writer(timeout=30.0)
    for product in load_products(session, product_ids):
        writer.update_document(**document_for(product))
    writer.commit()


def build_world(session) -> World:
    rng = random.Random(11)
    p = parties(session)
    admin = factories.user(session, role="admin")
    packaged = factories.product(session, p.provider_org, title="Invention patent filing")
    quote = factories.product(session, p.provider_org, mode="quote", title="Patent strategy")
    financial = factories.product(session, p.provider_org, mode="financial",
                                  category_slug="ip-pledge", title="IP pledge loan")
    measured = order(session, p, status="in_progress", product=packaged)
    pending = factories.product(session, p.provider_org, status="pending_review",
                                title="Utility model filing, revised")
    today = utcnow().date()
    asked = quotes.request_quote(session, p.buyer, quote, "A patent strategy for our sensors.",
                                 budget=None, deadline=today + timedelta(days=60))
    quotes.send_quote(session, p.provider, asked, 3_000_000, today + timedelta(days=45),
                      "Includes one revision round.", [
                          {"title": "Landscape search", "share_bp": 4000,
                           "due_date": (today + timedelta(days=15)).isoformat()},
                          {"title": "Strategy report", "share_bp": 6000,
                           "due_date": (today + timedelta(days=45)).isoformat()}],
                      valid_days=14)
    session.commit()
    world = World(p, admin, packaged.id, quote.id, financial.id, measured.id, pending.id,
                  asked.id, rng)
    index_listings(session, [packaged.id, quote.id, financial.id])
    _more_of_everything(session, world, 2)
    return world


def reattach(session, world: World) -> None:
    """The world's people and organisations, loaded again in ``session``."""
    p = world.parties
    for name in ("buyer_org", "buyer", "provider_org", "provider", "staff", "outsider"):
        setattr(p, name, session.get(type(getattr(p, name)), getattr(p, name).id))
    world.admin = session.get(type(world.admin), world.admin.id)


def measure(app, world: World) -> dict[str, tuple[int, int, str]]:
    """page -> (status, statement count, report) for every page in PAGES."""
    from order_support import login

    results = {}
    clients = {}
    for role, user in (("buyer", world.parties.buyer), ("provider", world.parties.provider),
                       ("admin", world.admin)):
        clients[role] = app.test_client()
        login(clients[role], user)
    clients[None] = app.test_client()
    favourites_ids = [world.packaged, world.quote, world.financial]
    with clients["buyer"].session_transaction() as browser_session:
        browser_session[COMPARE_KEY] = favourites_ids
    for name, (role, template, _budget) in PAGES.items():
        client = clients[role]
        path = template.format(**world.ids())
        client.get(path)  # warm: first-request work (templates, index readers) is not per page
        db.session.remove()
        with count_queries() as counted:
            response = client.get(path)
            response.get_data()  # a streamed response (CSV) runs its queries as it is read
        results[name] = (response.status_code, counted.count, counted.report())
    return results


@pytest.fixture(scope="module")
def budgets(app):
    """Statement counts of every page at the small size and at 10x the demo catalogue."""
    _wipe(db.engine)
    forget_index(app.config["SEARCH_INDEX_DIR"])
    shutil.rmtree(app.config["SEARCH_INDEX_DIR"], ignore_errors=True)
    # Requests must not run inside an app context of ours: Flask would reuse it, and with it
    # ``g`` (the CSRF token and the logged-in user) across clients.
    with app.app_context():
        seed_categories(db.session)
        db.session.commit()
        world = build_world(db.session)
        settle_new_orders(db.session, world, ours=2, other_institutions=1)
    small = measure(app, world)
    with app.app_context():
        session = db.session
        reattach(session, world)
        # Ten times: the demo catalogue x10, and 10x the rows on every measured page.
        bulk_catalogue(session, world.rng, institutions=400, listings=10 * DEMO_LISTINGS)
        _more_of_everything(session, world, 18)
        settle_new_orders(session, world, ours=20, other_institutions=10)
        listings = session.scalar(select(func.count(Product.id)))
    large = measure(app, world)
    shutil.rmtree(app.config["SEARCH_INDEX_DIR"], ignore_errors=True)
    forget_index(app.config["SEARCH_INDEX_DIR"])
    return {"small": small, "large": large, "listings": listings}


def test_the_large_catalogue_is_ten_times_the_demo(budgets):
    assert budgets["listings"] >= 10 * DEMO_LISTINGS


@pytest.mark.parametrize("page_name", list(PAGES))
def test_page_stays_within_its_query_budget(budgets, page_name):
    budget = PAGES[page_name][2]
    small_status, small_count, small_report = budgets["small"][page_name]
    large_status, large_count, large_report = budgets["large"][page_name]
    assert small_status == 200, f"{page_name}: status {small_status}"
    assert large_status == 200, f"{page_name}: status {large_status}"
    assert large_count <= budget, f"{page_name}: over its budget of {budget}\n{large_report}"
    assert large_count == small_count, (
        f"{page_name}: {small_count} statements with a few rows, {large_count} with ten times as "
        f"many (N+1)\nsmall:\n{small_report}\nlarge:\n{large_report}")
