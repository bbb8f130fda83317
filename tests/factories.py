"""Small builders for test data, written straight to the database through the models.

Each returns a flushed object; the caller commits. Defaults give a verified institution with
a published packaged listing, the common case for storefront tests.
"""

import itertools
import random

from sqlalchemy import select

from catalog.models import Category, Package, Product
from marketplace.credit_code import generate
from marketplace.database import utcnow
from marketplace.models import Organisation, User
from marketplace.passwords import hash_password

PASSWORD = "Correct-horse-42"
_counter = itertools.count(1)
_rng = random.Random(7)
_hash_cache: dict[str, str] = {}


def _hash(password: str) -> str:
    # Hashing is deliberately slow; tests reuse one hash per distinct password.
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    return _hash_cache[password]


def category(session, slug: str = "patent-application") -> Category:
    return session.scalar(select(Category).where(Category.slug == slug))


def enterprise(session, name: str | None = None, **fields) -> Organisation:
    n = next(_counter)
    org = Organisation(kind="enterprise", name=name or f"Test Enterprise {n} Co., Ltd.",
                       credit_code=generate(_rng), region="suzhou_sip", industry="electronics",
                       size="small", contact_name="Li Lei", contact_phone="0512-6000000",
                       verification_status="verified", **fields)
    session.add(org)
    session.flush()
    return org


def provider(session, name: str | None = None, verified: bool = True, **fields) -> Organisation:
    n = next(_counter)
    fields.setdefault("institution_type", "ip_agency")
    fields.setdefault("regions_served", ["suzhou", "jiangsu"])
    org = Organisation(kind="provider", name=name or f"Test Institution {n}",
                       credit_code=generate(_rng), region="suzhou",
                       verification_status="verified" if verified else "unverified",
                       verified_at=utcnow() if verified else None,
                       description="We file **patents** for SMEs.", **fields)
    session.add(org)
    session.flush()
    return org


def user(session, organisation: Organisation | None = None, role: str | None = None,
         email: str | None = None, password: str = PASSWORD, **fields) -> User:
    n = next(_counter)
    if role is None:
        role = organisation.kind if organisation else "staff"
    account = User(email=email or f"user{n}@example.com", full_name=f"Test User {n}",
                   password_hash=_hash(password), role=role, organisation=organisation,
                   is_org_owner=organisation is not None, **fields)
    session.add(account)
    session.flush()
    return account


def product(session, provider_org: Organisation | None = None, *, mode: str = "packaged",
            status: str = "published", category_slug: str = "patent-application",
            title: str | None = None, prices: tuple[int, ...] = (500000, 1200000),
            **fields) -> Product:
    n = next(_counter)
    provider_org = provider_org or provider(session)
    fields.setdefault("summary", "Invention patent filing handled end to end by registered agents.")
    fields.setdefault("description", "## What you get\n\n- Prior-art search\n- Drafting and filing")
    fields.setdefault("regions", ["suzhou", "jiangsu"])
    fields.setdefault("tags", ["patent", "专利"])
    listing = Product(provider=provider_org, category=category(session, category_slug),
                      title=title or f"Test listing {n}", pricing_mode=mode, status=status,
                      published_at=utcnow() if status == "published" else None, **fields)
    if mode == "packaged":
        for position, price in enumerate(prices):
            listing.packages.append(Package(
                position=position, name=["Basic", "Standard", "Premium"][position], price=price,
                delivery_days=10 * (position + 1), deliverables="Search report\nFiled application"))
        listing.price_from = min(prices)
        listing.delivery_days = 10
    elif mode == "quote":
        listing.quote_brief = "Describe the technology, target markets and deadline."
    else:
        listing.amount_min, listing.amount_max = 50_000_000, 500_000_000
        listing.rate_min_bp, listing.rate_max_bp = 345, 480
        listing.term_min_months, listing.term_max_months = 6, 36
        listing.service_fee = 0
        listing.price_from = 0
    session.add(listing)
    session.flush()
    return listing
