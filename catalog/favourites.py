"""Favourites ("collect"): enterprise members star listings and institutions.

Collectors of an institution are told when it is suspended or reinstated
(``notify_provider_collectors``, called by ``providers.onboarding`` in the same transaction).

Notes to the collector when a starred listing's price changes or it is withdrawn come from
``notify_favourite_changes``. It is called where outbox rows are consumed: the search-outbox
drain (``catalog.search.worker``) and a full rebuild, which deletes the rows it covered
(``catalog.search.index.reindex_all``), because every change the public can notice (publish,
edit approval, suspension, archiving, institution suspension) already goes through the outbox.
It compares each favourite with what its user last saw (``Favourite.seen_price_from`` and the
user's latest favourite notice for that listing), so calling it again for the same state,
from the drain or from a listing service, never sends a second note.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from catalog.models import Favourite, Product
from catalog.services import (
    listed_providers_condition,
    visible_ids,
    visible_products_condition,
)
from marketplace import permissions
from marketplace.models import Notification, Organisation, User
from marketplace.notifications import notify
from marketplace.paging import Page, paginate
from orders.money import format_amount

NOTICE_KINDS = ("favourite_price", "favourite_withdrawn", "favourite_available")


class FavouriteError(Exception):
    """A favourite that cannot be added (hidden listing, not an enterprise member...)."""


def can_collect(user) -> bool:
    """Only enterprise members collect (DESIGN.md §2)."""
    return permissions.is_buyer_account(user)


def product_link(product_id: int) -> str:
    return f"/products/{product_id}"


def _bump_count(session: Session, product_id: int, delta: int) -> None:
    """One UPDATE, no read-modify-write; ``updated_at`` unchanged (not an edit)."""
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(favourite_count=case((Product.favourite_count + delta < 0, 0),
                                     else_=Product.favourite_count + delta),
                updated_at=Product.updated_at)
        .execution_options(synchronize_session=False)
    )


def _visible_product(session: Session, product_id: int) -> Product | None:
    return session.scalar(
        select(Product).where(Product.id == product_id, visible_products_condition()))


def _listed_provider(session: Session, provider_id: int) -> Organisation | None:
    return session.scalar(
        select(Organisation).where(Organisation.id == provider_id, listed_providers_condition()))


def toggle_product(session: Session, user: User, product_id: int) -> bool:
    """Star or un-star a listing; returns whether it is now a favourite."""
    if not can_collect(user):
        raise FavouriteError("Only enterprise members can collect listings.")
    existing = session.scalar(select(Favourite).where(
        Favourite.user_id == user.id, Favourite.product_id == product_id))
    if existing is not None:
        session.delete(existing)
        session.flush()
        _bump_count(session, product_id, -1)
        return False
    product = _visible_product(session, product_id)
    if product is None:
        raise FavouriteError("This listing is not available.")
    try:
        with session.begin_nested():
            session.add(Favourite(user_id=user.id, product_id=product_id,
                                  seen_price_from=product.price_from))
    except IntegrityError:
        return True  # a double click from another tab got there first
    _bump_count(session, product_id, 1)
    return True


def toggle_provider(session: Session, user: User, provider_id: int) -> bool:
    """Star or un-star an institution; returns whether it is now a favourite."""
    if not can_collect(user):
        raise FavouriteError("Only enterprise members can collect institutions.")
    existing = session.scalar(select(Favourite).where(
        Favourite.user_id == user.id, Favourite.provider_id == provider_id))
    if existing is not None:
        session.delete(existing)
        session.flush()
        return False
    if _listed_provider(session, provider_id) is None:
        raise FavouriteError("This institution is not available.")
    try:
        with session.begin_nested():
            session.add(Favourite(user_id=user.id, provider_id=provider_id))
    except IntegrityError:
        return True
    return True


@dataclass
class FavouriteIds:
    products: frozenset[int]
    providers: frozenset[int]


def favourite_ids(session: Session, user) -> FavouriteIds:
    """What the user has starred, for drawing star buttons on a page (one query)."""
    if not can_collect(user):
        return FavouriteIds(frozenset(), frozenset())
    rows = session.execute(select(Favourite.product_id, Favourite.provider_id)
                           .where(Favourite.user_id == user.id)).all()
    return FavouriteIds(
        frozenset(p for p, _ in rows if p is not None),
        frozenset(o for _, o in rows if o is not None),
    )


@dataclass
class FavouriteProduct:
    favourite: Favourite
    product: Product
    available: bool
    price_changed: bool


@dataclass
class FavouriteList:
    products: Page  # of FavouriteProduct
    providers: Page  # of (Favourite, Organisation, listed)


def list_favourites(session: Session, user: User, *, product_page: int = 1,
                    provider_page: int = 1, page_size: int = 24) -> FavouriteList:
    """The favourites page: services and institutions, each newest first and paged on its
    own; withdrawn ones kept and marked unavailable."""
    newest = (Favourite.created_at.desc(), Favourite.id.desc())
    mine = select(Favourite).where(Favourite.user_id == user.id)
    products = paginate(session, mine.where(Favourite.product_id.is_not(None)).options(
        joinedload(Favourite.product).joinedload(Product.provider),
        joinedload(Favourite.product).joinedload(Product.category)).order_by(*newest),
        product_page, page_size)
    public = visible_ids(session, [f.product_id for f in products.items])
    products.items = [
        FavouriteProduct(f, f.product, f.product_id in public,
                         f.product_id in public and f.product.price_from != f.seen_price_from)
        for f in products.items]
    providers = paginate(session, mine.where(Favourite.provider_id.is_not(None)).options(
        joinedload(Favourite.provider)).order_by(*newest), provider_page, page_size)
    providers.items = [(f, f.provider, permissions.is_listed_provider(f.provider))
                       for f in providers.items]
    return FavouriteList(products=products, providers=providers)


def _price_text(product: Product, amount: int | None) -> str:
    if amount is None:
        return "price on request"
    return format_amount(amount, product.currency)


def notify_favourite_changes(session: Session, product: Product,
                             old_price_from: int | None = None) -> int:
    """Tell collectors of ``product`` about a price change or withdrawal; returns notes sent.

    ``old_price_from`` is accepted for listing services that know it, but each favourite's
    own ``seen_price_from`` is the baseline: it is what that user was last told.
    """
    favourites = list(session.scalars(
        select(Favourite).where(Favourite.product_id == product.id)))
    if not favourites:
        return 0
    available = product.id in visible_ids(session, [product.id])
    link = product_link(product.id)
    users = {u.id: u for u in session.scalars(
        select(User).where(User.id.in_([f.user_id for f in favourites])))}
    last_kind = _last_notice_kinds(session, [f.user_id for f in favourites], link)
    sent = 0
    for favourite in favourites:
        user = users.get(favourite.user_id)
        if user is None:
            continue
        previous = last_kind.get(user.id)
        if not available:
            if previous != "favourite_withdrawn":
                notify(session, user, "favourite_withdrawn",
                       f"A listing you collected is no longer available: {product.title}"[:200],
                       "The institution or the platform has withdrawn this listing. It stays "
                       "in your favourites in case it comes back.", link=link, email=False)
                sent += 1
            continue
        if previous == "favourite_withdrawn":
            notify(session, user, "favourite_available",
                   f"A listing you collected is available again: {product.title}"[:200],
                   link=link, email=False)
            sent += 1
        if product.price_from != favourite.seen_price_from:
            notify(session, user, "favourite_price",
                   f"Price changed for {product.title}"[:200],
                   f"Was {_price_text(product, favourite.seen_price_from)}, now "
                   f"{_price_text(product, product.price_from)}.", link=link, email=False)
            favourite.seen_price_from = product.price_from
            sent += 1
    return sent


def provider_link(provider_id: int) -> str:
    return f"/institutions/{provider_id}"


def notify_provider_collectors(session: Session, org: Organisation) -> int:
    """Tell the members who starred institution ``org`` that it was suspended (or is listed
    again after a suspension they were told of); returns notes sent.

    Called by the suspension and reinstatement services in their own transaction. Like the
    listing notes it compares with the user's latest note for the institution, so calling it
    twice for the same state says nothing.
    """
    user_ids = list(session.scalars(
        select(Favourite.user_id).where(Favourite.provider_id == org.id)))
    if not user_ids:
        return 0
    listed = _listed_provider(session, org.id) is not None
    link = provider_link(org.id)
    last_kind = _last_notice_kinds(session, user_ids, link)
    sent = 0
    for user in session.scalars(select(User).where(User.id.in_(user_ids))):
        previous = last_kind.get(user.id)
        if not listed and previous != "favourite_withdrawn":
            notify(session, user, "favourite_withdrawn",
                   f"An institution you collected has been suspended: {org.name}"[:200],
                   "Its listings are hidden from the supermarket until the platform "
                   "reinstates it. It stays in your favourites in case it comes back.",
                   link=link, email=False)
            sent += 1
        elif listed and previous == "favourite_withdrawn":
            notify(session, user, "favourite_available",
                   f"An institution you collected is back: {org.name}"[:200],
                   link=link, email=False)
            sent += 1
    return sent


def _last_notice_kinds(session: Session, user_ids: list[int], link: str) -> dict[int, str]:
    rows = session.execute(
        select(Notification.user_id, Notification.kind)
        .where(Notification.user_id.in_(user_ids), Notification.link == link,
               Notification.kind.in_(NOTICE_KINDS))
        .order_by(Notification.created_at, Notification.id)
    ).all()
    latest: dict[int, str] = {}
    for user_id, kind in rows:
        latest[user_id] = kind
    return latest
