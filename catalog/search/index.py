"""The Whoosh index of publicly visible listings: documents, opening and rebuilding.

The index is derived data (DESIGN.md §7). It is rebuilt from the database by ``reindex_all``
and kept in step by the outbox drain in ``catalog.search.worker``; both write only while
holding ``index_write_lock``, so there is exactly one writer at a time across processes.
The schema and text analysis are in ``catalog.search.schema``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from whoosh import index as whoosh_index
from whoosh import writing

from catalog.models import Category, Product
from catalog.search.schema import (
    FIELD_WEIGHTS,
    INDEX_NAME,
    LOCK_FILE,
    NO_PRICE,
    PINYIN_WEIGHTS,
    _segment,
    load_jieba,
    make_schema,
    part_terms,
)
from catalog.search.text import pinyin_words, warm_up_in_background
from catalog.services import visible_products_condition
from marketplace import reference

log = logging.getLogger(__name__)


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


def document_parts(product: Product) -> dict[str, str]:
    """The searchable texts of one listing by part (the keys of ``FIELD_WEIGHTS``)."""
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
    # Both languages of a bilingual listing: its own title and summary and the second ones.
    title = " ".join(filter(None, [product.title, product.title_alt]))
    summary = " ".join(filter(None, [product.summary, product.summary_alt]))
    return {
        "title": title,
        "tags": tags,
        "category": category_text,
        "provider": provider_text,
        "summary": summary,
        "regions": regions_text,
        "description": _plain_markdown(product.description),
    }


def document_for(product: Product) -> dict:
    """The search document of one listing (provider and category loaded)."""
    parts = document_parts(product)
    category = product.category
    top = category.parent or category
    provider = product.provider
    inst = provider.institution_type or ""
    regions = [code for code in (product.regions or []) if isinstance(code, str)]
    # Text fields get lists of terms, which Whoosh indexes as they are: each part is analysed
    # once (schema.part_terms) and repeated ``weight`` times, the same terms, frequencies and
    # lengths as analysing the repeated text, at a fraction of the cost (tests/test_search_
    # index_terms.py holds the two equal).
    text_terms = {name: part_terms("text", part) for name, part in parts.items()}
    spelled = ("title", "summary", "tags", "category")
    published = product.published_at or product.created_at or datetime.now(UTC)
    return {
        "id": str(product.id),
        "pid": product.id,
        "text": [term for name, weight in FIELD_WEIGHTS.items()
                 for term in text_terms[name] * weight],
        "title": list(text_terms["title"]),
        "spell": [term for name in spelled for term in part_terms("spell", parts[name])],
        "pinyin": [term for name, weight in PINYIN_WEIGHTS.items()
                   for term in part_terms("pinyin", parts[name]) * weight],
        "initials": [term for name, weight in PINYIN_WEIGHTS.items()
                     for term in part_terms("initials", parts[name]) * weight],
        "pyword": pinyin_words(word for name in ("title", "tags", "category")
                               for word, _s, _e in _segment(parts[name])),
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
    stmt = select(Product).options(
        joinedload(Product.provider),
        joinedload(Product.category).joinedload(Category.parent),
    ).execution_options(populate_existing=True)
    if product_ids is None:
        stmt = stmt.where(visible_products_condition()).order_by(Product.id)
    else:
        stmt = stmt.where(Product.id.in_(list(product_ids)))
    return list(session.scalars(stmt).unique())


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
            warm_up_in_background()  # OpenCC and pypinyin (catalog.search.text)
            Path(key).mkdir(parents=True, exist_ok=True)
            if not whoosh_index.exists_in(key, indexname=INDEX_NAME):
                with index_write_lock(key):
                    if not whoosh_index.exists_in(key, indexname=INDEX_NAME):
                        whoosh_index.create_in(key, make_schema(), indexname=INDEX_NAME)
            ix = whoosh_index.open_dir(key, indexname=INDEX_NAME)
            _indexes[key] = ix
    return ix


def forget_index_handle(key: str) -> None:
    """Drop the cached handle of the index at real path ``key`` (see pool.forget_index)."""
    with _indexes_lock:
        _indexes.pop(key, None)


def built_marker(index_dir) -> Path:
    """A file next to the index saying ``reindex_all`` filled this index name once: a new
    index name (a schema change) starts without it, so ``reindex --if-empty`` rebuilds it
    even if the outbox drain has already written a few changed listings into it."""
    return Path(index_dir) / f"{INDEX_NAME}.built"


def indexed_ids(index_dir) -> list[int]:
    """Listing ids of every live document, duplicates included (a consistency check)."""
    with open_index(index_dir).searcher() as searcher:
        return sorted(int(fields["id"]) for fields in searcher.reader().all_stored_fields())


# --------------------------------------------------------------------------- rebuilding

def reindex_all(session: Session, index_dir, batch: int = 1000, on_batch=None,
                _locked: bool = False) -> int:
    """Rebuild the whole index from the database; returns the number of listings indexed.

    This is also how a replica joins (catalog/search/replicas.py): the log position is noted
    *before* the listings are read and becomes the replica's cursor, so every change that
    commits during the rebuild is applied again from the log afterwards (harmless: documents
    are replaced by id). Reads through a session of its own on ``session``'s connection
    settings, so the caller's objects stay attached (commit your own changes first). Readers
    keep seeing the old index until the new one commits (segments are swapped in one commit).
    ``on_batch(n)`` is told after each batch of ``n`` listings (marketplace.jobs progress).
    """
    from contextlib import nullcontext

    from catalog.search import replicas as search_replicas

    ix = open_index(index_dir)
    lock = nullcontext(True) if _locked else index_write_lock(index_dir)
    with lock, Session(bind=session.get_bind()) as reader:
        position = search_replicas.start_position(reader)
        # Postings are sorted in memory up to limitmb (Whoosh's estimate, ~170 bytes each:
        # ~270 MB for 10k listings), beyond it in runs pickled to disk one posting at a
        # time, which cost 40 % of a 10k rebuild at 256 MB.
        writer = ix.writer(limitmb=512)
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
            built_marker(index_dir).touch()
        except BaseException:
            writer.cancel()
            raise
        from catalog.search.worker import _config

        search_replicas.set_cursor(reader, search_replicas.replica_name(index_dir, _config()),
                                   position)
        reader.commit()
    log.info("search index rebuilt: %d listings in %s", count, index_dir)
    return count


# --------------------------------------------------------------------------- merging

@dataclass
class MergeResult:
    segments_before: int = 0
    segments_after: int = 0
    documents: int = 0  # live documents rewritten into the merged segment
    purged: int = 0  # deleted documents dropped for good
    seconds: float = 0.0
    skipped: bool = False  # another writer held the lock

    def __str__(self) -> str:
        if self.skipped:
            return "Another writer holds the search index; nothing merged."
        if self.segments_before == self.segments_after and not self.purged:
            return f"The search index has {self.segments_after} segments; nothing to merge."
        return (f"Merged the search index from {self.segments_before} segments to "
                f"{self.segments_after}: {self.documents} listings rewritten, {self.purged} "
                f"deleted ones dropped ({self.seconds:.1f}s).")


def merge_small_keep_largest(writer, segments):
    """A drain's merge policy: Whoosh's MERGE_SMALL over every segment but the largest.

    Whoosh's default folds segments together while their documents add up to less than a
    Fibonacci number of their count, so after a couple of dozen small drain commits it
    rewrites the big segment (the whole catalogue, 100k listings: minutes) inside a
    one-listing drain. That segment is left to the scheduled merge (``merge_segments``)."""
    if len(segments) < 2:
        return list(segments)
    largest = _bulk_segment(segments)
    return [largest, *writing.MERGE_SMALL(
        writer, [segment for segment in segments if segment is not largest])]


def _bulk_segment(segments):
    """The segment with the bulk of the catalogue: the most documents, live or deleted (a
    rebuild's, whose edited listings stay there marked deleted until a full merge)."""
    return max(segments, key=lambda segment: (segment.doc_count_all(),
                                              segment.deleted_count()))


def segment_count(index_dir) -> int:
    """Segments of the index's current generation (each outbox drain commit adds one)."""
    from whoosh.reading import SegmentReader

    with open_index(index_dir).reader() as reader:  # an empty index has an EmptyReader
        return sum(isinstance(leaf, SegmentReader) for leaf, _offset in reader.leaf_readers())


def _segments_to_merge(segments, full: bool, deleted_share: float) -> list:
    """All segments but the largest (the bulk of the catalogue, written by ``reindex``),
    which is rewritten too only when ``full`` or when more than ``deleted_share`` of its
    documents are deleted (edited listings leave their old version there, marked deleted)."""
    if not segments:
        return []
    largest = _bulk_segment(segments)
    rest = [segment for segment in segments if segment is not largest]
    deleted = largest.deleted_count() / max(1, largest.doc_count_all())
    if full or deleted > deleted_share:
        return segments if len(segments) > 1 or largest.has_deletions() else []
    return rest if len(rest) > 1 or any(seg.has_deletions() for seg in rest) else []


def merge_segments(index_dir, *, full: bool = False, deleted_share: float = 0.1,
                   blocking: bool = True, _locked: bool = False) -> MergeResult:
    """Merge the small segments outbox drains leave behind into one, under the writer lock.

    Every drain commits a segment of the listings it changed; Whoosh folds only some of
    them together as it goes, and an edited listing's old version stays in the big segment,
    marked deleted, until that segment is rewritten. Queries visit every segment and skip
    the deleted documents one by one, so the scheduled merge (``search-merge``, or
    ``drain-outbox --loop`` past ``SEARCH_MERGE_SEGMENTS``) leaves one or two: the small ones
    merged, the big one rewritten only with ``full`` or too many deletions (it costs about
    half a rebuild: no analysis, but every posting sorted and written again). Readers keep
    the old segments until the merge commits.
    """
    from contextlib import nullcontext

    from whoosh.reading import SegmentReader

    result = MergeResult()
    ix = open_index(index_dir)  # before the lock: creating a missing index takes it too
    lock = nullcontext(True) if _locked else index_write_lock(index_dir, blocking=blocking)
    with lock as held:
        if not held:
            result.skipped = True
            return result
        started = time.perf_counter()
        writer = ix.writer(limitmb=512)  # merged postings go through the same sort (reindex_all)
        segments = list(writer.segments)
        chosen = _segments_to_merge(segments, full, deleted_share)
        result.segments_before = result.segments_after = len(segments)
        if not chosen:
            writer.cancel()
            return result
        chosen_ids = {segment.segment_id() for segment in chosen}

        def policy(writer, segments):
            for segment in segments:
                if segment.segment_id() in chosen_ids:
                    reader = SegmentReader(writer.storage, writer.schema, segment)
                    try:
                        writer.add_reader(reader)
                    finally:
                        reader.close()
            return [segment for segment in segments if segment.segment_id() not in chosen_ids]

        result.documents = sum(segment.doc_count() for segment in chosen)
        result.purged = sum(segment.deleted_count() for segment in chosen)
        try:
            writer.commit(mergetype=policy)
        except BaseException:
            writer.cancel()
            raise
        result.segments_after = len(segments) - len(chosen) + (1 if result.documents else 0)
        result.seconds = time.perf_counter() - started
    log.info("search index: %s", result)
    return result


def _visible_batch(session: Session, after_id: int, limit: int) -> list[Product]:
    stmt = (
        select(Product)
        .where(visible_products_condition(), Product.id > after_id)
        .options(joinedload(Product.provider),
                 joinedload(Product.category).joinedload(Category.parent))
        .order_by(Product.id)
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())
