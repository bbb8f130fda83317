"""The single writer that applies the search outbox to the Whoosh index.

Services write ``SearchOutbox`` rows in the same transaction as each listing change
(``catalog.search.outbox``). ``drain_outbox`` applies them:

1. take the writer lock (an OS file lock next to the index, so only one process writes);
2. read a batch of rows in id order and re-read those listings from the database;
3. update the document of each visible listing, delete the others;
4. commit the index, THEN notify favourites and delete exactly the rows it read, in one
   database transaction.

A crash before step 4 leaves the rows in place, and the next drain applies them again, which
is harmless: ``update_document`` replaces by the unique id and deleting a missing document is
a no-op. Favourite notices are decided from database state that commits with the row
deletion, so a replay never sends a notice twice.

Runs from the ``drain-outbox`` command (cron or a worker loop) and, in development, from a
background thread woken after each request (``SEARCH_DRAIN_IN_PROCESS``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import favourites
from catalog.models import SearchOutbox
from catalog.search import replicas as search_replicas
from catalog.search.index import (
    document_for,
    index_write_lock,
    load_products,
    merge_small_keep_largest,
    open_index,
    reindex_all,
)
from catalog.services import visible_ids
from marketplace.database import db

log = logging.getLogger(__name__)


@dataclass
class DrainResult:
    rows: int = 0
    updated: int = 0
    deleted: int = 0
    notices: int = 0
    skipped: bool = False  # another process held the writer lock

    def __str__(self) -> str:
        if self.skipped:
            return "Another writer is draining the search outbox; nothing done."
        return (f"Applied {self.rows} outbox rows: {self.updated} listings indexed, "
                f"{self.deleted} removed, {self.notices} favourite notices.")


def outbox_pending(session: Session, index_dir=None) -> bool:
    """Whether this replica (or, without ``index_dir``, anyone) has rows still to apply."""
    if index_dir is None:
        return session.scalar(select(SearchOutbox.id).limit(1)) is not None
    return search_replicas.pending(session, search_replicas.replica_name(
        index_dir, _config())) or search_replicas.pending(session, search_replicas.NOTICES)


_app_config = None  # the registered app's config, for the background drain thread


def _config():
    return current_app.config if has_app_context() else _app_config


def apply_rows(session: Session, ix, rows: list[SearchOutbox]) -> tuple[int, int, list]:
    """Write the current state of the listings named by ``rows`` to the index and commit it.

    Returns (updated, deleted, products). Does not touch the rows themselves.
    """
    product_ids = sorted({row.product_id for row in rows})
    products = {p.id: p for p in load_products(session, product_ids)}
    public = visible_ids(session, product_ids)
    writer = ix.writer(timeout=30.0)
    updated = deleted = 0
    try:
        for product_id in product_ids:
            product = products.get(product_id)
            if product is not None and product_id in public:
                writer.update_document(**document_for(product))
                updated += 1
            else:
                writer.delete_by_term("id", str(product_id))
                deleted += 1
        writer.commit(mergetype=merge_small_keep_largest)
    except BaseException:
        writer.cancel()
        raise
    return updated, deleted, list(products.values())


def drain_outbox(session: Session, index_dir, *, batch_size: int = 200,
                 blocking: bool = True) -> DrainResult:
    """Apply the log to this host's replica, then (cluster-wide, under a job lock) send the
    favourite notices and prune what every consumer has passed (catalog/search/replicas.py).

    Give it a session of its own: it commits after each batch.
    """
    replica = search_replicas.replica_name(index_dir, _config())
    result = DrainResult()
    ix = open_index(index_dir)  # before the lock: creating a missing index takes it too
    with index_write_lock(index_dir, blocking=blocking) as held:
        if not held:
            result.skipped = True
            return result
        session.commit()  # a fresh transaction: see what committed while we waited
        if search_replicas.needs_snapshot(session, replica):
            count = reindex_all(session, index_dir, _locked=True)
            log.info("search replica %s built from a snapshot: %d listings", replica, count)
        while True:
            session.commit()
            rows = search_replicas.read_new(session, replica, batch_size)
            if not rows:
                search_replicas.advance(session, replica, [])
                session.commit()
                break
            updated, deleted, _products = apply_rows(session, ix, rows)
            search_replicas.advance(session, replica, [row.id for row in rows])
            session.commit()
            result.rows += len(rows)
            result.updated += updated
            result.deleted += deleted
    result.notices = send_notices(session, batch_size)
    if result.rows:
        log.info("search outbox: %s", result)
    return result


def send_notices(session: Session, batch_size: int = 200) -> int:
    """The cluster's one consumer of the log that writes to the database: favourite notices
    (decided from database state, so a replay sends nothing twice), then pruning. Runs
    wherever the ``outbox-notices`` lock is free; elsewhere it is skipped."""
    from marketplace import jobs

    engine = session.get_bind()
    lock_dir = (current_app.config.get("JOB_LOCK_DIR") if has_app_context() else None) \
        or os.path.join(os.path.dirname(os.path.abspath(str(engine.url.database or "."))),
                        "locks")
    notices = 0
    with jobs.job_lock("outbox-notices", engine, lock_dir) as held:
        if not held:
            return 0
        session.commit()
        search_replicas.ensure_consumer(session, search_replicas.NOTICES)
        while True:
            rows = search_replicas.read_new(session, search_replicas.NOTICES, batch_size)
            if not rows:
                search_replicas.advance(session, search_replicas.NOTICES, [])
                session.commit()
                break
            for product in load_products(session, sorted({row.product_id for row in rows})):
                notices += favourites.notify_favourite_changes(session, product)
            search_replicas.advance(session, search_replicas.NOTICES, [row.id for row in rows])
            session.commit()
        search_replicas.prune(session, _retention())
        session.commit()
    return notices


def _retention() -> float:
    """SEARCH_OUTBOX_RETENTION_SECONDS: unset, a day (tests: none, rows go once applied)."""
    if not has_app_context():
        return 0
    setting = current_app.config.get("SEARCH_OUTBOX_RETENTION_SECONDS")
    if setting is None:
        return 0 if current_app.testing else 86400
    return float(setting)


# --------------------------------------------------------------------------- in-process drain

class _BackgroundDrainer:
    """One daemon thread per process, woken after requests; never blocks a response."""

    def __init__(self):
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending: dict[str, object] = {}  # index dir -> engine, since the last run

    def kick(self, engine, index_dir: str) -> None:
        with self._lock:
            self._pending[index_dir] = engine
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="search-outbox-drain",
                                                daemon=True)
                self._thread.start()
            self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                targets, self._pending = list(self._pending.items()), {}
            for index_dir, engine in targets:
                try:
                    with Session(bind=engine, expire_on_commit=False) as session:
                        if outbox_pending(session, index_dir):
                            drain_outbox(session, index_dir, blocking=False)
                except Exception:  # keep the thread alive; the next request retries
                    log.exception("background search-outbox drain failed")
            with self._lock:
                if not self._wake.is_set():
                    self._idle.set()
            time.sleep(0.2)  # at most a few drains a second under load


_drainer = _BackgroundDrainer()


def wait_for_background_drain(timeout: float = 10.0) -> bool:
    """Block until the background drainer has nothing left to do (tests use this)."""
    return _drainer.wait_idle(timeout)


def in_process_drain_enabled(app) -> bool:
    """SEARCH_DRAIN_IN_PROCESS: on for the dev server, off in tests unless a test turns it on."""
    setting = app.config.get("SEARCH_DRAIN_IN_PROCESS")
    if setting is None:
        return not app.testing
    return bool(setting)


def kick_background_drain(app) -> None:
    """After a request: wake the in-process drainer (when SEARCH_DRAIN_IN_PROCESS is on)."""
    global _app_config
    _app_config = app.config  # the drain thread has no app context; replica names need it
    if in_process_drain_enabled(app) and db.engine is not None:
        _drainer.kick(db.engine, app.config["SEARCH_INDEX_DIR"])
