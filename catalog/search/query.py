"""Searching the listing index: safe query parsing, filters, facets, sorting, paging,
highlighted snippets and "did you mean".

User input is never handed to a query language. It is normalised (NFKC, control and format
characters such as RTL marks and NUL removed, emoji dropped, at most ``MAX_QUERY_CHARS``) and
cut into words by the index analyzer; each word is looked up as a plain term, so ``title:*``,
``a AND (`` or ``"unterminated`` are just words.

Matching: every word must occur in the listing's searchable text (title, tags, category,
provider, summary, regions, description, weighted by repetition in the index). Chinese words
that jieba splits finer are required by their parts ("专利申请" needs "专利" and "申请", so
"发明专利申请" matches) with the whole word as a ranking bonus. When no listing has all the
words, the listings having the most of them are shown instead, and the page says so.
Synonyms, pinyin and initials expand the query (catalog.search.expand); a query finding
little is corrected (catalog.search.typos). Ranking is BM25
(Whoosh's formula) over that text plus the same over the title alone.

Matching, filters, facets and sorting work on sets of document numbers and per-document
values. They are read from each immutable Whoosh segment once, cached per segment, and
stitched together per index generation, so a facet count is a set operation or a C-level
count instead of another search, and an index update only costs reading its new segment.
Whoosh searchers are not shared between threads: each request borrows one from a small pool.

The index may briefly lag the database; ``search`` therefore re-checks every hit against
the catalogue's visibility rule before showing it, and queues stale hits for re-indexing.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from itertools import islice

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from whoosh.analysis import Token
from whoosh.highlight import ContextFragmenter, HtmlFormatter, WholeFragmenter, highlight

from catalog.models import Category, Product
from catalog.search.expand import build_query
from catalog.search.index import _plain_markdown
from catalog.search.outbox import enqueue_repair
from catalog.search.pool import FacetCounter, Snapshot, TextQuery, best_tier, borrow_searcher
from catalog.search.schema import ANALYZER, REGION_CODES, analyze
from catalog.search.synonyms import synonym_map
from catalog.search.typos import FEW_RESULTS, correct_chinese
from catalog.services import visible_ids, visible_products_condition
from marketplace import reference
from marketplace.paging import PageNumbers
from marketplace.permissions import is_public_listing

MAX_QUERY_CHARS = 200
MAX_PAGE = 10_000
SORTS = {
    "relevance": _l("Best match"),
    "price_asc": _l("Price: low to high"),
    "price_desc": _l("Price: high to low"),
    "rating": _l("Top rated"),
    "sales": _l("Best selling"),
    "newest": _l("Newest"),
    "credibility": _l("Most credible"),
}
RATING_OPTIONS = (4, 3, 2, 1)
# Minimum institution credibility (providers/credibility.py LEVELS): score floor -> level.
CREDIBILITY_OPTIONS = {90: "AAA", 80: "AA", 70: "A", 55: "B"}
INSTITUTION_CODES = {code for code, _en, _zh in reference.INSTITUTION_TYPES}
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me", "So", "Sk"}
_SPACE = re.compile(r"\s+")
_LATIN_WORD = re.compile(r"^[a-z]{3,}$")


# --------------------------------------------------------------------------- input

def normalise_query(raw) -> str:
    """Plain, bounded text from whatever arrived in the ``q`` parameter."""
    if raw is None:
        return ""
    text = unicodedata.normalize("NFKC", str(raw)[: MAX_QUERY_CHARS * 4])
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in _DROP_CATEGORIES:
            kept.append(" " if category in {"Cc", "So", "Sk"} else "")
        else:
            kept.append(char)
    text = _SPACE.sub(" ", "".join(kept)).strip()
    return text[:MAX_QUERY_CHARS].strip()


def _parse_yuan(raw) -> int | None:
    """Whole yuan from a form field; anything else (negative, text, huge) is ignored."""
    if raw is None:
        return None
    text = str(raw).strip().replace(",", "")
    if not text or len(text) > 12:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


@dataclass
class CategoryTree:
    """The two-level category tree by slug and id (loaded once per search)."""

    tops: list[dict]
    by_slug: dict[str, dict]
    by_id: dict[int, dict]

    @classmethod
    def from_rows(cls, rows) -> CategoryTree:
        """``rows``: (id, parent_id, slug, name, name_zh, position) tuples."""
        nodes = {row[0]: {"id": row[0], "parent_id": row[1], "slug": row[2], "name": row[3],
                          "name_zh": row[4], "position": row[5], "children": []}
                 for row in rows}
        tops = []
        for node in sorted(nodes.values(), key=lambda n: (n["position"], n["id"])):
            parent = nodes.get(node["parent_id"]) if node["parent_id"] else None
            (parent["children"] if parent else tops).append(node)
        return cls(tops=tops, by_slug={n["slug"]: n for n in nodes.values()}, by_id=nodes)

    @classmethod
    def load(cls, session: Session) -> CategoryTree:
        return cls.from_rows(session.execute(select(
            Category.id, Category.parent_id, Category.slug, Category.name, Category.name_zh,
            Category.position)).all())


@dataclass
class SearchParams:
    """Everything that defines a results page; round-trips through the query string."""

    q: str = ""
    category: str | None = None  # slug, top-level or sub-category
    institution_type: str | None = None
    region: str | None = None
    price_min: int | None = None  # yuan
    price_max: int | None = None
    voucher: bool = False
    min_rating: int | None = None
    min_credibility: int | None = None  # institution credibility score floor
    sort: str = "relevance"
    page: int = 1
    verbatim: bool = False  # "search instead for": no typo correction (catalog.search.typos)

    @classmethod
    def from_args(cls, args, tree: CategoryTree | None = None) -> SearchParams:
        q = normalise_query(args.get("q"))
        category = args.get("category") or None
        if category is not None and (tree is None or category not in tree.by_slug):
            category = None
        inst = args.get("type") or None
        region = args.get("region") or None
        price_min = _parse_yuan(args.get("price_min"))
        price_max = _parse_yuan(args.get("price_max"))
        if price_min is not None and price_max is not None and price_min > price_max:
            price_min, price_max = price_max, price_min
        try:
            min_rating = int(args.get("rating") or 0) or None
        except (TypeError, ValueError):
            min_rating = None
        try:
            min_credibility = int(args.get("cred") or 0) or None
        except (TypeError, ValueError):
            min_credibility = None
        sort = args.get("sort") or ("relevance" if q else "newest")
        if sort not in SORTS or (sort == "relevance" and not q):
            sort = "relevance" if q else "newest"
        try:
            page = int(str(args.get("page", "1")).strip())
        except (TypeError, ValueError):
            page = 1
        return cls(
            q=q,
            category=category,
            institution_type=inst if inst in INSTITUTION_CODES else None,
            region=region if region in REGION_CODES else None,
            price_min=price_min,
            price_max=price_max,
            voucher=str(args.get("voucher", "")).lower() in {"1", "on", "true", "yes"},
            min_rating=min_rating if min_rating in RATING_OPTIONS else None,
            min_credibility=(min_credibility if min_credibility in CREDIBILITY_OPTIONS
                             else None),
            sort=sort,
            page=max(1, min(page, MAX_PAGE)),
            verbatim=str(args.get("verbatim", "")) == "1",
        )

    def args(self, **changes) -> dict:
        """Query-string arguments for a link; changing anything but the page resets it."""
        values = {
            "q": self.q or None, "category": self.category, "type": self.institution_type,
            "region": self.region, "price_min": self.price_min, "price_max": self.price_max,
            "voucher": "1" if self.voucher else None, "rating": self.min_rating,
            "cred": self.min_credibility,
            "sort": self.sort if self.sort != ("relevance" if self.q else "newest") else None,
            "page": self.page if self.page > 1 else None,
            "verbatim": "1" if self.verbatim else None,
        }
        if changes and "page" not in changes:
            values["page"] = None
        values.update(changes)
        return {key: value for key, value in values.items() if value not in (None, "", False)}

    @property
    def has_filters(self) -> bool:
        return bool(self.category or self.institution_type or self.region or self.voucher
                    or self.min_rating or self.min_credibility or self.price_min is not None
                    or self.price_max is not None)




# --------------------------------------------------------------------------- index search

@dataclass
class FacetValue:
    value: str
    label: str
    label_zh: str
    count: int
    selected: bool = False


@dataclass
class Facets:
    categories: list[FacetValue] = field(default_factory=list)
    subcategories: list[FacetValue] = field(default_factory=list)
    institution_types: list[FacetValue] = field(default_factory=list)
    regions: list[FacetValue] = field(default_factory=list)
    voucher: int = 0
    ratings: list[FacetValue] = field(default_factory=list)
    credibility: list[FacetValue] = field(default_factory=list)


@dataclass
class IndexResult:
    total: int
    page: int
    page_size: int
    pids: list[int]
    facets: Facets | None
    matched_all: bool = True
    text_query: TextQuery | None = None
    matched: frozenset = frozenset()  # documents the words matched, before any filter


def _category_filter(tree: CategoryTree, slug: str | None):
    node = tree.by_slug.get(slug) if slug else None
    if node is None:
        return None, None
    if node["parent_id"]:
        return node, ("cat_sub", str(node["id"]))
    return node, ("cat_top", str(node["id"]))


def run_index_search(searcher, snapshot: Snapshot, params: SearchParams, tree: CategoryTree,
                     page_size: int = 24, facets: bool = True,
                     exclude_docs: frozenset = frozenset(),
                     synonyms: dict | None = None) -> IndexResult:
    """Match, filter, count, sort and page inside the index (no database access).

    ``exclude_docs``: documents of listings the database no longer shows (stale, see
    ``Snapshot.stale_docs``); they are left out before anything is counted, so totals, facets
    and pages agree with the cards. ``synonyms``: phrase -> its equivalents
    (catalog.search.synonyms), applied as query expansion together with pinyin
    (catalog.search.expand).
    """
    text_query = build_query(searcher, params.q, synonyms) if params.q else None
    matched_all = True
    if text_query is None:
        matched = snapshot.live(searcher)
    elif not text_query.atoms:
        matched = frozenset()
    else:
        matched = snapshot.matching(searcher, text_query, require_all=True)
        if not matched and len(text_query.atoms) > 1:
            matched = best_tier(snapshot, searcher, text_query)
            matched_all = False
    if exclude_docs and matched:
        matched = matched - exclude_docs

    # Each active filter, by facet dimension, as a function narrowing a set of documents.
    filters = {}
    category_node, category_term = _category_filter(tree, params.category)
    if category_term:
        term_docs = snapshot.term_set(searcher, *category_term)
        filters["category"] = lambda docs: docs & term_docs
    if params.institution_type:
        inst_docs = snapshot.term_set(searcher, "institution_type", params.institution_type)
        filters["institution_type"] = lambda docs: docs & inst_docs
    if params.region:
        region_docs = snapshot.region_set(searcher, params.region)
        filters["region"] = lambda docs: docs & region_docs
    if params.voucher:
        voucher_docs = snapshot.term_set(searcher, "voucher", True)
        filters["voucher"] = lambda docs: docs & voucher_docs
    if params.price_min is not None or params.price_max is not None:
        low = (params.price_min or 0) * 100
        high = params.price_max * 100 if params.price_max is not None else None
        prices = snapshot.values(searcher, "price_from")
        if high is None:
            filters["price"] = lambda docs: {d for d in docs if prices[d] >= low}
        else:
            filters["price"] = lambda docs: {d for d in docs if low <= prices[d] <= high}
    if params.min_rating:
        ratings = snapshot.values(searcher, "rating")
        threshold = params.min_rating
        filters["rating"] = lambda docs: {d for d in docs if ratings[d] >= threshold}
    if params.min_credibility:
        credibility = snapshot.values(searcher, "credibility")
        floor = params.min_credibility
        filters["credibility"] = lambda docs: {d for d in docs if credibility[d] >= floor}

    def narrowed(skip: str | None = None):
        docs = matched
        # Cheap, selective set filters first; predicate filters on what is left.
        for name in ("category", "institution_type", "region", "voucher", "price", "rating",
                     "credibility"):
            if name != skip and name in filters:
                docs = filters[name](docs)
        return docs

    results = narrowed()
    total = len(results)
    pages = max(1, -(-total // page_size))
    page = min(params.page, pages)
    start, end = (page - 1) * page_size, page * page_size

    if not total:
        docnums = []  # nothing to order (and no sort column to read for it)
    elif params.sort == "relevance" and text_query is not None:
        docnums = snapshot.top_by_relevance(searcher, text_query, results, end)[start:]
    else:
        sort = params.sort if params.sort != "relevance" else "newest"
        if len(results) * 20 > len(snapshot.live(searcher)):
            # A large share of the index (browse pages): walk the cached full order.
            ordered = filter(results.__contains__, snapshot.sorted_order(searcher, sort))
            docnums = list(islice(ordered, start, end))
        else:
            keys = snapshot.sort_keys(searcher, sort)
            docnums = heapq.nsmallest(end, results, key=keys.__getitem__)[start:]
    pid = snapshot.values(searcher, "pid")
    pids = [pid[d] for d in docnums]

    facet_data = None
    if facets:
        facet_data = _facets(searcher, snapshot, tree, params, category_node, narrowed, filters,
                             results)
    return IndexResult(total=total, page=page, page_size=page_size, pids=pids,
                       facets=facet_data, matched_all=matched_all, text_query=text_query,
                       matched=matched)


def _facets(searcher, snapshot, tree, params, category_node, narrowed, filters,
            results) -> Facets:
    """Counts per facet value, each facet counted with every filter but its own."""
    bases: dict[str, frozenset] = {}

    def base(dimension):
        if dimension not in filters:
            return results
        if dimension not in bases:
            bases[dimension] = frozenset(narrowed(dimension))
        return bases[dimension]

    # Large sets are counted against per-generation code columns with C-level mask
    # operations, small ones document by document (catalog.search.pool.FacetCounter).
    counter = FacetCounter(snapshot, searcher)

    out = Facets()
    top_counts = counter.values(base("category"), "cat_top")
    selected_top = None
    if category_node is not None:
        selected_top = category_node if not category_node["parent_id"] else tree.by_id.get(
            category_node["parent_id"])
    for node in tree.tops:
        out.categories.append(FacetValue(
            node["slug"], node["name"], node["name_zh"], top_counts.get(str(node["id"]), 0),
            selected=selected_top is not None and node["id"] == selected_top["id"]))
    if selected_top is not None:
        sub_counts = counter.values(base("category"), "cat_sub")
        for node in selected_top["children"]:
            out.subcategories.append(FacetValue(
                node["slug"], node["name"], node["name_zh"], sub_counts.get(str(node["id"]), 0),
                selected=category_node is not None and node["id"] == category_node["id"]))

    inst_counts = counter.values(base("institution_type"), "institution_type")
    for code, label, label_zh in reference.INSTITUTION_TYPES:
        out.institution_types.append(FacetValue(code, label, label_zh, inst_counts.get(code, 0),
                                                selected=code == params.institution_type))

    region_counts = counter.regions(base("region"))
    for code, label, label_zh in reference.REGIONS:
        out.regions.append(FacetValue(code, label, label_zh, region_counts.get(code, 0),
                                      selected=code == params.region))

    out.voucher = counter.having(base("voucher"), snapshot.term_set(searcher, "voucher", True))

    floors = counter.at_least(base("rating"), "rating_floor", RATING_OPTIONS)
    for threshold in RATING_OPTIONS:
        count = floors[threshold]
        # Labels in the viewer's language (label_zh left empty: the template shows label).
        out.ratings.append(FacetValue(str(threshold), _("%(stars)d★ & up", stars=threshold), "",
                                      count, selected=threshold == params.min_rating))

    levels = counter.at_least(base("credibility"), "credibility", CREDIBILITY_OPTIONS)
    for floor, level in CREDIBILITY_OPTIONS.items():
        count = levels[floor]
        out.credibility.append(FacetValue(
            str(floor), level if level == "AAA" else _("%(level)s & up", level=level), "",
            count, selected=floor == params.min_credibility))
    return out


# --------------------------------------------------------------------------- did you mean

def suggest_correction(searcher, text_query: TextQuery | None, text: str) -> str | None:
    """A respelling of ``text`` whose unknown Latin words are replaced by indexed ones."""
    if text_query is None or not text:
        return None
    reader = searcher.reader()
    corrector = reader.corrector("spell")
    changed = False
    words = []
    for word in text.split(" "):
        lower = word.lower()
        terms = [term for term, _s, _e in analyze(word)]
        known = all(reader.doc_frequency("text", term) for term in terms)
        if _LATIN_WORD.match(lower) and terms and not known:
            suggestion = None
            for distance in (1, 2):
                found = corrector.suggest(lower, limit=1, maxdist=distance, prefix=1)
                if found:
                    suggestion = found[0]
                    break
            if suggestion and suggestion != lower:
                words.append(suggestion)
                changed = True
                continue
        words.append(word)
    return " ".join(words) if changed else None


# --------------------------------------------------------------------------- highlighting

_FORMATTER_ARGS = {"tagname": "mark", "classname": "hl", "termclass": "t", "between": " … "}


def highlight_text(text: str, terms: set[str], whole: bool = True,
                   maxchars: int = 220) -> Markup | None:
    """``text`` with matched words in <mark>, HTML-escaped; None if nothing matched."""
    if not text or not terms:
        return None
    # Highlighting from the text's stored tokens (``_presegmented``), and the result depends
    # only on these arguments (listing text and query terms), so it is memoised per process
    # too and can never be stale.
    return _highlight_cached(text, frozenset(terms), whole, maxchars)


# Listing texts analysed once per process: a text's words and offsets do not depend on the
# query, so a search for new words highlights from the stored tokens instead of running
# jieba and the filters over every hit again (issue 17: a third of a search's time went to
# re-tokenising). Short texts (titles, summaries) and long ones (descriptions, for the
# snippet fallback) are kept apart so a few long ones cannot push out thousands of short ones.
_SHORT_TEXT = 600


@functools.lru_cache(maxsize=50_000)
def _short_tokens(text: str) -> tuple[tuple, ...]:
    return _analyse_for_highlight(text)


@functools.lru_cache(maxsize=2_000)
def _long_tokens(text: str) -> tuple[tuple, ...]:
    return _analyse_for_highlight(text)


def _analyse_for_highlight(text: str) -> tuple[tuple, ...]:
    return tuple((t.text, t.startchar, t.endchar, t.stopped, t.boost)
                 for t in ANALYZER(text, chars=True, mode="query", removestops=False))


def _presegmented(text: str, chars: bool = True, mode: str = "query", removestops: bool = False,
                  **_ignored):
    """An analyzer for Whoosh's ``highlight()``: the same tokens as ``ANALYZER`` (it calls it
    with exactly these arguments), from the per-process store."""
    stored = _short_tokens(text) if len(text) <= _SHORT_TEXT else _long_tokens(text)
    for word, start, end, stopped, boost in stored:
        yield Token(chars=chars, removestops=removestops, mode=mode, text=word,
                    startchar=start, endchar=end, stopped=stopped, boost=boost)


@functools.lru_cache(maxsize=10_000)
def _highlight_cached(text: str, terms: frozenset[str], whole: bool,
                      maxchars: int) -> Markup | None:
    fragmenter = WholeFragmenter(charlimit=None) if whole else ContextFragmenter(
        maxchars=maxchars, surround=60, charlimit=None)
    html = highlight(text, terms, _presegmented, fragmenter, HtmlFormatter(**_FORMATTER_ARGS),
                     top=2)
    # Whoosh's HtmlFormatter HTML-escapes every piece of listing text it emits (matched words
    # and the text between them); only its own <mark> tags are markup.
    return Markup(html) if html and "<mark" in html else None  # noqa: S704


# --------------------------------------------------------------------------- full search

@dataclass
class SearchHit:
    product: Product
    title_html: Markup
    snippet_html: Markup


@dataclass
class SearchPage(PageNumbers):
    params: SearchParams
    hits: list[SearchHit]
    total: int
    page: int
    page_size: int
    facets: Facets | None
    matched_all: bool = True
    suggestion: str | None = None
    tree: CategoryTree | None = None
    # The query shown is ``corrected`` (typo correction) instead of what was typed.
    corrected: str | None = None

    @property
    def items(self):
        return self.hits


def _snippet(product: Product, terms: set[str]) -> Markup:
    summary = product.local_summary or ""
    marked = highlight_text(summary, terms)
    if marked is not None:
        return marked
    if terms:
        marked = highlight_text(" ".join(_plain_markdown(product.description).split()), terms,
                                whole=False)
        if marked is not None:
            return Markup("… ") + marked + Markup(" …")
    return escape(summary)


# Above this many matched listings, hidden ones are found by reading every visible listing id
# (one query) instead of asking about the matched ids in chunks.
_RECOUNT_IN_CHUNKS = 5000


def _hidden_among(session: Session, pids: set[int]) -> frozenset:
    """Which of ``pids`` (listings in the index) the database no longer shows."""
    if len(pids) <= _RECOUNT_IN_CHUNKS:
        ordered = sorted(pids)
        visible: set[int] = set()
        for start in range(0, len(ordered), 500):
            visible |= visible_ids(session, ordered[start:start + 500])
    else:
        visible = set(session.scalars(select(Product.id).where(visible_products_condition())))
    return frozenset(pids - visible)


def _load_visible(session: Session, pids: list[int]) -> dict[int, Product]:
    """The listings of ``pids`` the public may see, in one query by primary key.

    The visibility rule is applied to the loaded rows with its Python twin
    (``permissions.is_public_listing``): with the SQL condition in the same statement,
    SQLite walked its status index over every published listing instead of looking the
    page's ids up (14 ms of a search at 100k listings, against 0.3 ms).
    """
    if not pids:
        return {}
    return {p.id: p for p in session.scalars(
        select(Product)
        .where(Product.id.in_(pids))
        .options(joinedload(Product.provider), joinedload(Product.category))
    ).unique() if p.provider is not None and is_public_listing(p)}


def search(session: Session, index_dir, params: SearchParams, page_size: int = 24,
           tree: CategoryTree | None = None) -> SearchPage:
    """One results page: index search, then every hit re-checked against the database.

    When the index lags the database and a hit on this page is no longer visible, every
    listing the words matched is checked against the database and the search runs again
    without the hidden ones, so the total, the facet counts and the pages (what page 2 holds)
    agree with the cards shown. The hidden listings are remembered for this index generation
    (per process), so later searches leave them out from the start, whatever page they ask
    for, and queued for re-indexing once.
    """
    tree = tree or CategoryTree.load(session)
    synonyms = synonym_map(session) if params.q else None
    typed = params
    with borrow_searcher(index_dir) as (searcher, snapshot):
        result = run_index_search(searcher, snapshot, params, tree, page_size=page_size,
                                  exclude_docs=snapshot.stale_docs, synonyms=synonyms)
        corrected = suggestion = None
        if params.q and (result.total < FEW_RESULTS or not result.matched_all):
            latin = suggest_correction(searcher, result.text_query, params.q)
            correction = correct_chinese(searcher, latin or params.q) or latin
            if correction and not params.verbatim:
                fixed = replace(params, q=correction)
                retry = run_index_search(searcher, snapshot, fixed, tree, page_size=page_size,
                                         exclude_docs=snapshot.stale_docs, synonyms=synonyms)
                if retry.total > result.total or (retry.total and retry.matched_all
                                                  and not result.matched_all):
                    params, result, corrected = fixed, retry, correction
            if corrected is None and (result.total == 0 or not result.matched_all):
                suggestion = correction
        products = _load_visible(session, result.pids)
        stale = [pid for pid in result.pids if pid not in products]
        if stale:
            pid_values = snapshot.values(searcher, "pid")
            hidden = _hidden_among(session, {pid_values[d] for d in result.matched})
            hidden |= frozenset(stale)
            snapshot.remember_stale(searcher, hidden)
            result = run_index_search(searcher, snapshot, params, tree, page_size=page_size,
                                      exclude_docs=snapshot.stale_docs, synonyms=synonyms)
            missing = [pid for pid in result.pids if pid not in products]
            products.update(_load_visible(session, missing))
    # Hidden now; the drain fixes the index (queued once while a row is pending).
    if stale and enqueue_repair(session, hidden, "stale search hit"):
        session.commit()
    terms = result.text_query.terms if result.text_query else set()
    hits = []
    for pid in result.pids:
        product = products.get(pid)
        if product is None:  # hidden in the moment since (a race): never shown
            continue
        hits.append(SearchHit(
            product=product,
            title_html=(highlight_text(product.local_title, terms)
                        or escape(product.local_title)),
            snippet_html=_snippet(product, terms),
        ))
    return SearchPage(params=typed, hits=hits, total=result.total, page=result.page,
                      page_size=page_size, facets=result.facets,
                      matched_all=result.matched_all, suggestion=suggestion, tree=tree,
                      corrected=corrected)
