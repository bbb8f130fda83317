"""The demand board (需求大厅): open public needs for institution members, searched with the
catalogue's analyzer (jieba for Chinese, stemming for English) and filtered by category,
budget, region and deadline, with facet counts.

Open needs are few next to listings (hundreds, not 100k), so the board filters them in SQL
and ranks the rest in Python on the analysed words of title and description, instead of
keeping a second Whoosh index in step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from catalog.models import Category
from catalog.search.query import normalise_query
from catalog.search.schema import analyze
from catalog.services import Page
from demand.models import Need
from marketplace.database import utcnow

BUDGET_BANDS = {
    "open": (_l("Open to proposals"), None, None),
    "lt50k": (_l("Up to ¥50,000"), 0, 5_000_000),
    "50k-500k": (_l("¥50,000–500,000"), 5_000_000, 50_000_000),
    "gt500k": (_l("Over ¥500,000"), 50_000_000, None),
}
DEADLINES = {"7": _l("Closing within 7 days"), "30": _l("Closing within 30 days")}
SORTS = {"relevance": _l("Best match"), "deadline": _l("Deadline soonest"),
         "newest": _l("Newest")}
MAX_CANDIDATES = 5000


@dataclass
class BoardParams:
    q: str = ""
    category: str | None = None  # slug, top or sub
    region: str | None = None
    budget: str | None = None
    deadline: str | None = None
    sort: str = "relevance"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> BoardParams:
        from catalog.services import parse_page

        sort = args.get("sort") or "relevance"
        return cls(q=normalise_query(args.get("q")), category=args.get("category") or None,
                   region=args.get("region") or None,
                   budget=args.get("budget") if args.get("budget") in BUDGET_BANDS else None,
                   deadline=args.get("deadline") if args.get("deadline") in DEADLINES else None,
                   sort=sort if sort in SORTS else "relevance",
                   page=parse_page(args.get("page")))


@dataclass
class BoardResult:
    page: Page
    facets: dict[str, Counter] = field(default_factory=dict)
    terms: set[str] = field(default_factory=set)


def _terms(text: str) -> set[str]:
    return {term for term, _s, _e in analyze(text)}


def _budget_band(need: Need) -> str:
    top = need.budget_max if need.budget_max is not None else need.budget_min
    if need.budget_kind == "open" or top is None:
        return "open"
    if top <= 5_000_000:
        return "lt50k"
    if top <= 50_000_000:
        return "50k-500k"
    return "gt500k"


def search(session: Session, params: BoardParams, page_size: int = 24,
           now: datetime | None = None) -> BoardResult:
    now = now or utcnow()
    stmt = (select(Need).where(Need.status == "open", Need.visibility == "public",
                               Need.proposal_deadline > now)
            .options(joinedload(Need.category).joinedload(Category.parent))
            .order_by(Need.opened_at.desc(), Need.id.desc()).limit(MAX_CANDIDATES))
    needs = list(session.scalars(stmt).unique())
    terms = _terms(params.q) if params.q else set()
    scored = []
    for need in needs:
        if terms:
            title = _terms(need.title)
            body = _terms(need.description) | _terms(need.category.path)
            hits = terms & (title | body)
            if not hits:
                continue
            score = 3 * len(terms & title) + len(hits)
        else:
            score = 0
        scored.append((score, need))
    # Facets count what the words match before the filters, as on the catalogue search.
    facets = {"category": Counter(), "region": Counter(), "budget": Counter()}
    for _score, need in scored:
        top = need.category.parent or need.category
        facets["category"][top.slug] += 1
        facets["region"][need.region or ""] += 1
        facets["budget"][_budget_band(need)] += 1
    kept = []
    for score, need in scored:
        top = need.category.parent or need.category
        if params.category and params.category not in (top.slug, need.category.slug):
            continue
        if params.region and need.region not in (params.region, None):
            continue
        if params.budget and _budget_band(need) != params.budget:
            continue
        if params.deadline:
            limit = now + timedelta(days=int(params.deadline))
            deadline = need.proposal_deadline
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=now.tzinfo)
            if deadline > limit:
                continue
        kept.append((score, need))
    if params.sort == "deadline":
        kept.sort(key=lambda pair: (pair[1].proposal_deadline, pair[1].id))
    elif params.sort == "relevance" and terms:
        kept.sort(key=lambda pair: (-pair[0], -pair[1].id))
    total = len(kept)
    pages = max(1, -(-total // page_size))
    page = max(1, min(params.page, pages))
    items = [need for _score, need in kept[(page - 1) * page_size: page * page_size]]
    return BoardResult(page=Page(items=items, total=total, page=page, page_size=page_size),
                       facets=facets, terms=terms)

