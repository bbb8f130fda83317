"""The search outbox: the only way listing changes reach the search index.

Every service that changes what the public can find (publish, edit approval, suspend, archive,
institution suspension or reinstatement) calls ``enqueue`` inside its own transaction, so the
index update commits or rolls back together with the change. A single writer applies the rows
to the index later and deletes them.

Every enqueue also bumps the catalogue version (``catalog/page_cache.py``) in the same
transaction, so cached public pages and category counts are replaced the moment the change
commits, in every process.
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
