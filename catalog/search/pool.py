"""Searchers and what they have read: a small per-index pool of Whoosh searchers (not
shared between threads) and the per-segment caches of postings and values, stitched together
per index generation (a Snapshot).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import operator
import os
import threading
from collections import Counter, deque
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
    RECENT_POSTINGS = 16

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.sets: dict[tuple, frozenset] = {}
        self.parts: dict[str, dict] = {}
        self.values: dict[str, list] = {}
        self.recent: dict[tuple, tuple] = {}

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
            if fieldname in ("text", "title"):  # ranked right after matching: keep postings
                postings = self.postings(reader, fieldname, value)
                found = frozenset(postings[0]) if postings is not None else frozenset()
            else:
                matcher = _raw_postings(reader, fieldname, value)
                found = (frozenset(_posting_lists(matcher)[0]) if matcher is not None
                         else frozenset())
            self._remember(self.sets, key, found)
        return found

    def term_parts(self, reader, fieldname: str, term: str, avg_length: float) -> dict:
        """BM25 term-frequency part (without idf) of ``term`` per document of this segment."""
        key = (fieldname, term)
        found = self.parts.get(key)
        if found is None:
            found = {}
            postings = self.postings(reader, fieldname, term)
            if postings is not None:
                norms = self._norms(reader, fieldname, avg_length)
                k1 = _BM25_K1 + 1
                ids, tfs = postings
                found = {d: tf * k1 / (tf + norms[d]) for d, tf in zip(ids, tfs, strict=True)}
            self._remember(self.parts, key, found)
        return found

    def relevance_parts(self, reader, term: str, avg_text: float, avg_title: float,
                        offset: int = 0) -> dict:
        """Relevance of ``term`` per document of this segment holding it in ``text``, before
        idf, keyed by generation document number (local + ``offset``): BM25 over ``text``
        plus TITLE_WEIGHT x BM25 over ``title``, minus the per-document tie-breaker
        (see ``Snapshot.term_scores``). One pass over the postings: the same floats as adding
        the two ``term_parts`` and subtracting the tie-breaker afterwards."""
        key = ("relevance", term, offset)
        found = self.parts.get(key)
        if found is None:
            found = {}
            postings = self.postings(reader, "text", term)
            if postings is not None:
                norms = self._norms(reader, "text", avg_text)
                title = self.term_parts(reader, "title", term, avg_title)
                k1, weight = _BM25_K1 + 1, TITLE_WEIGHT
                ids, tfs = postings
                if title:
                    found = {offset + d: (tf * k1 / (tf + norms[d]) + weight * title[d]
                                          if d in title else tf * k1 / (tf + norms[d]))
                             - (offset + d) * 1e-12 for d, tf in zip(ids, tfs, strict=True)}
                else:
                    found = {offset + d: tf * k1 / (tf + norms[d]) - (offset + d) * 1e-12
                             for d, tf in zip(ids, tfs, strict=True)}
            self._remember(self.parts, key, found)
        return found

    def relevance_of(self, reader, term: str, docs, avg_text: float, avg_title: float,
                     offset: int = 0) -> dict:
        """``relevance_parts`` for the local documents ``docs`` only (those holding the word),
        the same floats, without a pass over all the word's postings in Python."""
        postings = self.postings(reader, "text", term)
        if postings is None:
            return {}
        ids, tfs = postings
        if len(docs) * 8 < len(ids):  # a few documents of a long list: look each one up
            tf_of = {}
            for d in docs:
                at = bisect.bisect_left(ids, d)
                if at < len(ids) and ids[at] == d:
                    tf_of[d] = tfs[at]
        else:
            tf_of = dict(zip(ids, tfs, strict=True))
        norms = self._norms(reader, "text", avg_text)
        title = self.term_parts(reader, "title", term, avg_title)
        k1, weight = _BM25_K1 + 1, TITLE_WEIGHT
        out = {}
        for d in filter(tf_of.__contains__, docs):
            tf = tf_of[d]
            part = tf * k1 / (tf + norms[d])
            if d in title:
                part = part + weight * title[d]
            out[offset + d] = part - (offset + d) * 1e-12
        return out

    def postings(self, reader, fieldname: str, term: str):
        """(document numbers, term frequencies) of a term, read once: the words of a query
        are read for matching and again for ranking, so the last few are kept."""
        key = (fieldname, term)
        found = self.recent.get(key)
        if found is None:
            matcher = _raw_postings(reader, fieldname, term)
            if matcher is None:
                return None
            found = _posting_lists(matcher, weights=True)
            with self.lock:
                if len(self.recent) >= self.RECENT_POSTINGS:
                    self.recent.pop(next(iter(self.recent)), None)
                self.recent[key] = found
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
                    self.values_of(reader, "rating_floor"), strict=True)]
            elif fieldname == "rating_floor":  # whole stars (the rating facet's floors)
                found = [int(r) for r in self.values_of(reader, "rating")]
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
_COMBO_FIELDS = ("cat_top", "cat_sub", "institution_type", "rating_floor")


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
        self._ranked_once: set[str] = set()
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

    def code_column(self, searcher, fieldname: str):
        """``fieldname``'s value per document as one byte, a code (1-255; 0: no document),
        as an int for masking, with the values in code order; None when a field has more
        than 255 distinct values (counted document by document instead)."""
        key = "codes:" + fieldname
        if key not in self._values:
            values = self.values(searcher, fieldname)
            distinct = sorted(set(values), key=repr)
            found = None
            if len(distinct) <= 255:
                code_of = {value: code for code, value in enumerate(distinct, start=1)}
                found = (int.from_bytes(bytes(map(code_of.__getitem__, values)), "little"),
                         distinct)
            with self._lock:
                self._values[key] = found
        return self._values[key]

    def region_columns(self, searcher) -> list[int]:
        """Per region (REGION_CODES order), a byte per document: 1 where the listing serves
        it (nationwide ones serve every region), as an int for masking."""
        key = "regions:columns"
        found = self._values.get(key)
        if found is None:
            serves = self.values(searcher, "serves")
            found = []
            for shift in range(0, len(REGION_CODES), 8):
                # One byte of each serving mask, then each of its bits through a table.
                byte = bytes(map((255).__and__, map(shift.__rrshift__, serves)))
                for bit in range(min(8, len(REGION_CODES) - shift)):
                    table = bytes((n >> bit) & 1 for n in range(256))
                    found.append(int.from_bytes(byte.translate(table), "little"))
            with self._lock:
                self._values[key] = found
        return found

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
            avg_text = searcher.avg_field_length("text", 1.0) or 1.0
            avg_title = searcher.avg_field_length("title", 1.0) or 1.0
            parts = [segment.relevance_parts(reader, term, avg_text, avg_title, offset)
                     for (reader, _offset), segment, offset in zip(
                         self.leaves(searcher), self.segments, self.offsets, strict=True)]
            # Each segment's part is final (renumbered, tie-breaker applied) and read-only, so
            # an index of one segment shares it instead of copying.
            found = parts[0]
            if len(parts) > 1:
                found = dict(found)
                for part in parts[1:]:
                    found.update(part)
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

    def _has_ranked(self, term: str) -> bool:
        """Whether ``term``'s best-first order is worth having: it is cached, or the word was
        ranked once before in this generation (a repeated word pays for the sort once and is
        then cheap; a word seen once never pays for sorting all its documents)."""
        if "ranked:" + term in self._values:
            return True
        with self._lock:
            if term in self._ranked_once:
                return True
            if len(self._ranked_once) >= 4 * self.MAX_TERMS:
                self._ranked_once.clear()
            self._ranked_once.add(term)
        return False

    def top_by_relevance(self, searcher, text_query: TextQuery, docs, count: int) -> list:
        """The ``count`` best-scoring documents of ``docs``: the idf-weighted relevance of
        each required word, plus Chinese whole-word bonuses at half weight.

        One word: the start of its order known from its title matches, else its whole
        order (``_best_for_word``). Several words: Fagin's threshold algorithm over each
        word's documents in best-first order (cached), restricted to ``docs``: it stops as
        soon as no unseen document can beat the current top ``count``. The orders are built
        the second time a word is searched; the first time, the documents of ``docs`` are
        scored column by column (``_score_docs``), which costs less than building the orders
        for a query that may never come again.
        """
        weights = [self.idf(searcher, t) for t in text_query.atoms]
        weights += [0.5 * self.idf(searcher, t) for t in text_query.extras]
        terms = text_query.atoms + text_query.extras
        if len(terms) == 1:
            return self._best_for_word(searcher, terms[0], docs, count)
        # Several words: the threshold algorithm over the words' best-first orders once
        # every word has been ranked before (the orders are built then, and cached); a query
        # with a word seen for the first time scores just the documents holding every word
        # instead of scoring and sorting all the documents of each word.
        seen = [self._has_ranked(term) for term in terms]
        if not all(seen):
            order = sorted(docs)
            parts = [self.scores_of(searcher, term, order) for term in terms]
            return self._score_docs(list(zip(weights, parts, strict=True)), order, count)
        parts = [self.term_scores(searcher, term) for term in terms]
        pairs = list(zip(weights, parts, strict=True))
        lists = [filter(docs.__contains__, self.ranked(searcher, term)) for term in terms]
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

    def scores_of(self, searcher, term: str, docs) -> dict:
        """``term_scores(term)`` restricted to ``docs`` (ascending document numbers), the same
        floats, computed for those documents only unless the word's scores are cached."""
        found = self._scores.get(term)
        if found is not None or is_group(term):
            return found if found is not None else self.term_scores(searcher, term)
        avg_text = searcher.avg_field_length("text", 1.0) or 1.0
        avg_title = searcher.avg_field_length("title", 1.0) or 1.0
        out: dict = {}
        for (reader, _offset), segment, offset in zip(self.leaves(searcher), self.segments,
                                                      self.offsets, strict=True):
            if len(self.segments) == 1:
                local = docs
            else:
                low = bisect.bisect_left(docs, offset)
                high = bisect.bisect_left(docs, offset + segment.size)
                local = [d - offset for d in docs[low:high]]
            out.update(segment.relevance_of(reader, term, local, avg_text, avg_title, offset))
        return out

    def _best_for_word(self, searcher, term: str, docs, count: int) -> list:
        """The ``count`` best of ``docs`` for a one-word query, exactly as the word's
        best-first order (``ranked``) filtered by ``docs`` gives them.

        A listing without the word in its title scores below ``_BM25_K1 + 1`` (the text part
        of BM25 never reaches it), so the listings with the word in the title that score at
        least that, best first, are the start of the word's order (``title_prefix``, cached):
        when ``count`` of ``docs`` are among them, the rest of the matches need no scoring
        and no sorting. Otherwise the whole order, built once the word is searched again
        (the first time, the best of ``docs`` are picked without sorting them all).
        """
        ranked = self._values.get("ranked:" + term)
        if ranked is None and not is_group(term):
            best = list(islice(filter(docs.__contains__, self.title_prefix(searcher, term)),
                               count))
            if len(best) == count:
                return best
        if ranked is None and not self._has_ranked(term):
            return self._best_of(self.term_scores(searcher, term), docs, count)
        return list(islice(filter(docs.__contains__, ranked or self.ranked(searcher, term)),
                           count))

    def title_prefix(self, searcher, term: str) -> list:
        """The start of ``term``'s best-first order that needs no listing without the word in
        its title: the listings with it in the title scoring at least ``_BM25_K1 + 1``, best
        first, ties in document order (cached per generation)."""
        key = "prefix:" + term
        found = self._values.get(key)
        if found is None:
            candidates = sorted(self.term_set(searcher, "title", term))
            scores = self.scores_of(searcher, term, candidates)
            bound = _BM25_K1 + 1
            strong = [d for d in candidates if scores.get(d, 0.0) >= bound]
            found = sorted(strong, key=scores.__getitem__, reverse=True)
            with self._lock:
                if sum(k.startswith("prefix:") for k in self._values) > self.MAX_TERMS // 4:
                    for old in [k for k in self._values if k.startswith("prefix:")][:100]:
                        self._values.pop(old, None)
                self._values[key] = found
        return found

    @staticmethod
    def _best_of(scores: dict, docs, count: int) -> list:
        """The ``count`` best of ``docs`` by one word's scores, in exactly the order of
        ``ranked`` filtered by ``docs`` (ties in document order), without sorting them all."""
        if len(docs) * 4 < len(scores):
            source = filter(scores.__contains__, sorted(docs))
        else:
            source = filter(docs.__contains__, scores)  # dict order: document order
        return heapq.nlargest(count, source, key=scores.__getitem__)

    @staticmethod
    def _score_docs(pairs, docs, count: int) -> list:
        """The ``count`` best of ``docs`` by the weighted sum of the words' scores, scored
        column by column at C speed; order (score, document number) descending, as the
        threshold algorithm returns it."""
        order = list(docs)
        weighted = [map(operator.mul, map(part.get, order, repeat(0.0)), repeat(weight))
                    for weight, part in pairs]
        totals = map(sum, zip(*weighted, strict=True))
        return [docnum for _score, docnum in heapq.nlargest(
            count, zip(totals, order, strict=True))]

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


class FacetCounter:
    """Facet counts over sets of documents of one snapshot, for one results page.

    A small set is counted by looking up each document's value. A large one (most of a big
    catalogue: a common word, a browse page) would cost a Python-level step per document
    per facet, so it is turned once into a mask (one byte per document, 0xFF where the set
    has it) and every facet is counted against per-generation columns of value codes (one
    byte per document) with C-level integer ``&``, ``bytes.count`` and ``int.bit_count``:
    the cost no longer grows with the hits but with the index, about 2-3 ms for all the
    facets of 100k listings. Both ways give the same counts.
    """

    SMALL = 4  # sets under 1/SMALL of the index are counted document by document

    def __init__(self, snapshot: Snapshot, searcher):
        self.snapshot = snapshot
        self.searcher = searcher
        self._masks: dict[int, tuple] = {}  # id(docs) -> (docs, mask as int)
        self._tallies: dict[tuple, Counter] = {}

    def _mask(self, docs):
        if len(docs) * self.SMALL < self.snapshot.size:
            return None
        found = self._masks.get(id(docs))
        if found is None or found[0] is not docs:
            mask = bytearray(self.snapshot.size)
            deque(map(mask.__setitem__, docs, repeat(255)), maxlen=0)
            found = self._masks[id(docs)] = (docs, int.from_bytes(mask, "little"))
        return found[1]

    def _masked(self, column: int, mask: int) -> bytes:
        return (column & mask).to_bytes(self.snapshot.size, "little")

    def values(self, docs, fieldname: str) -> Counter:
        """How many of ``docs`` have each value of ``fieldname`` (cat_top, cat_sub,
        institution_type, rating_floor, credibility)."""
        key = (id(docs), fieldname)
        found = self._tallies.get(key)
        if found is not None:
            return found
        mask = self._mask(docs)
        column = None if mask is None else self.snapshot.code_column(self.searcher, fieldname)
        if column is None and fieldname in _COMBO_FIELDS:
            # Listing by listing: the four combined in one pass (the "combo" values).
            combo_key = (id(docs), "combo")
            combos = self._tallies.get(combo_key)
            if combos is None:
                combo = self.snapshot.values(self.searcher, "combo")
                combos = self._tallies[combo_key] = Counter(map(combo.__getitem__, docs))
            position = _COMBO_FIELDS.index(fieldname)
            found = Counter()
            for code, n in combos.items():
                found[_COMBO_KEYS[code][position]] += n
        elif column is None:
            values = self.snapshot.values(self.searcher, fieldname)
            found = Counter(map(values.__getitem__, docs))
        else:
            codes, code_values = column
            masked = self._masked(codes, mask)
            found = Counter()
            for code, value in enumerate(code_values, start=1):
                n = masked.count(code)
                if n:
                    found[value] += n
        self._tallies[key] = found
        return found

    def regions(self, docs) -> Counter:
        """How many of ``docs`` serve each region (nationwide listings serve every one)."""
        mask = self._mask(docs)
        counts: Counter = Counter()
        if mask is None:
            for serves, n in Counter(map(self.snapshot.values(self.searcher, "serves")
                                         .__getitem__, docs)).items():
                for bit, code in enumerate(REGION_CODES):
                    if serves >> bit & 1:
                        counts[code] += n
            return counts
        for code, column in zip(REGION_CODES, self.snapshot.region_columns(self.searcher),
                                strict=True):
            n = (column & mask).bit_count()
            if n:
                counts[code] = n
        return counts

    def at_least(self, docs, fieldname: str, floors) -> dict:
        """How many of ``docs`` have a value of ``fieldname`` at or above each floor."""
        mask = self._mask(docs)
        column = None if mask is None else self.snapshot.code_column(self.searcher, fieldname)
        if column is None:
            counts = self.values(docs, fieldname)
            return {floor: sum(n for value, n in counts.items() if value >= floor)
                    for floor in floors}
        codes, code_values = column
        masked = self._masked(codes, mask)
        out = {}
        for floor in floors:
            table = bytearray(256)
            for code, value in enumerate(code_values, start=1):
                table[code] = value >= floor
            out[floor] = masked.translate(table).count(1)
        return out

    def having(self, docs, term_docs: frozenset) -> int:
        """How many of ``docs`` are in ``term_docs``."""
        return len(docs & term_docs) if docs else 0


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
