"""What the listing index stores and how its text is analysed: the Whoosh schema, the
jieba + Porter analyzer and the field weights.

Text analysis: traditional characters are read as simplified ones (catalog.search.text),
then jieba segments Chinese (search mode, so "发明专利申请" also yields "发明",
"专利", "申请"), English runs come out as words; then case folding, stop words and Porter
stemming ("applications" and "application" both become "applic"). The tokenizer is ours
rather than ``jieba.analyse.ChineseTokenizer`` because that one reports character offsets as
token positions and importing ``jieba.analyse`` loads (and leaks a handle on) its IDF table.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator

from whoosh.analysis import Filter, LowercaseFilter, StopFilter, Token, Tokenizer
from whoosh.fields import BOOLEAN, DATETIME, ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.lang.porter import stem

from catalog.search.text import PinyinFilter, has_han, initials_of, pinyin_of, to_simplified
from marketplace import reference

log = logging.getLogger(__name__)

# Bump when the schema or analysis changes: a new name means a new, empty index that
# `reindex` fills, instead of a silently mismatched old one.
INDEX_NAME = "products_v3"
LOCK_FILE = "writer.lock"

STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "have", "if", "in",
    "is", "it", "may", "not", "of", "on", "or", "that", "the", "this", "to", "us", "we", "when",
    "will", "with", "you", "your", "our",
    "的", "了", "和", "与", "及", "或", "等", "是", "在", "为", "对", "将",
))

# How many times each part of a listing is written into the one searchable ``text`` field:
# repetition is the field weight (a title word counts about three times a description word).
# One field keeps every query a handful of plain term look-ups, which is what makes a pure
# Python engine fast enough at 100k listings (see bench/search.py).
FIELD_WEIGHTS = {
    "title": 3,
    "tags": 2,
    "category": 2,
    "provider": 1,
    "summary": 1,
    "regions": 1,
    "description": 1,
}

# Stored in price_from when a listing has no price (quote listings): sorts last both ways
# and never falls inside a price filter, which starts at 0.
NO_PRICE = -1
REGION_CODES = tuple(code for code, _en, _zh in reference.REGIONS)  # region bit order


# --------------------------------------------------------------------------- jieba

_jieba_lock = threading.Lock()
_jieba_ready = False


def load_jieba():
    """Load jieba's dictionary once per process (about a second), quietly, cache in tmp."""
    global _jieba_ready
    import jieba

    if _jieba_ready:
        return jieba
    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.dt.tmp_dir = tempfile.gettempdir()
            jieba.initialize()
            _jieba_ready = True
    return jieba




_HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Runs of Chinese characters, or runs of other letters/digits (English words, "5G", "ISO9001").
_RUNS = re.compile(f"([{_HAN_RANGES}]+)|([^\\W{_HAN_RANGES}_]+)")


@functools.lru_cache(maxsize=100_000)
def _segment_han(run: str) -> tuple[tuple[str, int, int], ...]:
    """jieba search-mode words of a run of Chinese characters (runs repeat a lot: cached),
    traditional characters read as simplified ones (same length, so offsets hold)."""
    jieba = load_jieba()
    return tuple(jieba.tokenize(to_simplified(run), mode="search"))


def _segment_raw(value: str) -> tuple[tuple[str, int, int], ...]:
    """Indexable words of ``value`` with their character offsets, NFKC-normalised.

    Only Chinese runs go through jieba; other words are split on non-word characters, which
    is what jieba does with them too, at a fraction of the cost.
    """
    words = []
    for match in _RUNS.finditer(value):
        han, other = match.groups()
        start = match.start()
        if han:
            words.extend((word, start + s, start + e) for word, s, e in _segment_han(han))
        elif len(other) > 1 or other.isdigit():
            words.append((unicodedata.normalize("NFKC", other), start, match.end()))
    return tuple(words)


# Provider names, category paths, region lists and tags repeat across many listings.
_segment_cached = functools.lru_cache(maxsize=50_000)(_segment_raw)


def _segment(value: str) -> tuple[tuple[str, int, int], ...]:
    """``_segment_raw``, remembered for short values (long descriptions rarely repeat)."""
    return _segment_cached(value) if len(value) <= 300 else _segment_raw(value)


class JiebaTokenizer(Tokenizer):
    """Mixed Chinese/English tokenizer on jieba's search-mode segmentation.

    Emits sequential positions and original character offsets (for highlighting), and drops
    whitespace, punctuation and one-letter Latin tokens.
    """

    def __eq__(self, other):
        return other.__class__ is self.__class__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True, mode="",
                 **kwargs) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            token.original = token.text = value
            token.boost = 1.0
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar = start_char
                token.endchar = start_char + len(value)
            yield token
            return
        pos = start_pos
        for word, start, end in _segment(value):
            token.text = word
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = word
            if positions:
                token.pos = pos
                pos += 1
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


@functools.lru_cache(maxsize=50000)
def _stem(word: str) -> str:
    return stem(word)


class AsciiStemFilter(Filter):
    """Porter-stem Latin words only; Chinese tokens pass through untouched."""

    def __eq__(self, other):
        return other.__class__ is self.__class__

    def __call__(self, tokens):
        for token in tokens:
            if not token.stopped and token.text.isascii():
                token.text = _stem(token.text)
            yield token


def make_analyzer():
    """jieba tokenizer | case folding | stop words | English stemming."""
    return (JiebaTokenizer() | LowercaseFilter()
            | StopFilter(stoplist=STOP_WORDS, minsize=1) | AsciiStemFilter())


class SpellingWordFilter(Filter):
    """Keep plain Latin words of three letters or more: what "did you mean" can respell."""

    def __eq__(self, other):
        return other.__class__ is self.__class__

    def __call__(self, tokens):
        for token in tokens:
            if len(token.text) >= 3 and token.text.isascii() and token.text.isalpha():
                yield token


def make_spelling_analyzer():
    """Unstemmed, lower-case Latin words for "did you mean" suggestions."""
    return JiebaTokenizer() | LowercaseFilter() | SpellingWordFilter()


def analyze(text: str) -> list[tuple[str, int, int]]:
    """Tokens of ``text`` as (term, startchar, endchar): the same terms the index holds."""
    return [(t.text, t.startchar, t.endchar)
            for t in ANALYZER(text, chars=True, mode="query") if not t.stopped]


ANALYZER = make_analyzer()


def make_pinyin_analyzer(initials: bool = False):
    """jieba words of the (simplified) text as full pinyin, or as initials (issue 18)."""
    return JiebaTokenizer() | PinyinFilter(initials=initials)


SPELLING_ANALYZER = make_spelling_analyzer()
PINYIN_ANALYZER = make_pinyin_analyzer()
INITIALS_ANALYZER = make_pinyin_analyzer(initials=True)


def _terms_of(kind: str, value: str) -> tuple[str, ...]:
    """The analyzer of field ``kind`` applied to ``value``, token by token without Whoosh's
    chain of generators (a third of the indexing time of a listing's text). Each branch is
    the filters of that analyzer in order (make_analyzer, make_spelling_analyzer,
    make_pinyin_analyzer); tests/test_search_index_terms.py holds the two equal."""
    words = [word for word, _start, _end in _segment(value)]
    if kind == "text":  # LowercaseFilter | StopFilter(STOP_WORDS, minsize=1) | AsciiStemFilter
        lowered = (word.lower() for word in words)
        return tuple(_stem(word) if word.isascii() else word
                     for word in lowered if word and word not in STOP_WORDS)
    if kind == "spell":  # LowercaseFilter | SpellingWordFilter
        lowered = (word.lower() for word in words)
        return tuple(word for word in lowered
                     if len(word) >= 3 and word.isascii() and word.isalpha())
    # PinyinFilter(initials=...): Chinese words only, as pinyin or initials.
    convert, shortest = (initials_of, 2) if kind == "initials" else (pinyin_of, 1)
    converted = (convert(word) for word in words
                 if len(word) >= shortest and not word.isascii() and has_han(word))
    return tuple(text for text in converted if text)


# Parts of a listing that repeat across the catalogue (category paths, provider names, region
# lists, tags; often titles) are analysed once per process; long descriptions are not kept.
@functools.lru_cache(maxsize=20_000)
def _cached_terms(kind: str, value: str) -> tuple[str, ...]:
    return _terms_of(kind, value)


def part_terms(kind: str, value: str) -> tuple[str, ...]:
    """The indexed terms of one part of a listing for field kind ``kind`` ("text", "spell",
    "pinyin", "initials"): exactly what that field's analyzer makes of ``value``.

    Documents pass these lists to Whoosh instead of strings (a list bypasses the field's
    analyzer, see ``catalog.search.index.document_for``): each part is analysed once per
    kind instead of once per repetition and per field, and the terms, their frequencies and
    the field length, all BM25 reads of a ``phrase=False`` field, come out the same.
    """
    if not value:
        return ()
    if len(value) > 300:
        return _terms_of(kind, value)
    return _cached_terms(kind, value)


# What of a listing its pinyin fields hold (repetition is weight, as in ``text``): the parts
# a buyer names a service by, not the long description.
PINYIN_WEIGHTS = {"title": 3, "tags": 2, "category": 2, "summary": 1}


def _column(field):
    """A number searches read only from its column (catalog/search/pool.py sorts and filters
    on column values, never by a range over terms): one exact term per value instead of the
    8-16 precision tiers Whoosh indexes for range queries by default, a third of all
    postings of a document."""
    field.shift_step = 0
    return field


def make_schema() -> Schema:
    return Schema(
        id=ID(stored=True, unique=True),
        pid=_column(NUMERIC(int, bits=64, sortable=True)),
        text=TEXT(analyzer=ANALYZER, phrase=False),
        title=TEXT(analyzer=ANALYZER, phrase=False),
        spell=TEXT(analyzer=SPELLING_ANALYZER, phrase=False),
        pinyin=TEXT(analyzer=PINYIN_ANALYZER, phrase=False),
        initials=TEXT(analyzer=INITIALS_ANALYZER, phrase=False),
        pyword=KEYWORD,
        region=KEYWORD(commas=True),
        cat_top=KEYWORD,
        cat_sub=KEYWORD,
        institution_type=KEYWORD,
        provider_id=KEYWORD,
        mode=KEYWORD,
        voucher=BOOLEAN,
        price_from=_column(NUMERIC(int, bits=64, sortable=True, signed=True)),
        rating=_column(NUMERIC(float, sortable=True)),
        sales_count=_column(NUMERIC(int, bits=64, sortable=True)),
        credibility=_column(NUMERIC(int, sortable=True)),
        published_at=_column(DATETIME(sortable=True)),
    )
