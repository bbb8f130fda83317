"""Query expansion (issue 18): synonyms and abbreviations, pinyin and pinyin initials.

A plain query word is one index term that must match. An expanded word is a *group*
(catalog.search.groups): a listing matches it when it holds any one of its alternatives, so
matching, filters, facets and the early-stopping ranking treat it like any other word.
Exact Chinese or English words weigh 1.0, synonyms ``SYNONYM_WEIGHT``, pinyin
``PINYIN_WEIGHT`` and initials ``INITIALS_WEIGHT``, so pinyin matches rank below exact ones
whenever both are present; a full term as typed is *exact* (its listings come first).

When the query has no synonym and no word needs pinyin, ``build_query`` returns exactly
``TextQuery.parse(text)``: full Chinese and English queries behave as before.
"""

from __future__ import annotations

import re

from catalog.search.groups import Alternative, group_key
from catalog.search.pool import TextQuery
from catalog.search.schema import analyze
from catalog.search.text import fold, has_han, pinyin_split, split_into_terms

EXACT_MIN_CHARS = 4
SYNONYM_WEIGHT = 0.9
PINYIN_WEIGHT = 0.7
INITIALS_WEIGHT = 0.5
_ASCII_WORD = re.compile(r"^[a-z]+$")


class Vocabulary:
    """Which terms the index holds, per field (document frequencies, cached per query)."""

    def __init__(self, searcher):
        self.reader = searcher.reader()
        self._cache: dict = {}

    def has(self, field: str, term: str) -> bool:
        key = (field, term)
        found = self._cache.get(key)
        if found is None:
            try:
                found = self._cache[key] = self.reader.doc_frequency(field, term) > 0
            except KeyError:  # an index without the field (built before issue 18)
                found = self._cache[key] = False
        return found

    def pinyin_words(self, pinyin: str) -> list[str]:
        """Indexed Chinese words that sound like ``pinyin`` (most frequent first)."""
        prefix = f"{pinyin}="
        try:
            terms = list(self.reader.expand_prefix("pyword", prefix))
        except KeyError:
            return []
        words = []
        for term in terms:
            text = term.decode("utf-8") if isinstance(term, bytes) else term
            if text.split("=", 1)[0] == pinyin:
                words.append((self.reader.doc_frequency("pyword", text), text.split("=", 1)[1]))
        return [word for _n, word in sorted(words, reverse=True)]


def _phrase_alternative(phrase: str, typed: bool) -> Alternative | None:
    """A synonym phrase as the index terms that must all match (its required words).

    The phrase as typed weighs 1.0, its equivalents SYNONYM_WEIGHT. A typed phrase that is a
    full term (``EXACT_MIN_CHARS`` or more, and no word of it cut down to one character)
    is exact: its listings come first. Short abbreviations ("高企", "PCT", "科技贷") are not:
    their expansions compete with them on score, since a short form says less on its own
    ("科技贷" is cut into 科技 + 贷, which guaranteed loans also hold).
    """
    atoms = TextQuery.parse(phrase).atoms
    if not atoms:
        return None
    exact = typed and len(phrase) >= EXACT_MIN_CHARS and all(len(t) >= 2 for t in atoms)
    return Alternative("text", 1.0 if typed else SYNONYM_WEIGHT, tuple(atoms), exact)


def pinyin_alternatives(word: str, vocabulary: Vocabulary) -> list[Alternative]:
    """How a Latin word the text index does not know may be pinyin: full pinyin cut into
    indexed pinyin words, or initials cut into indexed initials of two letters or more."""
    alternatives = []
    if pinyin_split(word) is not None:
        pieces = split_into_terms(word, lambda t: vocabulary.has("pinyin", t))
        if pieces:
            alternatives.append(Alternative("pinyin", PINYIN_WEIGHT, tuple(pieces)))
    if 2 <= len(word) <= 12 and not alternatives:
        pieces = split_into_terms(word, lambda t: vocabulary.has("initials", t), min_piece=2)
        if pieces:
            alternatives.append(Alternative("initials", INITIALS_WEIGHT, tuple(pieces)))
    return alternatives


def _synonym_spans(folded: str, synonyms) -> list[tuple[int, int, tuple[str, ...]]]:
    """Where the query holds a synonym phrase: (start, end, the phrase's group), longest
    phrases first, never overlapping; Latin phrases only as whole words."""
    if not synonyms:
        return []
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    for phrase in sorted(synonyms, key=len, reverse=True):
        start = 0
        while True:
            at = folded.find(phrase, start)
            if at < 0:
                break
            end = at + len(phrase)
            start = at + 1
            if phrase[0].isascii() and phrase[0].isalnum() and at > 0 \
                    and folded[at - 1].isascii() and folded[at - 1].isalnum():
                continue
            if phrase[-1].isascii() and phrase[-1].isalnum() and end < len(folded) \
                    and folded[end].isascii() and folded[end].isalnum():
                continue
            if any(s < end and at < e for s, e, _g in spans):
                continue
            spans.append((at, end, synonyms[phrase]))
    return sorted(spans)


def build_query(searcher, text: str, synonyms: dict | None = None):
    """The TextQuery for ``text``: synonym phrases become groups of their equivalents, and
    Latin words the index does not know become pinyin or initials groups."""
    vocabulary = Vocabulary(searcher)
    folded = fold(text)
    spans = _synonym_spans(folded, synonyms or {})
    atoms: list[str] = []
    extras: list[str] = []
    shown: set[str] = set()
    rest = []
    cursor = 0
    for start, end, group in spans:
        rest.append(folded[cursor:start])
        cursor = end
        alternatives = []
        phrase = folded[start:end]
        extras.extend(TextQuery.parse(phrase).extras)  # whole-word bonuses of the phrase
        for equivalent in group:
            alternative = _phrase_alternative(equivalent, typed=equivalent == phrase)
            if alternative and all(vocabulary.has("text", t) for t in alternative.terms):
                alternatives.append(alternative)
                shown.update(alternative.terms)
        if alternatives:
            atoms.append(group_key(alternatives))
        else:  # nothing of the group is indexed: the phrase stays a plain, required word
            rest.append(f" {phrase} ")
    rest.append(folded[cursor:])
    remaining = " ".join(rest)
    plain = TextQuery.parse(remaining)
    if not spans and not any(_needs_pinyin(term, vocabulary) for term in plain.atoms):
        return TextQuery.parse(text)

    words = _source_words(remaining)
    for term in plain.atoms:
        source = words.get(term, term)
        if _needs_pinyin(term, vocabulary):
            alternatives = pinyin_alternatives(source, vocabulary)
            if alternatives:
                atoms.append(group_key(alternatives))
                for alternative in alternatives:
                    if alternative.field == "pinyin":
                        for piece in alternative.terms:
                            shown.update(vocabulary.pinyin_words(piece)[:3])
                continue
        atoms.append(term)
    extras.extend(term for term in plain.extras if term not in atoms)
    query = TextQuery(text=text, atoms=list(dict.fromkeys(atoms)), extras=extras)
    query.shown = shown
    return query


def _needs_pinyin(term: str, vocabulary: Vocabulary) -> bool:
    return bool(_ASCII_WORD.match(term)) and not vocabulary.has("text", term)


def _source_words(text: str) -> dict[str, str]:
    """Analysed term -> the word as typed (pinyin must be read before English stemming)."""
    return {term: text[start:end].lower() for term, start, end in analyze(text)
            if not has_han(term)}
