"""Paging of lists: one page of a query's results and the page number from a query string.

Used by every package's list pages, so it sits in the marketplace core.
"""

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session


class PageNumbers:
    """What the pagination macro reads of a page: from ``total``, ``page`` and ``page_size``
    (shared by list pages and search results)."""

    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.page_size)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass
class Page(PageNumbers):
    """One page of results; ``page`` is already clamped to 1..pages."""

    items: list
    total: int
    page: int
    page_size: int
    extra: dict = field(default_factory=dict)



def parse_page(raw) -> int:
    """A page number from the query string; anything unusable means page 1."""
    try:
        page = int(str(raw).strip())
    except (TypeError, ValueError):
        return 1
    return max(1, min(page, 1_000_000))


def paginate(session: Session, stmt, page: int, page_size: int, *, scalars: bool = True,
             total: int | None = None) -> Page:
    """Run ``stmt`` for one page. Pages past the end show the last page. ``total``: the
    number of rows ``stmt`` gives, when the caller has already counted them."""
    page_size = max(1, int(page_size))
    if total is None:
        total = session.scalar(
            select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = max(1, min(page, pages))
    if not total:
        return Page(items=[], total=0, page=1, page_size=page_size)
    limited = stmt.limit(page_size).offset((page - 1) * page_size)
    if scalars:
        items = list(session.scalars(limited).unique())
    else:
        items = list(session.execute(limited).all())
    return Page(items=items, total=total, page=page, page_size=page_size)
