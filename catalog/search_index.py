"""The Whoosh index of publicly visible listings: schema, analyzer, opening and rebuilding.

The index is derived data (DESIGN.md §7). It is rebuilt from the database by ``reindex_all``
and kept in step by the outbox drain in ``catalog.search_worker``; both write only while
holding ``index_write_lock``, so there is exactly one writer at a time across processes.

Text analysis: jieba segments Chinese (search mode, so "发明专利申请" also yields "发明",
"专利", "申请"), English runs come out as words; then case folding, stop words and Porter
stemming ("applications" and "application" both become "applic"). The tokenizer is ours
rather than ``jieba.analyse.ChineseTokenizer`` because that one reports character offsets as
token positions and importing ``jieba.analyse`` loads (and leaks a handle on) its IDF table.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from whoosh import index as whoosh_index
from whoosh import writing
from whoosh.analysis import Filter, LowercaseFilter, StopFilter, Token, Tokenizer
from whoosh.fields import BOOLEAN, DATETIME, ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.lang.porter import stem

from catalog.models import Category, Product
from marketplace import reference

log = logging.getLogger(__name__)

# Bump when the schema or analysis changes: a new name means a new, empty index that
# `reindex` fills, instead of a silently mismatched old one.
INDEX_NAME = "products_v1"
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
    """jieba search-mode words of a run of Chinese characters (runs repeat a lot: cached)."""
    jieba = load_jieba()
    return tuple(jieba.tokenize(run, mode="search"))


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
_segment = functools.lru_cache(maxsize=50_000)(_segment_raw)


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
        for word, start, end in _segment(value) if len(value) <= 300 else _segment_raw(value):
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


def make_schema() -> Schema:
    return Schema(
        id=ID(stored=True, unique=True),
        pid=NUMERIC(int, bits=64, sortable=True),
        text=TEXT(analyzer=ANALYZER, phrase=False),
        title=TEXT(analyzer=ANALYZER, phrase=False),
        spell=TEXT(analyzer=make_spelling_analyzer(), phrase=False),
        region=KEYWORD(commas=True),
        cat_top=KEYWORD,
        cat_sub=KEYWORD,
        institution_type=KEYWORD,
        provider_id=KEYWORD,
        mode=KEYWORD,
        voucher=BOOLEAN,
        price_from=NUMERIC(int, bits=64, sortable=True, signed=True),
        rating=NUMERIC(float, sortable=True),
        sales_count=NUMERIC(int, bits=64, sortable=True),
        credibility=NUMERIC(int, sortable=True),
        published_at=DATETIME(sortable=True),
    )


# --------------------------------------------------------------------------- documents

def _plain_markdown(text: str) -> str:
    """Markdown source without its markup characters (good enough for indexing)."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text or "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[#*_`>|~\-]+", " ", text)


def product_rating(product: Product) -> float:
    """Average buyer rating sorted and filtered on (``Product.rating_average``, kept by
    catalog.reviews from published, visible reviews); 0 while a listing is unrated."""
    value = getattr(product, "rating_average", None)
    return float(value) if value is not None else 0.0


def product_credibility(product: Product) -> int:
    value = getattr(product.provider, "credibility_score", None)
    return int(value) if value is not None else 0


def document_for(product: Product) -> dict:
    """The search document of one listing (provider and category loaded)."""
    category = product.category
    top = category.parent or category
    category_text = " ".join(filter(None, [
        top.name, top.name_zh,
        category.name if category is not top else "",
        category.name_zh if category is not top else "",
    ]))
    provider = product.provider
    inst = provider.institution_type or ""
    provider_text = " ".join(filter(None, [
        provider.name,
        reference.INSTITUTION_TYPE_LABELS.get(inst, ""),
        reference.INSTITUTION_TYPE_LABELS_ZH.get(inst, ""),
    ]))
    regions = [code for code in (product.regions or []) if isinstance(code, str)]
    regions_text = " ".join(
        f"{reference.REGION_LABELS.get(code, code)} {reference.REGION_LABELS_ZH.get(code, '')}"
        for code in regions
    )
    tags = " ".join(str(tag) for tag in (product.tags or []))
    parts = {
        "title": product.title,
        "tags": tags,
        "category": category_text,
        "provider": provider_text,
        "summary": product.summary or "",
        "regions": regions_text,
        "description": _plain_markdown(product.description),
    }
    text = "\n".join(part for name, weight in FIELD_WEIGHTS.items()
                     for part in [parts[name]] * weight if part)
    published = product.published_at or product.created_at or datetime.now(UTC)
    return {
        "id": str(product.id),
        "pid": product.id,
        "text": text,
        "title": product.title,
        "spell": " ".join([product.title, product.summary or "", tags, category_text]),
        "region": ",".join(regions),
        "cat_top": str(top.id),
        "cat_sub": str(category.id) if category is not top else "",
        "institution_type": inst,
        "provider_id": str(provider.id),
        "mode": product.pricing_mode,
        "voucher": bool(product.voucher_eligible),
        "price_from": product.price_from if product.price_from is not None else NO_PRICE,
        "rating": product_rating(product),
        "sales_count": product.sales_count or 0,
        "credibility": product_credibility(product),
        "published_at": published.astimezone(UTC).replace(tzinfo=None),
    }


def load_products(session: Session, product_ids=None) -> list[Product]:
    """Listings with what their documents need, in one query (all visible ones if no ids).

    Always the database's current rows: sessions here do not expire on commit, and a
    long-lived one (``drain-outbox --loop``) would otherwise hand back the listing as it
    first loaded it, and index that.
    """
    from catalog.services import visible_products_condition

    stmt = select(Product).options(
        joinedload(Product.provider),
        joinedload(Product.category).joinedload(Category.parent),
    ).execution_options(populate_existing=True)
    if product_ids is None:
        stmt = stmt.where(visible_products_condition()).order_by(Product.id)
    else:
        stmt = stmt.where(Product.id.in_(list(product_ids)))
    return list(session.scalars(stmt).unique())


def visible_ids(session: Session, product_ids) -> set[int]:
    """Which of ``product_ids`` the public may see right now (the catalogue's one rule)."""
    from catalog.services import visible_products_condition

    ids = list(product_ids)
    if not ids:
        return set()
    return set(session.scalars(
        select(Product.id).where(Product.id.in_(ids), visible_products_condition())))


# --------------------------------------------------------------------------- opening

_indexes: dict[str, whoosh_index.Index] = {}
_indexes_lock = threading.Lock()


def _key(index_dir) -> str:
    return os.path.realpath(str(index_dir))


@contextlib.contextmanager
def index_write_lock(index_dir, blocking: bool = True):
    """The single-writer lock: an OS file lock next to the index, shared by all processes.

    Yields True when held; with ``blocking=False`` yields False at once if another writer has it.
    """
    path = Path(index_dir)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / LOCK_FILE, "a+b") as handle:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle.fileno(), flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_index(index_dir) -> whoosh_index.Index:
    """The index in ``index_dir``, created empty if missing; cached per directory path."""
    key = _key(index_dir)
    ix = _indexes.get(key)
    if ix is not None:
        return ix
    with _indexes_lock:
        ix = _indexes.get(key)
        if ix is None:
            load_jieba()
            Path(key).mkdir(parents=True, exist_ok=True)
            if not whoosh_index.exists_in(key, indexname=INDEX_NAME):
                with index_write_lock(key):
                    if not whoosh_index.exists_in(key, indexname=INDEX_NAME):
                        whoosh_index.create_in(key, make_schema(), indexname=INDEX_NAME)
            ix = whoosh_index.open_dir(key, indexname=INDEX_NAME)
            _indexes[key] = ix
    return ix


def forget_index(index_dir) -> None:
    """Drop the cached handle for ``index_dir`` (tests that delete the directory)."""
    from catalog import search_query

    with _indexes_lock:
        _indexes.pop(_key(index_dir), None)
    search_query.forget_searchers(_key(index_dir))


def indexed_ids(index_dir) -> list[int]:
    """Listing ids of every live document, duplicates included (a consistency check)."""
    with open_index(index_dir).searcher() as searcher:
        return sorted(int(fields["id"]) for fields in searcher.reader().all_stored_fields())


# --------------------------------------------------------------------------- rebuilding

def reindex_all(session: Session, index_dir, batch: int = 1000, on_batch=None,
                _locked: bool = False) -> int:
    """Rebuild the whole index from the database; returns the number of listings indexed.

    This is also how a replica joins (catalog/search_replicas.py): the log position is noted
    *before* the listings are read and becomes the replica's cursor, so every change that
    commits during the rebuild is applied again from the log afterwards (harmless: documents
    are replaced by id). Reads through a session of its own on ``session``'s connection
    settings, so the caller's objects stay attached (commit your own changes first). Readers
    keep seeing the old index until the new one commits (segments are swapped in one commit).
    ``on_batch(n)`` is told after each batch of ``n`` listings (marketplace.jobs progress).
    """
    from contextlib import nullcontext

    from catalog import search_replicas

    ix = open_index(index_dir)
    lock = nullcontext(True) if _locked else index_write_lock(index_dir)
    with lock, Session(bind=session.get_bind()) as reader:
        position = search_replicas.start_position(reader)
        writer = ix.writer(limitmb=256)
        count = 0
        try:
            last_id = 0
            while True:
                products = _visible_batch(reader, last_id, batch)
                if not products:
                    break
                for product in products:
                    writer.add_document(**document_for(product))
                    count += 1
                last_id = products[-1].id
                if on_batch is not None:
                    on_batch(len(products))
                reader.expunge_all()  # bounded memory on big catalogues
            writer.commit(mergetype=writing.CLEAR)
        except BaseException:
            writer.cancel()
            raise
        from catalog.search_worker import _config

        search_replicas.set_cursor(reader, search_replicas.replica_name(index_dir, _config()),
                                   position)
        reader.commit()
    log.info("search index rebuilt: %d listings in %s", count, index_dir)
    return count


def _visible_batch(session: Session, after_id: int, limit: int) -> list[Product]:
    from catalog.services import visible_products_condition

    stmt = (
        select(Product)
        .where(visible_products_condition(), Product.id > after_id)
        .options(joinedload(Product.provider),
                 joinedload(Product.category).joinedload(Category.parent))
        .order_by(Product.id)
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())
