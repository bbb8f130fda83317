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
Synonyms, pinyin and initials expand the query (catalog.search_expand); a query finding
little is corrected (catalog.search_typos). Ranking is BM25
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

import contextlib
import functools
import heapq
import math
import operator
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice, repeat

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from whoosh.highlight import ContextFragmenter, HtmlFormatter, WholeFragmenter, highlight

from catalog.models import Category, Product
from catalog.search_expand import build_query
from catalog.search_groups import group_scores, group_set, is_group
from catalog.search_index import ANALYZER, NO_PRICE, analyze, open_index
from marketplace import reference

MAX_QUERY_CHARS = 200
MAX_PAGE = 10_000
SORTS = {
    "relevance": "Best match",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "rating": "Top rated",
    "sales": "Best selling",
    "newest": "Newest",
    "credibility": "Most credible",
}
RATING_OPTIONS = (4, 3, 2, 1)
# Minimum institution credibility (providers/credibility.py LEVELS): score floor -> level.
CREDIBILITY_OPTIONS = {90: "AAA", 80: "AA", 70: "A", 55: "B"}
REGION_CODES = tuple(code for code, _en, _zh in reference.REGIONS)
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
    verbatim: bool = False  # "search instead for": no typo correction (catalog.search_typos)

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


# --------------------------------------------------------------------------- text query

@dataclass
class TextQuery:
    """The analysed words of a query: ``atoms`` must match, ``extras`` only raise the score."""

    text: str
    atoms: list[str]
    extras: list[str]
    # Index terms to highlight that the words matched through synonyms or pinyin
    # (catalog.search_expand); group pseudo-terms themselves are never highlighted.
    shown: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str) -> TextQuery:
        tokens = analyze(text)
        spans = {(start, end) for _term, start, end in tokens}
        atoms, extras, taken = [], [], []
        for term, start, end in sorted(tokens, key=lambda t: (t[1], t[2] - t[1])):
            inner = any(s >= start and e <= end and (s, e) != (start, end) for s, e in spans)
            overlaps = any(s < end and start < e for s, e in taken)
            if inner or overlaps:
                if term not in extras:
                    extras.append(term)
            elif term not in atoms:
                atoms.append(term)
                taken.append((start, end))
        extras = [term for term in extras if term not in atoms]
        return cls(text=text, atoms=atoms, extras=extras)

    @property
    def terms(self) -> set[str]:
        return {t for t in (*self.atoms, *self.extras) if not is_group(t)} | self.shown


# --------------------------------------------------------------------------- index snapshots
# Whoosh segments never change once written (an update adds a small segment and marks the old
# document deleted), so what we learn from a segment is cached per segment and survives index
# updates: after a one-listing change only the new, tiny segment is read. A Snapshot stitches
# the cached segments of one index generation together (document number = segment offset +
# local number) and drops deleted documents.

_BM25_K1, _BM25_B = 1.2, 0.75  # Whoosh's BM25F defaults
TITLE_WEIGHT = 1.5  # title-only BM25 added on top of the whole-listing score
_KEYWORD_VALUE_FIELDS = ("cat_top", "cat_sub", "institution_type")


def _raw_postings(segment_reader, fieldname: str, value):
    """A segment's postings for a term, deleted documents included (they are removed per
    generation, so the cache of an old segment stays valid when a listing is updated)."""
    terms = getattr(segment_reader, "_terms", None)
    if terms is None:  # an empty index has no segment files
        return None
    text = segment_reader._text_to_bytes(fieldname, value)
    if (fieldname, text) not in terms:
        return None
    return segment_reader._terms.matcher(fieldname, text, segment_reader.schema[fieldname].format)


def _posting_lists(matcher, weights: bool = False) -> tuple[list, list]:
    """All document numbers (and term frequencies) of a leaf matcher.

    Whoosh's codec keeps each block of postings as arrays; copying whole blocks is several
    times faster than stepping posting by posting, which matters for common words in big
    catalogues. Falls back to the public per-posting API for other matcher types.
    """
    ids: list = []
    tfs: list = []
    block_api = all(hasattr(matcher, name) for name in
                    ("_read_ids", "_read_weights", "_next_block", "_ids", "_weights"))
    if not block_api:
        for docnum, tf in matcher.items_as("weight"):
            ids.append(docnum)
            tfs.append(tf)
        return ids, tfs
    while matcher.is_active():
        matcher._read_ids()
        ids.extend(matcher._ids)
        if weights:
            matcher._read_weights()
            tfs.extend(matcher._weights)
        matcher._next_block()
    return ids, tfs


class SegmentData:
    """What we have read from one immutable segment, in segment-local document numbers."""

    MAX_TERMS = 4000

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.sets: dict[tuple, frozenset] = {}
        self.parts: dict[str, dict] = {}
        self.values: dict[str, list] = {}

    def _remember(self, cache: dict, key, value):
        with self.lock:
            if len(cache) >= self.MAX_TERMS:
                for old in list(cache)[: len(cache) // 2]:
                    cache.pop(old, None)
            cache[key] = value
        return value

    def term_set(self, reader, fieldname: str, value) -> frozenset:
        key = (fieldname, value)
        found = self.sets.get(key)
        if found is None:
            matcher = _raw_postings(reader, fieldname, value)
            found = frozenset(_posting_lists(matcher)[0]) if matcher is not None else frozenset()
            self._remember(self.sets, key, found)
        return found

    def term_parts(self, reader, fieldname: str, term: str, avg_length: float) -> dict:
        """BM25 term-frequency part (without idf) of ``term`` per document of this segment."""
        key = (fieldname, term)
        found = self.parts.get(key)
        if found is None:
            found = {}
            matcher = _raw_postings(reader, fieldname, term)
            if matcher is not None:
                norms = self._norms(reader, fieldname, avg_length)
                k1 = _BM25_K1 + 1
                ids, tfs = _posting_lists(matcher, weights=True)
                found = {d: tf * k1 / (tf + norms[d]) for d, tf in zip(ids, tfs, strict=True)}
            self._remember(self.parts, key, found)
        return found

    def _norms(self, reader, fieldname: str, avg_length: float) -> list:
        """BM25 length normalisation per document (read once per segment)."""
        key = "_norms_" + fieldname
        found = self.values.get(key)
        if found is None:
            length = reader.doc_field_length
            found = [_BM25_K1 * ((1 - _BM25_B) + _BM25_B * length(d, fieldname, 1) / avg_length)
                     for d in range(self.size)]
            with self.lock:
                self.values[key] = found
        return found

    def values_of(self, reader, fieldname: str) -> list:
        found = self.values.get(fieldname)
        if found is None:
            if not self.size:
                found = []
            elif fieldname == "serves":
                # The regions each listing serves as a bit mask (bit i = REGION_CODES[i]);
                # nationwide listings serve every region, the rule of Snapshot.region_set
                # and of the category pages.
                found = [0] * self.size
                for bit, code in enumerate(REGION_CODES):
                    for docnum in self.term_set(reader, "region", code):
                        found[docnum] |= 1 << bit
                national = 1 << REGION_CODES.index("national")
                everywhere = (1 << len(REGION_CODES)) - 1
                found = [everywhere if mask & national else mask for mask in found]
            elif fieldname == "combo":
                # One small integer per document for (top category, sub-category,
                # institution type, rating floor): one counting pass serves four facets.
                found = [_combo_code(key) for key in zip(
                    self.values_of(reader, "cat_top"), self.values_of(reader, "cat_sub"),
                    self.values_of(reader, "institution_type"),
                    [int(r) for r in self.values_of(reader, "rating")], strict=True)]
            elif fieldname in _KEYWORD_VALUE_FIELDS:
                found = [None] * self.size
                for term in reader.lexicon(fieldname):
                    text = term.decode("utf-8") if isinstance(term, bytes) else term
                    for docnum in self.term_set(reader, fieldname, text):
                        found[docnum] = text
            elif fieldname == "published_at":
                found = [int(v.timestamp()) if isinstance(v, datetime) else 0
                         for v in reader.column_reader(fieldname)]
            else:
                found = list(reader.column_reader(fieldname))
            with self.lock:
                self.values[fieldname] = found
        return found


_COMBO_CODES: dict[tuple, int] = {}
_COMBO_KEYS: list[tuple] = []
_COMBO_LOCK = threading.Lock()


def _combo_code(key: tuple) -> int:
    code = _COMBO_CODES.get(key)
    if code is None:
        with _COMBO_LOCK:
            code = _COMBO_CODES.get(key)
            if code is None:
                code = _COMBO_CODES[key] = len(_COMBO_KEYS)
                _COMBO_KEYS.append(key)
    return code


def _sort_keys(values, sort: str) -> list:
    """Ascending sort keys of one segment's documents for a field sort (ties: listing id)."""
    pid = values("pid")
    if sort == "price_asc":
        return [((p if p != NO_PRICE else 1 << 48), i)
                for p, i in zip(values("price_from"), pid, strict=True)]
    if sort == "price_desc":
        return [(-p, -i) for p, i in zip(values("price_from"), pid, strict=True)]
    if sort == "rating":
        return [(-r, -s, -i) for r, s, i in zip(values("rating"), values("sales_count"), pid,
                                                strict=True)]
    if sort == "sales":
        return [(-s, -p, -i) for s, p, i in zip(values("sales_count"), values("published_at"),
                                                pid, strict=True)]
    if sort == "credibility":
        return [(-c, -s, -i) for c, s, i in zip(values("credibility"), values("sales_count"),
                                                pid, strict=True)]
    return [(-p, -i) for p, i in zip(values("published_at"), pid, strict=True)]


class Snapshot:
    """One index generation: its segments (cached), deletions, and combined look-ups.

    Built lazily from a searcher of that generation and then only read, so threads share it.
    """

    MAX_TERMS = 4000

    def __init__(self, generation, segments: list[SegmentData], offsets: list[int],
                 deleted: list[frozenset], size: int):
        self.generation = generation
        self.segments = segments
        self.offsets = offsets
        self.deleted = deleted
        self.size = size
        self._lock = threading.Lock()
        self._sets: dict[tuple, frozenset] = {}
        self._scores: dict[str, dict] = {}
        self._values: dict[str, list] = {}
        self._live: frozenset | None = None
        self.segment_ids: list[str] = []
        # Listings of this generation that searches found hidden in the database since (the
        # index lags it), as listing ids and as document numbers: left out of every later
        # search until the drain writes a new generation.
        self.stale_pids: frozenset = frozenset()
        self.stale_docs: frozenset = frozenset()

    def remember_stale(self, searcher, pids) -> None:
        new = frozenset(pids) - self.stale_pids
        if not new:
            return
        docs = frozenset(d for d, pid in enumerate(self.values(searcher, "pid")) if pid in new)
        with self._lock:
            self.stale_pids = self.stale_pids | new
            self.stale_docs = self.stale_docs | docs

    @staticmethod
    def leaves(searcher):
        return searcher.reader().leaf_readers()

    def _remember(self, cache: dict, key, value):
        with self._lock:
            if len(cache) >= self.MAX_TERMS:
                for old in list(cache)[: len(cache) // 2]:
                    cache.pop(old, None)
            cache[key] = value
        return value

    def live(self, searcher) -> frozenset:
        if self._live is None:
            live = set(range(self.size))
            for offset, deleted in zip(self.offsets, self.deleted, strict=True):
                live.difference_update(offset + d for d in deleted)
            self._live = frozenset(live)
        return self._live

    def term_set(self, searcher, fieldname: str, value) -> frozenset:
        """Live documents holding a term, in this generation's document numbers."""
        key = (fieldname, value)
        found = self._sets.get(key)
        if found is None and isinstance(value, str) and is_group(value):
            return self._remember(self._sets, key, group_set(self, searcher, value))
        if found is None:
            parts = []
            for (reader, _offset), segment, offset, deleted in zip(
                    self.leaves(searcher), self.segments, self.offsets, self.deleted,
                    strict=True):
                local = segment.term_set(reader, fieldname, value)
                if deleted:
                    local = local - deleted
                parts.append(local if not offset else frozenset(offset + d for d in local))
            found = parts[0] if len(parts) == 1 else frozenset().union(*parts)
            self._remember(self._sets, key, found)
        return found

    def region_set(self, searcher, code: str) -> frozenset:
        """Listings serving ``code``: named explicitly, or nationwide (as on category pages)."""
        key = ("region+national", code)
        found = self._sets.get(key)
        if found is None:
            own = self.term_set(searcher, "region", code)
            found = own if code == "national" else own | self.term_set(
                searcher, "region", "national")
            self._remember(self._sets, key, found)
        return found

    def values(self, searcher, fieldname: str) -> list:
        """Per-document values of a field, indexed by this generation's document numbers."""
        found = self._values.get(fieldname)
        if found is None:
            found = []
            for (reader, _offset), segment in zip(self.leaves(searcher), self.segments,
                                                  strict=True):
                found.extend(segment.values_of(reader, fieldname))
            with self._lock:
                self._values[fieldname] = found
        return found

    def sorted_order(self, searcher, sort: str) -> list:
        """Every live document in a field sort's order (cached per generation)."""
        key = "order:" + sort
        found = self._values.get(key)
        if found is None:
            keys = self.sort_keys(searcher, sort)
            found = sorted(self.live(searcher), key=keys.__getitem__)
            with self._lock:
                self._values[key] = found
        return found

    def count(self, searcher, fieldname: str, docs, complements: dict | None = None) -> Counter:
        """How many of ``docs`` have each value of a per-document field.

        Counting runs at C speed over the smaller side: when ``docs`` is most of the index,
        the counts of the rest are subtracted from the (cached) counts of everything.
        """
        values = self.values(searcher, fieldname)
        live = self.live(searcher)

        def tally(subset) -> Counter:
            return Counter(map(values.__getitem__, subset))

        if len(docs) * 2 <= len(live):
            return tally(docs)
        key = "count:" + fieldname
        everything = self._values.get(key)
        if everything is None:
            everything = tally(live)
            with self._lock:
                self._values[key] = everything
        complements = {} if complements is None else complements
        if id(docs) not in complements:
            complements[id(docs)] = live.difference(docs)
        counts = Counter(everything)
        counts.subtract(tally(complements[id(docs)]))
        return counts

    def sort_keys(self, searcher, sort: str) -> list:
        key = "sort:" + sort
        found = self._values.get(key)
        if found is None:
            found = []
            for (reader, _offset), segment in zip(self.leaves(searcher), self.segments,
                                                  strict=True):
                local = segment.values.get(key)
                if local is None:
                    local = _sort_keys(lambda name, r=reader, s=segment: s.values_of(r, name),
                                       sort)
                    with segment.lock:
                        segment.values[key] = local
                found.extend(local)
            with self._lock:
                self._values[key] = found
        return found

    def _field_scores(self, searcher, fieldname: str, term: str) -> dict:
        """BM25 term-frequency part of ``term`` in a field per document holding it, in this
        generation's document numbers (idf is applied at query time)."""
        avg = searcher.avg_field_length(fieldname, 1.0) or 1.0
        found: dict = {}
        for (reader, _offset), segment, offset in zip(self.leaves(searcher), self.segments,
                                                      self.offsets, strict=True):
            local = segment.term_parts(reader, fieldname, term, avg)
            if not offset and not found:
                found = dict(local)
            else:
                found.update({offset + d: part for d, part in local.items()})
        return found

    def term_scores(self, searcher, term: str) -> dict:
        """Relevance of one query word per document holding it, before idf: BM25 over the
        weighted listing text plus TITLE_WEIGHT x BM25 over the title alone (a listing named
        after what you search is what you came for), minus a vanishing per-document
        tie-breaker so equal scores always come out in the same order."""
        found = self._scores.get(term)
        if found is None and is_group(term):
            return self._remember(self._scores, term, group_scores(self, searcher, term))
        if found is None:
            found = self._field_scores(searcher, "text", term)
            for docnum, part in self._field_scores(searcher, "title", term).items():
                if docnum in found:
                    found[docnum] += TITLE_WEIGHT * part
            for docnum in found:
                found[docnum] -= docnum * 1e-12
            self._remember(self._scores, term, found)
        return found

    def ranked(self, searcher, term: str) -> list:
        """The documents holding ``term``, best first (cached per generation)."""
        key = "ranked:" + term
        found = self._values.get(key)
        if found is None:
            scores = self.term_scores(searcher, term)
            found = sorted(scores, key=scores.__getitem__, reverse=True)
            with self._lock:
                if sum(k.startswith("ranked:") for k in self._values) > self.MAX_TERMS // 4:
                    for old in [k for k in self._values if k.startswith("ranked:")][:100]:
                        self._values.pop(old, None)
                self._values[key] = found
        return found

    def top_by_relevance(self, searcher, text_query: TextQuery, docs, count: int) -> list:
        """The ``count`` best-scoring documents of ``docs``: the idf-weighted relevance of
        each required word, plus Chinese whole-word bonuses at half weight.

        Fagin's threshold algorithm over each word's documents in best-first order (cached),
        restricted to ``docs``: it stops as soon as no unseen document can beat the current
        top ``count``, which for real queries is after a few hundred documents, not all the
        matches.
        """
        weights = [self.idf(searcher, t) for t in text_query.atoms]
        weights += [0.5 * self.idf(searcher, t) for t in text_query.extras]
        terms = text_query.atoms + text_query.extras
        parts = [self.term_scores(searcher, term) for term in terms]
        if len(terms) == 1:
            # One word: its best documents that are in ``docs``, straight off the list.
            return list(islice(filter(docs.__contains__, self.ranked(searcher, terms[0])),
                               count))
        lists = [filter(docs.__contains__, self.ranked(searcher, term)) for term in terms]
        pairs = list(zip(weights, parts, strict=True))
        best: list[tuple[float, int]] = []  # min-heap of (score, docnum)
        seen: set[int] = set()
        bounds = [0.0] * len(lists)
        active = [True] * len(lists)
        rounds = 0
        while any(active):
            rounds += 1
            if rounds > 1000 + 4 * count:
                # Flat score distributions make the threshold fall slowly: score everything
                # instead, column by column at C speed.
                return self._score_all(pairs, docs, count)
            for i, members in enumerate(lists):
                if not active[i]:
                    continue
                docnum = next(members, None)
                if docnum is None:
                    active[i], bounds[i] = False, 0.0
                    continue
                bounds[i] = weights[i] * parts[i][docnum]
                if docnum in seen:
                    continue
                seen.add(docnum)
                score = sum(w * part.get(docnum, 0.0) for w, part in pairs)
                if len(best) < count:
                    heapq.heappush(best, (score, docnum))
                elif score > best[0][0]:
                    heapq.heapreplace(best, (score, docnum))
            if len(best) >= count and best[0][0] >= sum(bounds):
                break
        return [docnum for _score, docnum in sorted(best, reverse=True)]

    @staticmethod
    def idf(searcher, term: str) -> float:
        """A word's weight: its idf; a synonym/pinyin group carries its idf in its scores."""
        return 1.0 if is_group(term) else searcher.idf("text", term)

    @staticmethod
    def _score_all(pairs, docs, count: int) -> list:
        order = list(docs)
        weighted = [map(operator.mul, map(part.get, order, repeat(0.0)), repeat(weight))
                    for weight, part in pairs]
        totals = list(map(sum, zip(*weighted, strict=True)))
        best = heapq.nlargest(count, range(len(order)), key=totals.__getitem__)
        return [order[i] for i in best]

    def matching(self, searcher, text_query: TextQuery, require_all: bool) -> frozenset:
        """Documents containing all (or any) of the query's required words."""
        sets = sorted((self.term_set(searcher, "text", term) for term in text_query.atoms),
                      key=len)
        if not sets:
            return frozenset()
        if require_all:
            return sets[0].intersection(*sets[1:])
        return sets[0].union(*sets[1:])


def best_tier(snapshot: Snapshot, searcher, text_query: TextQuery) -> frozenset:
    """"Any of the words" when no listing has them all: only the listings that match the
    most of the query's words, so a three-word query never floods the page with listings
    that share one common word with it."""
    counts: Counter = Counter()
    for term in text_query.atoms:
        counts.update(snapshot.term_set(searcher, "text", term))
    if not counts:
        return frozenset()
    most = max(counts.values())
    return frozenset(d for d, n in counts.items() if n == most)


class _Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list = []
        self.snapshots: dict = {}
        self.segments: dict[str, SegmentData] = {}

    def snapshot_for(self, searcher) -> Snapshot:
        reader = searcher.reader()
        generation = reader.generation()
        with self.lock:
            snapshot = self.snapshots.get(generation)
            if snapshot is not None:
                return snapshot
            segments, offsets, deleted, ids = [], [], [], []
            for leaf, offset in reader.leaf_readers():
                segment = leaf.segment()
                seg_id = segment.segment_id() if segment is not None else f"empty{generation}"
                ids.append(seg_id)
                data = self.segments.get(seg_id)
                if data is None:
                    data = self.segments[seg_id] = SegmentData(leaf.doc_count_all())
                segments.append(data)
                offsets.append(offset)
                deleted.append(leaf.deleted_docs_set if leaf.has_deletions() else frozenset())
            snapshot = Snapshot(generation, segments, offsets, deleted, reader.doc_count_all())
            snapshot.segment_ids = ids
            # Keep the two newest generations (searchers may still be finishing on the older
            # one) and forget segments neither of them uses (merged away).
            for old in sorted(self.snapshots)[:-1]:
                del self.snapshots[old]
            self.snapshots[generation] = snapshot
            used = {seg_id for kept in self.snapshots.values() for seg_id in kept.segment_ids}
            for seg_id in [k for k in self.segments if k not in used]:
                del self.segments[seg_id]
            return snapshot


_pools: dict[str, _Pool] = {}
_pools_lock = threading.Lock()
_POOL_SIZE = 8


def _pool(key: str) -> _Pool:
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.setdefault(key, _Pool())
    return pool


@contextlib.contextmanager
def borrow_searcher(index_dir):
    """A current searcher for ``index_dir`` and the snapshot of its generation."""
    import os

    key = os.path.realpath(str(index_dir))
    ix = open_index(key)
    pool = _pool(key)
    with pool.lock:
        searcher = pool.idle.pop() if pool.idle else None
    if searcher is not None and not searcher.up_to_date():
        # Not Searcher.refresh(): whoosh3's reader reuse carries segments of the old
        # generation into the new reader (documents reappear) and fails on an empty index.
        # Opening a new searcher costs a directory listing and a few small files.
        searcher.close()
        searcher = None
    if searcher is None:
        searcher = ix.searcher()
    snapshot = pool.snapshot_for(searcher)
    try:
        yield searcher, snapshot
    finally:
        with pool.lock:
            if len(pool.idle) < _POOL_SIZE:
                pool.idle.append(searcher)
                searcher = None
        if searcher is not None:
            searcher.close()


def forget_searchers(key: str) -> None:
    with _pools_lock:
        pool = _pools.pop(key, None)
    if pool is not None:
        with pool.lock:
            for searcher in pool.idle:
                searcher.close()
            pool.idle.clear()


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
    and pages agree with the cards. ``synonyms``: phrase -> its equivalents (catalog.synonyms),
    applied as query expansion together with pinyin (catalog.search_expand).
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

    if params.sort == "relevance" and text_query is not None and total:
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

    # Category, sub-category, institution type and rating floor are counted together in one
    # pass per distinct base set (see Snapshot.count and the "combo" values).
    decoded: dict[int, dict] = {}
    complements: dict[int, frozenset] = {}  # base set id -> the rest of the index

    def combo(dimension, position):
        docs = base(dimension)
        key = id(docs)
        if key not in decoded:
            decoded[key] = {"counts": snapshot.count(searcher, "combo", docs, complements)}
        cache = decoded[key]
        if position not in cache:
            totals: Counter = Counter()
            for code, n in cache["counts"].items():
                totals[_COMBO_KEYS[code][position]] += n
            cache[position] = totals
        return cache[position]

    out = Facets()
    top_counts = combo("category", 0)
    selected_top = None
    if category_node is not None:
        selected_top = category_node if not category_node["parent_id"] else tree.by_id.get(
            category_node["parent_id"])
    for node in tree.tops:
        out.categories.append(FacetValue(
            node["slug"], node["name"], node["name_zh"], top_counts.get(str(node["id"]), 0),
            selected=selected_top is not None and node["id"] == selected_top["id"]))
    if selected_top is not None:
        sub_counts = combo("category", 1)
        for node in selected_top["children"]:
            out.subcategories.append(FacetValue(
                node["slug"], node["name"], node["name_zh"], sub_counts.get(str(node["id"]), 0),
                selected=category_node is not None and node["id"] == category_node["id"]))

    inst_counts = combo("institution_type", 2)
    for code, label, label_zh in reference.INSTITUTION_TYPES:
        out.institution_types.append(FacetValue(code, label, label_zh, inst_counts.get(code, 0),
                                                selected=code == params.institution_type))

    region_counts: Counter = Counter()
    for mask, n in snapshot.count(searcher, "serves", base("region"), complements).items():
        for bit, code in enumerate(REGION_CODES):
            if mask >> bit & 1:
                region_counts[code] += n
    for code, label, label_zh in reference.REGIONS:
        out.regions.append(FacetValue(code, label, label_zh, region_counts.get(code, 0),
                                      selected=code == params.region))

    voucher_docs = base("voucher")
    out.voucher = len(voucher_docs & snapshot.term_set(searcher, "voucher", True)) \
        if voucher_docs else 0

    floors = combo("rating", 3)
    for threshold in RATING_OPTIONS:
        count = sum(n for floor, n in floors.items() if floor >= threshold)
        out.ratings.append(FacetValue(str(threshold), f"{threshold}★ & up", f"{threshold}星及以上",
                                      count, selected=threshold == params.min_rating))

    credibility = snapshot.values(searcher, "credibility")
    scores = Counter(credibility[d] for d in base("credibility"))
    for floor, level in CREDIBILITY_OPTIONS.items():
        count = sum(n for value, n in scores.items() if value >= floor)
        out.credibility.append(FacetValue(
            str(floor), level if level == "AAA" else f"{level} & up",
            f"信用{level}" + ("" if level == "AAA" else "及以上"), count,
            selected=floor == params.min_credibility))
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
    # Highlighting analyses the text again (jieba, stemming): about a millisecond per field,
    # most of a results page's time. The result depends only on these arguments (listing text
    # and query terms), so it is memoised per process and can never be stale.
    return _highlight_cached(text, frozenset(terms), whole, maxchars)


@functools.lru_cache(maxsize=10_000)
def _highlight_cached(text: str, terms: frozenset[str], whole: bool,
                      maxchars: int) -> Markup | None:
    fragmenter = WholeFragmenter(charlimit=None) if whole else ContextFragmenter(
        maxchars=maxchars, surround=60, charlimit=None)
    html = highlight(text, terms, ANALYZER, fragmenter, HtmlFormatter(**_FORMATTER_ARGS),
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
class SearchPage:
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


def _snippet(product: Product, terms: set[str]) -> Markup:
    from catalog.search_index import _plain_markdown

    summary = product.summary or ""
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
    from catalog.search_index import visible_ids
    from catalog.services import visible_products_condition

    if len(pids) <= _RECOUNT_IN_CHUNKS:
        ordered = sorted(pids)
        visible: set[int] = set()
        for start in range(0, len(ordered), 500):
            visible |= visible_ids(session, ordered[start:start + 500])
    else:
        visible = set(session.scalars(select(Product.id).where(visible_products_condition())))
    return frozenset(pids - visible)


def _load_visible(session: Session, pids: list[int]) -> dict[int, Product]:
    from catalog.services import visible_products_condition

    if not pids:
        return {}
    return {p.id: p for p in session.scalars(
        select(Product)
        .where(Product.id.in_(pids), visible_products_condition())
        .options(joinedload(Product.provider), joinedload(Product.category))
    ).unique()}


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
    from catalog.search_outbox import enqueue_repair
    from catalog.search_typos import FEW_RESULTS, correct_chinese
    from catalog.synonyms import synonym_map

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
            title_html=highlight_text(product.title, terms) or escape(product.title),
            snippet_html=_snippet(product, terms),
        ))
    return SearchPage(params=typed, hits=hits, total=result.total, page=result.page,
                      page_size=page_size, facets=result.facets,
                      matched_all=result.matched_all, suggestion=suggestion, tree=tree,
                      corrected=corrected)
