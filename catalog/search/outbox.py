"""The search outbox: the only way listing changes reach the search index.

Every service that changes what the public can find or sort by (publish, edit approval,
suspend, archive, institution suspension or reinstatement, a completed order's sales count, a
rating, a credibility change) calls ``enqueue`` inside its own transaction, so the index update
commits or rolls back together with the change. A single writer applies the rows
to the index later and deletes them.

Every enqueue also bumps the catalogue version (``catalog/page_cache.py``) in the same
transaction, so cached public pages and category counts are replaced the moment the change
commits, in every process.

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


def enqueue(session: Session, product_id: int, reason: str) -> None:
    session.add(SearchOutbox(product_id=product_id, reason=reason[:40]))
    page_cache.bump(session)


def enqueue_many(session: Session, product_ids: Iterable[int], reason: str) -> int:
    rows = [SearchOutbox(product_id=pid, reason=reason[:40]) for pid in product_ids]
    session.add_all(rows)
    if rows:
        page_cache.bump(session)
    return len(rows)


def enqueue_provider(session: Session, provider_id: int, reason: str) -> int:
    """Queue every listing of an institution (its suspension hides or restores all of them)."""
    ids = session.scalars(select(Product.id).where(Product.provider_id == provider_id)).all()
    return enqueue_many(session, ids, reason)


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
