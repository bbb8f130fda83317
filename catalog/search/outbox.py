"""The search outbox: the only way listing changes reach the search index.

Every service that changes what the public can find or sort by (publish, edit approval,
suspend, archive, institution suspension or reinstatement, a completed order's sales count, a
rating, a credibility change) calls ``enqueue`` inside its own transaction, so the index update
commits or rolls back together with the change. A single writer applies the rows
to the index later and deletes them.

Every enqueue also bumps the catalogue version (``catalog/page_cache.py``) in the same
transaction, in the scopes of the listings queued (their pages and cards, their institution's
list, their category's pages), so those cached public pages are replaced the moment the
change commits, in every process; the change itself names any wider scope (a listing that
appears or vanishes: the home page, the directory, the category counts). A credibility
change queues its institution's listings without naming them: its ``Organisation`` update
names the institution, and every page showing its listings is filed under it.

``enqueue_repair`` is the exception: a search that meets a stale hit (the index lags the
database) asks for that listing to be re-indexed. Nothing in the database changed, so it does
not bump the version, and it queues a listing only while no row for it is pending, so a stale
hit seen on every request while the drain is down writes one row, not one per request.
(Listing changes always queue their own row: a pending row may already have been read by a
drain that is about to delete it.)
"""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import page_cache
from catalog.models import Product, SearchOutbox


def _listing_scopes(session: Session, product_id: int) -> set[str]:
    product = session.get(Product, product_id)
    if product is None:
        return {page_cache.EVERYTHING}
    return page_cache.listing_scopes(product.id, product.provider_id, product.category_id,
                                     listed=False)


def enqueue(session: Session, product_id: int, reason: str) -> None:
    session.add(SearchOutbox(product_id=product_id, reason=reason[:40]))
    page_cache.bump(session, _listing_scopes(session, product_id))


def enqueue_many(session: Session, product_ids: Iterable[int], reason: str, *,
                 pages: bool = True) -> int:
    """Queue listings; ``pages=False`` when the caller's change already names the pages
    that show them (an institution's credibility)."""
    rows = [SearchOutbox(product_id=pid, reason=reason[:40]) for pid in product_ids]
    session.add_all(rows)
    if rows and pages:
        page_cache.bump(session, page_cache.listings_scopes(
            session, [row.product_id for row in rows], listed=False))
    return len(rows)


def enqueue_provider(session: Session, provider_id: int, reason: str) -> int:
    """Queue every listing of an institution (its suspension hides or restores all of them)."""
    ids = session.scalars(select(Product.id).where(Product.provider_id == provider_id)).all()
    page_cache.bump(session, page_cache.institution_scopes(session, provider_id))
    return enqueue_many(session, ids, reason, pages=False)


def enqueue_repair(session: Session, product_ids: Iterable[int], reason: str) -> int:
    """Queue stale search hits for re-indexing, each only if no row for it is pending.

    Returns the number of rows added. No catalogue version bump (see the module docstring).
    """
    wanted = set(product_ids)
    if not wanted:
        return 0
    pending = set(session.scalars(select(SearchOutbox.product_id).where(
        SearchOutbox.product_id.in_(wanted))))
    rows = [SearchOutbox(product_id=pid, reason=reason[:40]) for pid in sorted(wanted - pending)]
    session.add_all(rows)
    return len(rows)
