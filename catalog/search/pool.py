"""Searchers and what they have read: a small per-index pool of Whoosh searchers (not
shared between threads) and the per-segment caches of postings and values, stitched together
per index generation (a Snapshot).
"""

from __future__ import annotations

import contextlib
import heapq
import operator
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice, repeat

from catalog.search.groups import group_scores, group_set, is_group
from catalog.search.index import forget_index_handle, open_index
from catalog.search.schema import NO_PRICE, REGION_CODES, analyze

# --------------------------------------------------------------------------- text query

@dataclass
class TextQuery:
    """The analysed words of a query: ``atoms`` must match, ``extras`` only raise the score."""

    text: str
    atoms: list[str]
    extras: list[str]
    # Index terms to highlight that the words matched through synonyms or pinyin
    # (catalog.search.expand); group pseudo-terms themselves are never highlighted.
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
            elif fieldname == "provider_id":
                # The institution of each listing, as an int (0: none). Read straight from
                # the postings, not through term_set: one set per institution would crowd
                # the words out of the term cache.
                found = [0] * self.size
                for term in reader.lexicon(fieldname):
                    text = term.decode("utf-8") if isinstance(term, bytes) else term
                    matcher = _raw_postings(reader, fieldname, text)
                    if matcher is None or not text.isdigit():
                        continue
                    owner = int(text)
                    for docnum in _posting_lists(matcher)[0]:
                        found[docnum] = owner
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


def forget_index(index_dir) -> None:
    """Drop the cached index handle and searchers of ``index_dir`` (tests that delete it)."""
    key = os.path.realpath(str(index_dir))
    forget_index_handle(key)
    forget_searchers(key)
