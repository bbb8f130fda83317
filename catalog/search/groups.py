"""Groups: one query word that a listing matches through any of several alternatives
(issue 18). A group travels through the ranking code as one pseudo-term, a key starting
with ``GROUP_MARK``; ``Snapshot.term_set`` and ``Snapshot.term_scores`` hand such keys to
``group_set`` and ``group_scores`` here. ``catalog.search.expand`` builds the groups.

An alternative is one or more terms of one field that must all be there (a synonym of
several words, a pinyin string cut into indexed pinyin words). A listing's score for a
group is its best alternative: that alternative's idf-weighted BM25 times its weight, plus
``EXACT_BONUS`` for the phrase exactly as typed when it is a full term.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

GROUP_MARK = "\x1f"
# A listing holding the words as typed always ranks above one found only through a synonym
# (a full Chinese or English term never loses its exact matches to its translations).
EXACT_BONUS = 1000.0


@dataclass(frozen=True)
class Alternative:
    field: str
    weight: float
    terms: tuple[str, ...]
    exact: bool = False  # a full term as typed: ranked before its synonyms (EXACT_BONUS)


def is_group(term: str) -> bool:
    return term.startswith(GROUP_MARK)


def group_key(alternatives: list[Alternative]) -> str:
    return GROUP_MARK + json.dumps(
        [[a.field, a.weight, list(a.terms), a.exact] for a in alternatives],
        ensure_ascii=False, separators=(",", ":"))


def parse_key(key: str) -> list[Alternative]:
    return [Alternative(f, w, tuple(t), x) for f, w, t, x in json.loads(key[len(GROUP_MARK):])]


def group_set(snapshot, searcher, key: str) -> frozenset:
    """Live documents holding any alternative of the group (each with all its terms)."""
    found: set = set()
    for alternative in parse_key(key):
        sets = sorted((snapshot.term_set(searcher, alternative.field, term)
                       for term in alternative.terms), key=len)
        if sets:
            found |= sets[0].intersection(*sets[1:])
    return frozenset(found)


def group_scores(snapshot, searcher, key: str) -> dict:
    """Score of the group per document that matches it: its best alternative's weighted,
    idf-weighted BM25 (the caller weighs a group by 1.0, a plain term by its idf)."""
    best: dict = {}
    for alternative in parse_key(key):
        docs = None
        total: dict = {}
        for term in alternative.terms:
            if alternative.field == "text":
                parts = snapshot.term_scores(searcher, term)
                idf = searcher.idf("text", term)
            else:
                parts = snapshot._field_scores(searcher, alternative.field, term)
                idf = searcher.idf(alternative.field, term)
            docs = set(parts) if docs is None else docs & parts.keys()
            for docnum, part in parts.items():
                total[docnum] = total.get(docnum, 0.0) + idf * part
        bonus = EXACT_BONUS if alternative.exact else 0.0
        for docnum in docs or ():
            value = alternative.weight * total[docnum] + bonus
            if value > best.get(docnum, 0.0):
                best[docnum] = value
    return best
