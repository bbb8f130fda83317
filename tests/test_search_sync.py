"""The index follows the database through the outbox: publish, edit approval, suspension,
archiving and institution suspension; crashes lose nothing; two drainers never collide."""

import multiprocessing
import os
import threading

import factories
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import page_cache
from catalog.models import SearchOutbox
from catalog.search import outbox as search_outbox
from catalog.search.index import indexed_ids, open_index, reindex_all
from catalog.search.query import SearchParams, search
from catalog.search.worker import apply_rows, drain_outbox, wait_for_background_drain
from marketplace.database import db, make_engine
from providers import listings, onboarding


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def found(session, index_dir, q="", **filters) -> list[int]:
    page = search(session, index_dir, SearchParams(q=q, **filters), page_size=100)
    return [hit.product.id for hit in page.hits]


def pending_rows(session) -> int:
    return session.scalar(select(func.count()).select_from(SearchOutbox))


@pytest.fixture
def staff(session):
    return factories.user(session, role="staff")


@pytest.fixture
def institution(session):
    org = factories.provider(session, name="Gusu Patent Partners 姑苏专利")
    member = factories.user(session, org, role="provider")
    return org, member


def test_publishing_shows_the_listing_after_the_drain(session, index_dir, staff, institution):
    org, _member = institution
    listing = factories.product(session, org, status="pending_review",
                                title="Lithium battery safety testing 锂电池安全检测",
                                category_slug="testing")
    session.commit()
    reindex_all(session, index_dir)
    assert found(session, index_dir, "lithium") == []

    listings.approve(session, staff, listing)
    session.commit()
    assert pending_rows(session) == 1
    # Not in the index until the single writer applies the outbox.
    assert found(session, index_dir, "锂电池") == []

    result = drain_outbox(session, index_dir)
    assert (result.rows, result.updated, result.deleted) == (1, 1, 0)
    assert found(session, index_dir, "lithium") == [listing.id]
    assert found(session, index_dir, "锂电池") == [listing.id]
    assert pending_rows(session) == 0


def test_an_approved_edit_replaces_the_old_text(session, index_dir, staff, institution):
    org, member = institution
    listing = factories.product(session, org, title="Utility model filing 实用新型申请",
                                prices=(300000,))
    session.commit()
    reindex_all(session, index_dir)
    assert found(session, index_dir, "utility model") == [listing.id]

    data = listings.read_product(listing)
    data.title = "Design patent filing 外观设计专利申请"
    data.packages[0].price = 450000
    assert listings.save_listing(session, member, listing, data) == "revision"
    listings.submit(session, member, listing)
    session.commit()
    # Submitted but not approved: the public text (and the index) keep the old version.
    drain_outbox(session, index_dir)
    assert found(session, index_dir, "utility model") == [listing.id]

    listings.approve(session, staff, listing)
    session.commit()
    drain_outbox(session, index_dir)
    assert found(session, index_dir, "utility model") == []
    assert found(session, index_dir, "外观设计") == [listing.id]
    assert found(session, index_dir, "design", price_min=4000, price_max=5000) == [listing.id]
    assert indexed_ids(index_dir) == [listing.id]


def test_suspending_a_listing_removes_it(session, index_dir, staff, institution):
    org, _member = institution
    listing = factories.product(session, org, title="Trademark watch service 商标监测")
    other = factories.product(session, org, title="Trademark renewal 商标续展")
    session.commit()
    reindex_all(session, index_dir)
    assert set(found(session, index_dir, "trademark")) == {listing.id, other.id}

    listings.suspend_listing(session, staff, listing, "Misleading claims in the description")
    session.commit()
    # Hidden at once, even before the drain: every hit is checked against the database.
    assert found(session, index_dir, "trademark") == [other.id]
    drain_outbox(session, index_dir)
    assert indexed_ids(index_dir) == [other.id]

    listings.reinstate_listing(session, staff, listing)
    session.commit()
    drain_outbox(session, index_dir)
    assert set(found(session, index_dir, "trademark")) == {listing.id, other.id}


def test_archiving_removes_the_listing(session, index_dir, institution):
    org, member = institution
    listing = factories.product(session, org, title="Calibration of torque wrenches 扭矩扳手校准",
                                category_slug="calibration")
    session.commit()
    reindex_all(session, index_dir)
    assert found(session, index_dir, "torque") == [listing.id]

    listings.archive(session, member, listing)
    session.commit()
    drain_outbox(session, index_dir)
    assert found(session, index_dir, "torque") == []
    assert indexed_ids(index_dir) == []


def test_suspending_an_institution_hides_all_its_listings(session, index_dir, staff,
                                                         institution):
    org, _member = institution
    own = [factories.product(session, org, title=f"Patent drafting package {n} 专利撰写")
           for n in range(3)]
    rival = factories.product(session, factories.provider(session),
                              title="Patent drafting for startups 专利撰写")
    session.commit()
    reindex_all(session, index_dir)
    assert len(found(session, index_dir, "专利撰写")) == 4

    onboarding.suspend(session, staff, org, "Licence expired and not renewed")
    session.commit()
    result = drain_outbox(session, index_dir)
    assert result.deleted == 3
    assert found(session, index_dir, "专利撰写") == [rival.id]
    assert indexed_ids(index_dir) == [rival.id]

    onboarding.reinstate(session, staff, org)
    session.commit()
    drain_outbox(session, index_dir)
    assert set(found(session, index_dir, "专利撰写")) == {p.id for p in [*own, rival]}


def test_a_crash_before_indexing_loses_nothing(app, session, index_dir, staff, institution):
    org, _member = institution
    listing = factories.product(session, org, status="pending_review",
                                title="Clean room rental 洁净室租用", category_slug="laboratory-access")
    session.commit()
    listings.approve(session, staff, listing)
    session.commit()  # the change and its outbox row are durable ...
    # ... and the process dies before any drain. A new process starts later:
    with Session(bind=db.engine) as fresh:
        result = drain_outbox(fresh, index_dir)
    assert result.rows == 1
    assert found(session, index_dir, "clean room") == [listing.id]


def test_a_crash_between_index_commit_and_outbox_delete_is_replayed_safely(session, index_dir,
                                                                          institution):
    org, _member = institution
    products = [factories.product(session, org, title=f"Pilot plant hour block {n} 中试基地",
                                  category_slug="pilot-facilities") for n in range(4)]
    search_outbox.enqueue_many(session, [p.id for p in products], "published")
    session.commit()

    # The writer commits the index, then dies before deleting the rows it applied.
    with Session(bind=db.engine) as doomed:
        rows = list(doomed.scalars(select(SearchOutbox)))
        apply_rows(doomed, open_index(index_dir), rows)
        doomed.rollback()
    assert pending_rows(session) == 4

    result = drain_outbox(session, index_dir)  # the next run applies them again
    assert result.rows == 4
    assert pending_rows(session) == 0
    assert indexed_ids(index_dir) == sorted(p.id for p in products)  # no duplicates
    assert len(found(session, index_dir, "中试基地")) == 4


def _drain_in_thread(engine, index_dir, results, barrier):
    with Session(bind=engine) as own:
        barrier.wait()
        results.append(drain_outbox(own, index_dir, batch_size=7))


def test_two_drainers_at_once_neither_corrupt_nor_double_apply(session, index_dir, institution):
    org, _member = institution
    products = [factories.product(session, org, title=f"Equity investment round {n} 股权投资",
                                  category_slug="equity-investment", mode="financial")
                for n in range(30)]
    ids = [p.id for p in products]
    search_outbox.enqueue_many(session, ids, "published")
    search_outbox.enqueue_many(session, ids[:10], "edited")  # some listings queued twice
    session.commit()

    results: list = []
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_drain_in_thread,
                                args=(db.engine, index_dir, results, barrier))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    # Every row was applied by exactly one of them.
    assert sum(r.rows for r in results) == 40
    assert pending_rows(session) == 0
    assert indexed_ids(index_dir) == sorted(ids)
    assert len(found(session, index_dir, "股权投资")) == 30


def _drain_in_process(database_url, index_dir, queue):
    engine = make_engine(database_url)
    try:
        with Session(bind=engine) as own:
            queue.put(drain_outbox(own, index_dir, batch_size=5).rows)
        queue.close()
        queue.join_thread()
    finally:
        engine.dispose()
        os._exit(0)


def test_two_processes_draining_at_once(app, session, index_dir, institution):
    org, _member = institution
    products = [factories.product(session, org, title=f"Achievement evaluation {n} 成果评价",
                                  category_slug="achievement-evaluation") for n in range(20)]
    search_outbox.enqueue_many(session, [p.id for p in products], "published")
    session.commit()
    open_index(index_dir)  # created before forking, as a running site would have it

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_drain_in_process,
                               args=(app.config["DATABASE_URL"], str(index_dir), queue))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    applied = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sum(applied) == 20
    assert pending_rows(session) == 0
    assert indexed_ids(index_dir) == sorted(p.id for p in products)


def test_a_busy_writer_makes_the_non_blocking_drain_skip(session, index_dir, institution):
    from catalog.search.index import index_write_lock

    org, _member = institution
    listing = factories.product(session, org, title="Grant application coaching 项目申报",
                                category_slug="policy-grants")
    search_outbox.enqueue(session, listing.id, "published")
    session.commit()
    open_index(index_dir)
    with index_write_lock(index_dir), Session(bind=db.engine) as other:
        assert drain_outbox(other, index_dir, blocking=False).skipped
    assert pending_rows(session) == 1
    assert drain_outbox(session, index_dir).rows == 1


def test_the_dev_server_drains_after_a_request(app, client, session, index_dir, staff,
                                              institution, monkeypatch):
    monkeypatch.setitem(app.config, "SEARCH_DRAIN_IN_PROCESS", True)
    org, _member = institution
    listing = factories.product(session, org, status="pending_review",
                                title="NMR spectroscopy booking 核磁共振预约",
                                category_slug="instrument-booking")
    session.commit()
    listings.approve(session, staff, listing)
    session.commit()

    assert client.get("/").status_code == 200  # any request wakes the background drain
    assert wait_for_background_drain(timeout=20)
    assert pending_rows(session) == 0
    page = client.get("/search", query_string={"q": "核磁共振"}).get_data(as_text=True)
    assert f'data-product-id="{listing.id}"' in page
    assert wait_for_background_drain(timeout=20)  # leave no drain running for the next test


def test_tests_do_not_drain_in_process_unless_asked(app, client, session, index_dir,
                                                    institution):
    org, _member = institution
    listing = factories.product(session, org)
    search_outbox.enqueue(session, listing.id, "published")
    session.commit()
    client.get("/")
    wait_for_background_drain(timeout=5)
    assert pending_rows(session) == 1


def test_stale_hits_are_hidden_and_queued_for_repair(session, index_dir, institution):
    org, _member = institution
    listing = factories.product(session, org, title="Freedom-to-operate analysis 自由实施分析",
                                category_slug="ip-strategy")
    session.commit()
    reindex_all(session, index_dir)
    # A change that forgot the outbox (or whose row is still in flight).
    listing.status = "suspended"
    session.commit()
    version = page_cache.read_version(session)
    assert found(session, index_dir, "freedom") == []
    assert pending_rows(session) == 1
    # While the drain is down, every search meets the same stale hit: it is queued once,
    # and a repair (no database change) does not empty every worker's page cache.
    for _ in range(3):
        assert found(session, index_dir, "freedom") == []
    assert pending_rows(session) == 1
    assert page_cache.read_version(session) == version
    drain_outbox(session, index_dir)
    assert indexed_ids(index_dir) == []


def test_reindex_and_drain_commands(app, session, index_dir, institution):
    org, _member = institution
    visible = factories.product(session, org, title="Venture debt facility 投贷联动",
                                category_slug="credit-loans", mode="financial")
    factories.product(session, org, status="draft", title="Venture debt draft")
    session.commit()
    runner = app.test_cli_runner()

    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 listings" in result.output
    assert indexed_ids(index_dir) == [visible.id]

    search_outbox.enqueue(session, visible.id, "edited")
    session.commit()
    result = runner.invoke(args=["drain-outbox"])
    assert result.exit_code == 0, result.output
    assert "Applied 1 outbox rows: 1 listings indexed" in result.output
    assert pending_rows(session) == 0

    # What scripts/serve runs on every start: rebuild only a missing or empty index.
    search_outbox.enqueue(session, visible.id, "edited")
    session.commit()
    result = runner.invoke(args=["reindex", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "has 1 listings; not rebuilt" in result.output
    assert pending_rows(session) == 0


def test_reindex_if_empty_fills_a_new_index_the_drain_wrote_into_first(app, session,
                                                                        index_dir,
                                                                        institution):
    """After an analysis change (a new index name) the drain may write a changed listing
    into the new, empty index before anyone runs reindex: --if-empty still rebuilds it."""
    org, _member = institution
    listings = [factories.product(session, org, title=f"Pilot plant {n}") for n in range(3)]
    session.commit()
    # The listings' creation was applied to the old index: this replica's cursor is past it.
    from catalog.search import replicas

    consumer = replicas.replica_name(index_dir)
    replicas.ensure_consumer(session, consumer)
    replicas.set_cursor(session, consumer, replicas.last_id(session))
    session.commit()
    search_outbox.enqueue(session, listings[0].id, "edited")
    session.commit()
    drain_outbox(session, index_dir)
    assert indexed_ids(index_dir) == [listings[0].id]
    result = app.test_cli_runner().invoke(args=["reindex", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "Indexed 3 listings" in result.output
    assert indexed_ids(index_dir) == sorted(p.id for p in listings)


def _complete_an_order(session, p, listing) -> None:
    from order_support import order

    from orders import payments, services

    placed = order(session, p, price=listing.price_from, product=listing)
    payment = payments.begin_bank_transfer(session, placed)
    payments.mark_transfer_received(session, placed, p.staff, payment.amount, "TRX")
    session.commit()
    services.accept(session, placed, p.provider)
    services.deliver(session, placed, p.provider, "Report delivered")
    services.complete(session, placed, p.buyer)


def test_completed_orders_reach_the_best_selling_sort(session, index_dir, monkeypatch):
    from order_support import parties

    # An established institution whose credibility score does not move with one more sale
    # (a moved score queues its listings anyway, which would hide a missing sales row).
    monkeypatch.setattr("providers.credibility.refresh_for_order", lambda *args: None)
    p = parties(session)
    leader = factories.product(session, p.provider_org, title="Patent landscape 专利导航",
                               sales_count=1)
    challenger = factories.product(session, p.provider_org, title="Patent landscape lite 专利导航",
                                   sales_count=0)
    session.commit()
    reindex_all(session, index_dir)
    assert found(session, index_dir, "landscape", sort="sales") == [leader.id, challenger.id]

    _complete_an_order(session, p, challenger)
    _complete_an_order(session, p, challenger)
    assert session.scalars(select(SearchOutbox.reason)).all() == ["sold", "sold"]
    with Session(bind=db.engine) as worker:  # the drain runs in a session of its own
        drain_outbox(worker, index_dir)
    assert found(session, index_dir, "landscape", sort="sales") == [challenger.id, leader.id]


def test_a_long_running_drain_session_indexes_the_current_row(session, index_dir, institution):
    # ``drain-outbox --loop`` keeps one session (expire_on_commit=False) across drains: a
    # listing it loaded once must still be read afresh when it changes again.
    org, _member = institution
    listing = factories.product(session, org, title="Patent annuity management 专利年费管理")
    session.commit()
    search_outbox.enqueue(session, listing.id, "published")
    session.commit()
    drain_outbox(session, index_dir)  # loads the listing into this session
    with Session(bind=db.engine) as web:  # a change committed by another process
        web.get(type(listing), listing.id).title = "Patent renewal management 专利续费管理"
        search_outbox.enqueue(web, listing.id, "revision_approved")
        web.commit()
    drain_outbox(session, index_dir)
    assert found(session, index_dir, "renewal") == [listing.id]
    assert found(session, index_dir, "annuity") == []
