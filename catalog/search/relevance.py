"""Scoring search relevance against the shipped relevance set (tests/data/search_relevance.json).

Each query of the set names what counts as a right answer: category or sub-category slugs,
and/or substrings of listing titles (any case). A query is scored on the top five listings ``search``
returns:

- precision@5: right listings among the top five, divided by five, or by the number of right
  listings the catalogue holds when that is fewer (a query with three right listings in the
  whole catalogue scores 1.0 when all three come first);
- found: at least one right listing in the top five.

Used by tests/test_search_relevance.py (the floor that may only go up) and by
``bench/search.py --relevance`` (the table per kind of query).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from catalog.models import Category, Product

RELEVANCE_SET = (Path(__file__).resolve().parents[2] / "tests" / "data"
                 / "search_relevance.json")
KINDS = ("chinese", "english", "pinyin", "initials", "traditional", "abbreviation", "typo",
         "mixed")
TOP = 5


@dataclass
class QueryScore:
    q: str
    kind: str
    precision: float
    found: bool
    top: list[str]
    right_total: int


def load_set(path: Path = RELEVANCE_SET) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["queries"]


def _right_ids(spec: dict, listings) -> set[int]:
    slugs = set(spec.get("categories") or ())
    titles = tuple(t.lower() for t in spec.get("titles") or ())
    right = set()
    for product in listings:
        category = product.category
        top = category.parent or category
        # Both languages of the listing, as the demo used to write them in one title.
        title = " · ".join(filter(None, [product.title, product.title_alt])).lower()
        if category.slug in slugs or top.slug in slugs or any(t in title for t in titles):
            right.add(product.id)
    return right


def score(session: Session, index_dir, queries: list[dict] | None = None) -> list[QueryScore]:
    """Run every query of the set through ``catalog.search.query.search`` and score it."""
    from catalog.search.query import CategoryTree, SearchParams, search
    from catalog.services import visible_products_condition

    queries = load_set() if queries is None else queries
    listings = list(session.scalars(
        select(Product).where(visible_products_condition())
        .options(joinedload(Product.category).joinedload(Category.parent))).unique())
    tree = CategoryTree.load(session)
    scores = []
    for spec in queries:
        right = _right_ids(spec, listings)
        page = search(session, index_dir, SearchParams.from_args({"q": spec["q"]}, tree),
                      page_size=TOP, tree=tree)
        ids = [hit.product.id for hit in page.hits[:TOP]]
        hits = sum(1 for i in ids if i in right)
        denominator = min(TOP, len(right)) or 1
        scores.append(QueryScore(
            q=spec["q"], kind=spec["kind"], precision=hits / denominator, found=hits > 0,
            top=[hit.product.title for hit in page.hits[:TOP]], right_total=len(right)))
    return scores


def table(scores: list[QueryScore]) -> list[tuple[str, int, float, float]]:
    """(kind, queries, mean precision@5, share found in top five) per kind, then "all"."""
    by_kind = defaultdict(list)
    for item in scores:
        by_kind[item.kind].append(item)
    rows = []
    for kind in [k for k in KINDS if k in by_kind] + sorted(set(by_kind) - set(KINDS)):
        items = by_kind[kind]
        rows.append((kind, len(items), sum(i.precision for i in items) / len(items),
                     sum(i.found for i in items) / len(items)))
    if scores:
        rows.append(("all", len(scores), sum(i.precision for i in scores) / len(scores),
                     sum(i.found for i in scores) / len(scores)))
    return rows


def format_table(scores: list[QueryScore]) -> str:
    lines = [f"{'kind':14} {'queries':>7} {'P@5':>6} {'found@5':>8}"]
    for kind, count, precision, found in table(scores):
        lines.append(f"{kind:14} {count:7d} {precision:6.3f} {found:8.3f}")
    return "\n".join(lines)


def format_misses(scores: list[QueryScore]) -> str:
    lines = []
    for item in scores:
        if item.precision < 1:
            lines.append(f"[{item.kind}] {item.q!r}: P@5 {item.precision:.2f} "
                         f"(right in catalogue: {item.right_total}); top: {item.top}")
    return "\n".join(lines)
