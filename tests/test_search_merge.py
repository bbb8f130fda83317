"""Scheduled segment merges of the search index: outbox drains each commit a small segment;
`search-merge` (and `drain-outbox` past SEARCH_MERGE_SEGMENTS) merges them into one or two,
under the single-writer lock, and every search finds the same listings afterwards."""

import factories
import pytest

from catalog.search import outbox as search_outbox
from catalog.search.index import (
    index_write_lock,
    indexed_ids,
    merge_segments,
    open_index,
    reindex_all,
    segment_count,
)
from catalog.search.query import SearchParams, search
from catalog.search.worker import drain_outbox

QUERIES = ["patent", "专利", "loan", "贷款", "testing", "检测", "zhuanli", "zl", "gusu"]


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def found(session, index_dir, q) -> list[int]:
    page = search(session, index_dir, SearchParams(q=q), page_size=100)
    return [hit.product.id for hit in page.hits]


def everything_found(session, index_dir) -> dict[str, list[int]]:
    return {q: found(session, index_dir, q) for q in QUERIES}


TITLES = [
    ("Invention patent application 发明专利申请", "patent-application"),
    ("Tech SME credit loan 科技型中小企业信用贷款", "credit-loans"),
    ("EMC testing for industrial equipment 电磁兼容检测", "testing"),
    ("Patent search and analysis 专利检索分析", "patent-search"),
    ("IP-pledge loan 知识产权质押贷款", "credit-loans"),
    ("Material testing 材料检测", "testing"),
]


@pytest.fixture
def catalogue(session, index_dir):
    """Listings of one institution, indexed by a rebuild (one segment), then edited one by
    one, each edit applied by its own drain as the outbox worker does: many small segments
    and old versions left deleted in the big one."""
    org = factories.provider(session, name="Gusu Patent Partners 姑苏专利")
    listings = [factories.product(session, org, title=title, category_slug=slug)
                for title, slug in TITLES * 4]
    session.commit()
    reindex_all(session, index_dir)
    assert segment_count(index_dir) == 1
    for n, listing in enumerate(listings):
        listing.summary = f"Edited summary {n} 修改后的简介"
        search_outbox.enqueue(session, listing.id, "edited")
        session.commit()
        drain_outbox(session, index_dir)
    return listings


def test_merging_leaves_one_or_two_segments_and_the_same_results(session, index_dir,
                                                                  catalogue):
    before = segment_count(index_dir)
    assert before >= 4  # Whoosh folds some drain segments together as it goes, not all
    results = everything_found(session, index_dir)
    assert all(results.values())
    ids = indexed_ids(index_dir)

    result = merge_segments(index_dir)
    assert result.segments_before == before
    assert segment_count(index_dir) == result.segments_after <= 2
    assert "Merged the search index from" in str(result)
    assert everything_found(session, index_dir) == results
    assert indexed_ids(index_dir) == ids == sorted(listing.id for listing in catalogue)

    # Nothing left to merge: no new index generation is written.
    generation = open_index(index_dir).latest_generation()
    assert "nothing to merge" in str(merge_segments(index_dir))
    assert open_index(index_dir).latest_generation() == generation


def test_a_full_merge_drops_the_deleted_versions_for_good(session, index_dir, catalogue):
    results = everything_found(session, index_dir)
    with open_index(index_dir).reader() as reader:
        assert reader.doc_count_all() > reader.doc_count()  # old versions, marked deleted

    result = merge_segments(index_dir, full=True)
    assert segment_count(index_dir) == 1
    assert result.purged > 0 and result.documents == len(catalogue)
    with open_index(index_dir).reader() as reader:
        assert reader.doc_count_all() == reader.doc_count() == len(catalogue)
    assert everything_found(session, index_dir) == results


def test_too_many_deleted_versions_make_the_big_segment_merge_too(session, index_dir,
                                                                   catalogue):
    # Every listing was edited once: all of the big segment's documents are old versions
    # (the drains never rewrite it), so only a threshold of 100 % leaves it alone.
    assert merge_segments(index_dir, deleted_share=1.0).segments_after == 2
    assert merge_segments(index_dir, deleted_share=0.1).segments_after == 1


def test_an_empty_index_has_nothing_to_merge(index_dir):
    assert segment_count(index_dir) == 0
    assert "0 segments; nothing to merge" in str(merge_segments(index_dir, full=True))


def test_the_merge_waits_for_no_one_when_asked_not_to(session, index_dir, catalogue):
    before = segment_count(index_dir)
    with index_write_lock(index_dir):
        result = merge_segments(index_dir, blocking=False)
    assert result.skipped
    assert "Another writer" in str(result)
    assert segment_count(index_dir) == before


def test_search_merge_command(app, session, index_dir, catalogue):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search-merge"])
    assert result.exit_code == 0, result.output
    assert "Merged the search index from" in result.output
    assert segment_count(index_dir) <= 2

    result = runner.invoke(args=["search-merge", "--full"])
    assert result.exit_code == 0, result.output
    assert segment_count(index_dir) == 1


def drain_one_edit(session, index_dir, listing) -> None:
    search_outbox.enqueue(session, listing.id, "edited")
    session.commit()
    drain_outbox(session, index_dir)


def test_the_drain_command_merges_past_the_segment_threshold(app, session, index_dir,
                                                             catalogue, monkeypatch):
    runner = app.test_cli_runner()
    merge_segments(index_dir, full=True)
    drain_one_edit(session, index_dir, catalogue[0])
    assert segment_count(index_dir) == 2  # (Whoosh folds small ones itself from five on)
    results = everything_found(session, index_dir)

    monkeypatch.setitem(app.config, "SEARCH_MERGE_SEGMENTS", 0)  # off: cron runs search-merge
    search_outbox.enqueue(session, catalogue[1].id, "edited")
    session.commit()
    result = runner.invoke(args=["drain-outbox"])
    assert result.exit_code == 0, result.output
    assert "Merged" not in result.output
    assert segment_count(index_dir) == 3

    monkeypatch.setitem(app.config, "SEARCH_MERGE_SEGMENTS", 3)
    # 3 of the big segment's 24 listings are old versions: over the default 10 % share,
    # which rewrites it too (the test above); here only the small segments are merged.
    monkeypatch.setitem(app.config, "SEARCH_MERGE_DELETED_SHARE", 0.5)
    search_outbox.enqueue(session, catalogue[2].id, "edited")
    session.commit()
    result = runner.invoke(args=["drain-outbox"])
    assert result.exit_code == 0, result.output
    assert "Applied 1 outbox rows" in result.output
    assert "Merged the search index from 4 segments to 2" in result.output
    assert segment_count(index_dir) == 2
    # The same listings (re-indexing an edited one may reorder equal scores).
    assert {q: sorted(ids) for q, ids in everything_found(session, index_dir).items()} == \
        {q: sorted(ids) for q, ids in results.items()}


def test_the_drain_loop_merges_too(app, session, index_dir, catalogue, monkeypatch):
    merge_segments(index_dir, full=True)
    drain_one_edit(session, index_dir, catalogue[0])
    monkeypatch.setitem(app.config, "SEARCH_MERGE_SEGMENTS", 2)
    search_outbox.enqueue(session, catalogue[1].id, "edited")
    session.commit()
    # One round of the worker loop (marketplace/jobs.py run_loop), as `--loop` runs it.
    from marketplace import jobs

    calls = []
    real = jobs.run_loop

    def one_round(name, step, **kwargs):
        calls.append(name)
        return real(name, step, **{**kwargs, "rounds": 1, "interval": 0})

    monkeypatch.setattr(jobs, "run_loop", one_round)
    result = app.test_cli_runner().invoke(args=["drain-outbox", "--loop"])
    assert result.exit_code == 0, result.output
    assert calls == ["drain-outbox"]
    assert "Merged the search index from" in result.output
    assert segment_count(index_dir) <= 2


def test_drains_never_rewrite_the_big_segment(session, index_dir):
    """Each drain commits a small segment; Whoosh's default policy would fold the rebuilt
    segment (the whole catalogue) into one of them after a few dozen drains, rewriting every
    listing inside a one-listing change. The drains merge only the small ones."""
    org = factories.provider(session, name="Wuzhong Testing 吴中检测")
    listings = [factories.product(session, org, title=title, category_slug=slug)
                for title, slug in TITLES * 4]
    session.commit()
    reindex_all(session, index_dir)
    (rebuilt,) = open_index(index_dir)._segments()
    for n in range(30):
        listing = listings[n % 2]  # two listings edited again and again
        listing.summary = f"Drain {n} 第{n}次修改"
        search_outbox.enqueue(session, listing.id, "edited")
        session.commit()
        drain_outbox(session, index_dir)
        largest = max(open_index(index_dir)._segments(), key=lambda s: s.doc_count_all())
        assert largest.segment_id() == rebuilt.segment_id(), f"rewritten at drain {n}"
    results = everything_found(session, index_dir)
    assert results["检测"]
    merged = merge_segments(index_dir)  # the scheduled merge takes the small ones
    assert merged.segments_after == 2 and merged.documents < len(listings) * 2
    # The same listings found (purged old versions shift the length statistics a little,
    # so listings with nearly equal scores may swap places).
    assert {q: sorted(ids) for q, ids in everything_found(session, index_dir).items()} == {
        q: sorted(ids) for q, ids in results.items()}

