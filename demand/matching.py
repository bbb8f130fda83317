"""Matching a need to institutions: an explainable score out of 100 made of parts.

=============  ===  ==========================================================================
part           max  rule
=============  ===  ==========================================================================
category        30  published listings in the need's sub-category, by depth: 15 + 5 per
                    listing up to 3 (1: 20, 2: 25, 3 or more: 30); only in its top category:
                    15; none: 0. One listing in a sub-category can be a sideline; three are
                    a line of business (bench/matching.py: institutions with one stray
                    listing there took ~40 % of the top 8 when any listing counted as 30)
text            25  relevance (BM25 over the search index, jieba + English stemming, the same
                    analyzer as the catalogue search) of the institution's best listing to the
                    need's title and description, relative to the best candidate: 25 × r/r_max
region          10  the institution (its regions) or its best listing serves the need's region, a region that
                    contains it (Suzhou Industrial Park is in Suzhou, in Jiangsu), or the whole
                    country: 10; no region asked: 10; otherwise 0
credibility     15  the institution's credibility score (providers/credibility/) × 15 / 100;
                    69 (where a new verified institution starts) until first computed
response        10  invitations to earlier needs answered (proposal or "not interested"),
                    with a prior of 1 of 2: (answered + 1) / (invited + 2) × 10
ratings          5  published buyer ratings in the need's top category over the last 365 days,
                    blended with 3 neutral 3.5★ ratings: (avg − 1) / 4 × 5
load             5  open orders (paid, accepted, in progress): 5 × max(0, 1 − open / 20)
=============  ===  ==========================================================================

Candidates are the institutions of the best few hundred listings by text relevance within
the need's top category (listing and institution read from the search index) together with
the institutions that have most listings in the need's sub-category; only listed
institutions (verified, not suspended) are ever ranked. The parts are computed in two
passes: category, text, region and credibility for all candidates, then response, ratings
and load (a few GROUP BY queries) only for those that can still reach the top; the words
explaining each part are written for the returned matches alone. The listings a result
names are re-checked against the catalogue's visibility rule (the index lags the database
by a moment): one hidden since is left out and the ranking made again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from catalog.models import Category, Product, Review
from catalog.services import listed_providers_condition, visible_products_condition
from demand.models import Need, NeedInvitation
from marketplace import reference
from marketplace.database import utcnow
from marketplace.i18n import local_name
from marketplace.models import Organisation
from marketplace.permissions import PUBLIC_LISTING_STATUS
from orders.models import Order

WEIGHTS = {"category": 30, "text": 25, "region": 10, "credibility": 15, "response": 10,
           "ratings": 5, "load": 5}
LABELS = {"category": _l("Category fit"), "text": _l("Relevance of listings"),
          "region": _l("Region"), "credibility": _l("Credibility"),
          "response": _l("Response rate"), "ratings": _l("Recent ratings"),
          "load": _l("Current load")}
TEXT_CANDIDATE_LISTINGS = 400
CATEGORY_CANDIDATES = 200
CATEGORY_DEPTH = 3  # published listings in the sub-category that earn the full category fit
MAX_QUERY_TERMS = 24
NEW_INSTITUTION_CREDIBILITY = 69
LOAD_FULL_AT = 20
OPEN_ORDER_STATUSES = ("paid", "accepted", "in_progress")
RATING_PRIOR_X100, RATING_PRIOR_N = 350, 3
# Regions that contain other regions (a listing serving Suzhou serves the Industrial Park).
_PARENT = {"suzhou_sip": "suzhou", "suzhou_snd": "suzhou", "kunshan": "suzhou",
           "changshu": "suzhou", "zhangjiagang": "suzhou", "taicang": "suzhou",
           "suzhou": "jiangsu", "wuxi": "jiangsu", "changzhou": "jiangsu",
           "nanjing": "jiangsu"}


@dataclass
class Part:
    key: str
    label: str
    points: float
    max: int
    detail: str


@dataclass
class Match:
    provider_id: int
    provider_name: str
    product_id: int | None
    score: int
    parts: list[Part] = field(default_factory=list)

    def parts_json(self) -> list[dict]:
        # Labels are lazy strings: stored as text; pages show LABELS by key in the viewer's
        # language.
        return [{"key": part.key, "label": str(part.label), "points": part.points,
                 "max": part.max, "detail": str(part.detail)} for part in self.parts]


def region_chain(code: str | None) -> set[str]:
    """The region and every region containing it, plus "national"."""
    chain = {"national"}
    while code:
        chain.add(code)
        code = _PARENT.get(code)
    return chain


def _index_dir(index_dir):
    if index_dir is not None:
        return index_dir
    try:
        return current_app.config.get("SEARCH_INDEX_DIR")
    except RuntimeError:
        return None


def need_text(need: Need) -> str:
    """What the need says, the title twice (as the index weighs titles over descriptions)."""
    from catalog.search.index import _plain_markdown

    return "\n".join([need.title, need.title, _plain_markdown(need.description)[:4000],
                      need.financial_purpose or ""])


# --------------------------------------------------------------------------- text relevance

@dataclass
class TextHits:
    """Listing id → (relevance, the need's words it contains), for the best listings."""

    scores: dict[int, float] = field(default_factory=dict)
    words: dict[int, list[str]] = field(default_factory=dict)
    owners: dict[int, int] = field(default_factory=dict)  # listing → institution (the index's)
    in_region: set[int] = field(default_factory=set)  # of those, listings serving the region
    in_top: set[int] = field(default_factory=set)  # of those, listings in the need's top category
    available: bool = True


def text_hits(need: Need, index_dir, top: Category | None,
              only_pids: set[int] | None = None) -> TextHits:
    """The listings most relevant to the need in the search index (none if it is missing).

    ``only_pids``: score just these listings (one institution's, for ``score_one``)."""
    from catalog.search.pool import TextQuery, borrow_searcher

    index_dir = _index_dir(index_dir)
    if not index_dir:
        return TextHits(available=False)
    try:
        context = borrow_searcher(index_dir)
        searcher, snapshot = context.__enter__()
    except Exception:  # no index yet: matching still works on the other parts
        return TextHits(available=False)
    try:
        if searcher.doc_count() == 0:  # a new, empty index (not built yet)
            return TextHits(available=False)
        parsed = TextQuery.parse(need_text(need))
        terms = [t for t in dict.fromkeys(parsed.atoms + parsed.extras)
                 if searcher.doc_frequency("text", t) > 0]
        idf = {t: searcher.idf("text", t) for t in terms}
        terms = sorted(terms, key=lambda t: -idf[t])[:MAX_QUERY_TERMS]
        if not terms:
            return TextHits()
        docs = frozenset().union(*(snapshot.term_set(searcher, "text", t) for t in terms))
        docs = docs - snapshot.stale_docs
        pid_of = snapshot.values(searcher, "pid")
        owner_of = snapshot.values(searcher, "provider_id")
        if only_pids is not None:
            docs = frozenset(d for d in docs if pid_of[d] in only_pids)
        top_docs = frozenset()
        if only_pids is None and top is not None:
            top_docs = snapshot.term_set(searcher, "cat_top", str(top.id))
            docs = (docs & top_docs) or docs
        if not docs:
            return TextHits()
        query = TextQuery(text="", atoms=terms, extras=[])
        best = snapshot.top_by_relevance(searcher, query, docs, TEXT_CANDIDATE_LISTINGS)
        parts = {t: snapshot.term_scores(searcher, t) for t in terms}
        serving = frozenset()
        if need.region:  # listings naming the region, a region containing it, or "national"
            serving = frozenset().union(*(snapshot.term_set(searcher, "region", code)
                                          for code in region_chain(need.region)))
        hits = TextHits()
        for docnum in best:
            found = [t for t in terms if docnum in parts[t]]
            pid = pid_of[docnum]
            hits.scores[pid] = sum(idf[t] * parts[t][docnum] for t in found)
            hits.words[pid] = found
            hits.owners[pid] = owner_of[docnum]
            if docnum in serving:
                hits.in_region.add(pid)
            if docnum in top_docs:
                hits.in_top.add(pid)
        return hits
    finally:
        context.__exit__(None, None, None)


# --------------------------------------------------------------------------- figures

def _category_figures(session: Session, provider_ids, sub: Category, top: Category):
    """Per institution: published listings in the sub-category and in the top category, and
    one listing id to place the order on (sub-category first). The institutions are listed
    ones already (``_score`` filters them), so only the listing's own status is checked."""
    in_sub = case((Product.category_id == sub.id, 1), else_=0)
    in_top = select(Category.id).where(Category.parent_id == top.id).scalar_subquery()
    rows = session.execute(
        select(Product.provider_id, func.sum(in_sub), func.count(Product.id),
               func.min(case((Product.category_id == sub.id, Product.id), else_=None)),
               func.min(Product.id))
        .where(Product.provider_id.in_(provider_ids), Product.status == "published",
               Product.category_id.in_(in_top))
        .group_by(Product.provider_id)).all()
    return {pid: (int(s or 0), int(n), first_sub or first) for pid, s, n, first_sub, first
            in rows}


def _responses(session: Session, provider_ids, before: datetime) -> dict[int, tuple[int, int]]:
    answered = case((NeedInvitation.status.in_(("declined", "proposed")), 1), else_=0)
    rows = session.execute(
        select(NeedInvitation.provider_org_id, func.count(NeedInvitation.id),
               func.sum(answered))
        .where(NeedInvitation.provider_org_id.in_(provider_ids),
               NeedInvitation.status != "removed", NeedInvitation.created_at < before)
        .group_by(NeedInvitation.provider_org_id)).all()
    return {org: (int(n), int(a or 0)) for org, n, a in rows}


def _ratings(session: Session, provider_ids, top: Category, since: datetime):
    sub_ids = select(Category.id).where(Category.parent_id == top.id)
    rows = session.execute(
        select(Review.subject_org_id, func.count(Review.id), func.sum(Review.score_x100))
        .join(Order, Order.id == Review.order_id)
        .where(Review.subject_org_id.in_(provider_ids), Review.side == "buyer",
               Review.published_at.is_not(None), Review.hidden_at.is_(None),
               Review.published_at >= since, Order.category_id.in_(sub_ids))
        .group_by(Review.subject_org_id)).all()
    return {org: (int(n), int(total or 0)) for org, n, total in rows}


def _loads(session: Session, provider_ids) -> dict[int, int]:
    rows = session.execute(
        select(Order.provider_org_id, func.count(Order.id))
        .where(Order.provider_org_id.in_(provider_ids), Order.status.in_(OPEN_ORDER_STATUSES))
        .group_by(Order.provider_org_id)).all()
    return {org: int(n) for org, n in rows}


def _category_name(category) -> str:
    """The category's name in the language the explanation is written in."""
    return local_name(category, str(get_locale() or ""))


def _words(words: list[str]) -> str:
    shown = [w for w in words if not re.fullmatch(r"\d+", w)][:6]
    return "、".join(shown) if any(ord(c) > 0x2E80 for w in shown for c in w) \
        else ", ".join(shown)


# --------------------------------------------------------------------------- scoring
# Scoring runs in two passes so that matching one need stays fast with thousands of
# candidates: numbers for every candidate (four parts from what is already in hand, the
# three per-institution figures read only for those that can still reach the top), then
# words (the explanation of each part) for the few that are shown or stored.

REST = ("response", "ratings", "load")  # the parts read per institution from the database


@dataclass
class _Figures:
    """One candidate's points per part and what their explanations say."""

    org: object  # the organisation row (id, name, credibility, regions served)
    points: dict[str, float] = field(default_factory=dict)
    in_sub: int = 0
    in_top: int = 0
    first_listing: int | None = None
    best_pid: int | None = None
    relevance: float = 0.0
    invited: int = 0
    answered: int = 0
    rating_count: int = 0
    rating_total: int = 0
    load: int = 0

    @property
    def total(self) -> float:
        return sum(self.points.values())


def _best_listings(hits: TextHits, orgs, owners: dict) -> dict[int, tuple[float, int]]:
    """Institution → (relevance, listing) of its most relevant listing among the hits."""
    best: dict[int, tuple[float, int]] = {}
    for pid, relevance in hits.scores.items():
        org = owners.get(pid)
        if org in orgs and relevance > best.get(org, (0.0, None))[0]:
            best[org] = (relevance, pid)
    return best


def category_points(in_sub: int, in_top: int) -> int:
    """Category fit: 15 for listings in the need's top category, plus 5 per published
    listing in its sub-category up to CATEGORY_DEPTH (15 + 15 × min(n, 3) / 3)."""
    if in_sub:
        return 15 + 15 * min(in_sub, CATEGORY_DEPTH) // CATEGORY_DEPTH
    return 15 if in_top else 0


def _first_pass(need: Need, orgs: dict, hits: TextHits, categories: dict, best_listing: dict,
                yardstick: float) -> dict[int, _Figures]:
    """Category, text, region and credibility points of every candidate."""
    best_relevance = max([yardstick, *(r for r, _pid in best_listing.values())])
    wanted = region_chain(need.region) if need.region else set()
    figures = {}
    for org_id, org in orgs.items():
        f = _Figures(org=org)
        f.in_sub, f.in_top, f.first_listing = categories.get(org_id, (0, 0, None))
        f.relevance, f.best_pid = best_listing.get(org_id, (0.0, None))
        f.points["category"] = category_points(f.in_sub, f.in_top)
        f.points["text"] = (round(25 * f.relevance / best_relevance, 1)
                            if hits.available and f.best_pid is not None and best_relevance > 0
                            else 0)
        f.points["region"] = (10 if not need.region
                              or set(org.regions_served or []) & wanted
                              or f.best_pid in hits.in_region else 0)
        credibility = org.credibility_score
        f.points["credibility"] = round(15 * (NEW_INSTITUTION_CREDIBILITY if credibility is None
                                              else credibility) / 100, 1)
        figures[org_id] = f
    return figures


def _second_pass(session: Session, need: Need, figures: dict[int, _Figures], now: datetime,
                 limit: int | None) -> None:
    """Response, ratings and load points, read for the candidates that can still be among the
    best ``limit``: one whose first four parts plus the most the other three can give stays
    below the ``limit``-th best first-pass total cannot (the others only gain points).
    The rest are dropped from ``figures``."""
    if limit is not None and len(figures) > limit:
        most = sum(WEIGHTS[key] for key in REST)
        threshold = sorted((f.total for f in figures.values()), reverse=True)[limit - 1]
        for org_id in [o for o, f in figures.items() if f.total + most < threshold - 1e-9]:
            del figures[org_id]
    ids = list(figures)
    top = need.category.parent or need.category
    responses = _responses(session, ids, now)
    ratings = _ratings(session, ids, top, now - timedelta(days=365))
    loads = _loads(session, ids)
    for org_id, f in figures.items():
        f.invited, f.answered = responses.get(org_id, (0, 0))
        f.points["response"] = round(10 * (f.answered + 1) / (f.invited + 2), 1)
        f.rating_count, f.rating_total = ratings.get(org_id, (0, 0))
        average = (RATING_PRIOR_X100 * RATING_PRIOR_N + f.rating_total) \
            / (RATING_PRIOR_N + f.rating_count) / 100
        f.points["ratings"] = round(5 * (average - 1) / 4, 1)
        f.load = loads.get(org_id, 0)
        f.points["load"] = round(5 * max(0.0, 1 - f.load / LOAD_FULL_AT), 1)


def _explain(need: Need, f: _Figures, hits: TextHits, titles: dict[int, str]) -> Match:
    """The match of one institution with every part explained in words."""
    sub = need.category
    top = sub.parent or sub
    region_label = reference.REGION_LABELS.get(need.region, need.region) if need.region else ""
    p = f.points
    parts = []
    if f.in_sub >= CATEGORY_DEPTH:
        parts.append(Part("category", LABELS["category"], p["category"], 30,
                          ngettext("%(num)d published listing in %(category)s",
                                   "%(num)d published listings in %(category)s",
                                   f.in_sub, category=_category_name(sub))))
    elif f.in_sub:
        parts.append(Part("category", LABELS["category"], p["category"], 30,
                          ngettext("%(num)d published listing in %(category)s (full points "
                                   "from %(full)d)",
                                   "%(num)d published listings in %(category)s (full points "
                                   "from %(full)d)",
                                   f.in_sub, category=_category_name(sub),
                                   full=CATEGORY_DEPTH)))
    elif f.in_top:
        parts.append(Part("category", LABELS["category"], p["category"], 30,
                          _("Listings in %(top)s, none in %(sub)s",
                            top=_category_name(top), sub=_category_name(sub))))
    else:
        parts.append(Part("category", LABELS["category"], p["category"], 30,
                          _("No listing in %(top)s", top=_category_name(top))))
    if not hits.available:
        parts.append(Part("text", LABELS["text"], 0, 25, _("Search index not available")))
    elif f.best_pid is None:
        parts.append(Part("text", LABELS["text"], 0, 25,
                          _("No listing uses the need's words")))
    else:
        parts.append(Part("text", LABELS["text"], p["text"], 25,
                          _("“%(title)s” matches %(words)s",
                            title=titles.get(f.best_pid, ""),
                            words=_words(hits.words.get(f.best_pid, [])))))
    if not need.region:
        parts.append(Part("region", LABELS["region"], 10, 10, _("No region asked")))
    elif p["region"]:
        served = set(f.org.regions_served or [])
        parts.append(Part("region", LABELS["region"], 10, 10,
                          _("Serves %(region)s (nationwide)", region=region_label)
                          if "national" in served and need.region not in served
                          else _("Serves %(region)s", region=region_label)))
    else:
        parts.append(Part("region", LABELS["region"], 0, 10,
                          _("Does not list %(region)s among its regions", region=region_label)))
    credibility = f.org.credibility_score
    if credibility is None:
        parts.append(Part("credibility", LABELS["credibility"], p["credibility"], 15,
                          _("Not yet computed: counted as a new verified institution "
                            "(%(score)s)", score=NEW_INSTITUTION_CREDIBILITY)))
    else:
        parts.append(Part("credibility", LABELS["credibility"], p["credibility"], 15,
                          _("%(score)s/100, level %(level)s", score=credibility,
                            level=f.org.credibility_level or "–")))
    parts.append(Part("response", LABELS["response"], p["response"], 10,
                      _("Answered %(answered)s of %(invited)s earlier invitations",
                        answered=f.answered, invited=f.invited)
                      if f.invited else _("No earlier invitations (counted as 1 of 2)")))
    count, total = f.rating_count, f.rating_total
    parts.append(Part("ratings", LABELS["ratings"], p["ratings"], 5,
                      ngettext("%(num)d rating in %(category)s this year, average "
                               "%(average)s★",
                               "%(num)d ratings in %(category)s this year, average "
                               "%(average)s★", count, category=_category_name(top),
                               average=format(total / count / 100, ".1f"))
                      if count else _("No ratings in %(category)s this year",
                                      category=_category_name(top))))
    parts.append(Part("load", LABELS["load"], p["load"], 5,
                      ngettext("%(num)d open order", "%(num)d open orders", f.load)))
    return Match(provider_id=f.org.id, provider_name=f.org.name,
                 product_id=f.best_pid or f.first_listing,
                 score=int(sum(part.points for part in parts) + 0.5), parts=parts)


def _score(session: Session, need: Need, provider_ids: list[int], hits: TextHits,
           now: datetime, yardstick: float = 0.0, categories: dict | None = None,
           owners: dict | None = None, limit: int | None = None) -> list[Match]:
    """Score the listed ones among ``provider_ids``, best first (the best ``limit`` only,
    when given). ``categories`` (institution → (listings in the sub-category, in the top
    category, a listing id)) and ``owners`` (listing → institution, for the text hits)
    when the caller has them already.

    The text hits come from the search index, which lags the catalogue by a moment: the
    listings named in the result are checked against the database, and a listing hidden
    since is left out and the ranking made again without it."""
    if not provider_ids:
        return []
    sub = need.category
    top = sub.parent or sub
    orgs = {row.id: row for row in session.execute(
        select(Organisation.id, Organisation.name, Organisation.credibility_score,
               Organisation.credibility_level, Organisation.regions_served)
        .where(Organisation.id.in_(provider_ids), listed_providers_condition()))}
    if not orgs:
        return []
    if categories is None:
        categories = _category_figures(session, list(orgs), sub, top)
    if owners is None:
        owners = hits.owners
    for _attempt in range(4):
        best_listing = _best_listings(hits, orgs, owners)
        figures = _first_pass(need, orgs, hits, categories, best_listing, yardstick)
        _second_pass(session, need, figures, now, limit)
        chosen = sorted(figures.values(), key=lambda f: (-f.total, f.org.id))[:limit]
        shown = [f.best_pid for f in chosen if f.best_pid is not None]
        # By id alone, the status checked here: with "status = ..." in the WHERE clause
        # SQLite reads the whole (status, ...) index instead of the few rows by id.
        titles = {pid: title for pid, title, status in session.execute(
            select(Product.id, Product.title, Product.status).where(Product.id.in_(shown)))
            if status == PUBLIC_LISTING_STATUS} if shown else {}
        hidden = [pid for pid in shown if pid not in titles]
        if not hidden:
            break
        hits = replace(hits, scores={pid: r for pid, r in hits.scores.items()
                                     if pid not in hidden})
    return [_explain(need, f, hits, titles) for f in chosen]


def rank(session: Session, need: Need, limit: int = 8, index_dir=None,
         now: datetime | None = None) -> list[Match]:
    """The best ``limit`` listed institutions for the need, best first."""
    now = now or utcnow()
    sub = need.category
    top = sub.parent or sub
    hits = text_hits(need, index_dir, top)
    # Every institution's listings in the sub-category, in one GROUP BY read from the
    # (status, category, provider) index alone.
    in_sub = {org: (n, first) for org, n, first in session.execute(
        select(Product.provider_id, func.count(Product.id), func.min(Product.id))
        .where(Product.category_id == sub.id, Product.status == PUBLIC_LISTING_STATUS)
        .group_by(Product.provider_id))}
    candidates = set(hits.owners.values())
    candidates.update(sorted(in_sub, key=lambda org: (-in_sub[org][0], org))
                      [:CATEGORY_CANDIDATES])
    in_top = {hits.owners[pid] for pid in hits.in_top if pid in hits.owners}
    categories = {org: (in_sub.get(org, (0, None))[0],
                        1 if org in in_top or org in in_sub else 0,
                        in_sub.get(org, (0, None))[1]) for org in candidates}
    return _score(session, need, sorted(candidates), hits, now, categories=categories,
                  limit=limit)


def score_one(session: Session, need: Need, provider_id: int,
              now: datetime | None = None, index_dir=None) -> Match:
    """The same score for one institution (staff or favourite invitations)."""
    now = now or utcnow()
    pids = set(session.scalars(select(Product.id).where(Product.provider_id == provider_id,
                                                         visible_products_condition())))
    hits = text_hits(need, index_dir, None, only_pids=pids) if pids else TextHits()
    # Relative text relevance needs a yardstick: the best listing of the need's ranking.
    reference_hits = text_hits(need, index_dir, need.category.parent or need.category)
    owners = {pid: provider_id for pid in pids}
    found = _score(session, need, [provider_id], hits, now, owners=owners,
                   yardstick=max(reference_hits.scores.values(), default=0.0))
    if found:
        return found[0]
    org = session.get(Organisation, provider_id)
    return Match(provider_id=provider_id, provider_name=org.name if org else "",
                 product_id=None, score=0, parts=[])


def timed_rank(session: Session, need: Need, limit: int = 8, index_dir=None,
               now: datetime | None = None) -> tuple[list[Match], float]:
    """``rank`` and how long it took in milliseconds (bench/matching.py)."""
    start = time.perf_counter()
    found = rank(session, need, limit=limit, index_dir=index_dir, now=now)
    return found, (time.perf_counter() - start) * 1000
