"""Comparison: up to four listings side by side.

The picked ids live in the visitor's session (a short list of integers), so comparing works
before signing in. These functions are pure list rules plus one loading query; the views
keep the list in ``flask.session``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.models import Category, Product
from catalog.services import visible_products_condition

MAX_COMPARE = 4
SESSION_KEY = "compare"


class CompareFull(Exception):
    """A fifth listing was offered."""


def clean_ids(raw) -> list[int]:
    """The stored list, whatever the cookie holds: distinct positive ints, at most four."""
    ids: list[int] = []
    for value in raw if isinstance(raw, list) else []:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if number > 0 and number not in ids:
            ids.append(number)
    return ids[:MAX_COMPARE]


def add(ids: list[int], product_id: int) -> list[int]:
    """``ids`` with ``product_id`` appended; raises CompareFull for a fifth listing."""
    ids = clean_ids(ids)
    if product_id in ids:
        return ids
    if len(ids) >= MAX_COMPARE:
        raise CompareFull(f"You can compare up to {MAX_COMPARE} listings. "
                          "Remove one before adding another.")
    return [*ids, product_id]


def remove(ids: list[int], product_id: int) -> list[int]:
    return [pid for pid in clean_ids(ids) if pid != product_id]


def is_comparable(session: Session, product_id: int) -> bool:
    return session.scalar(select(Product.id).where(
        Product.id == product_id, visible_products_condition())) is not None


@dataclass
class Comparison:
    products: list[Product]
    missing: list[int]  # ids that are no longer public (dropped from the list)

    @property
    def same_currency(self) -> bool:
        return len({p.currency for p in self.products}) <= 1


def load_comparison(session: Session, ids: list[int]) -> Comparison:
    """The picked listings that are still public, in the order they were picked."""
    ids = clean_ids(ids)
    if not ids:
        return Comparison(products=[], missing=[])
    found = {p.id: p for p in session.scalars(
        select(Product)
        .where(Product.id.in_(ids), visible_products_condition())
        .options(joinedload(Product.provider),
                 joinedload(Product.category).joinedload(Category.parent),
                 selectinload(Product.packages))
    ).unique()}
    return Comparison(products=[found[pid] for pid in ids if pid in found],
                      missing=[pid for pid in ids if pid not in found])
