"""The search outbox as a log, read by every replica of the search index at its own pace.

Each app host keeps its own Whoosh index (a replica: fast local reads, nothing shared on
disk). Listing changes append rows to ``search_outbox`` in the same transaction as the change
(``catalog.search_outbox``). Every consumer of the log keeps a cursor in ``search_replica``:

- one per index replica (named by ``SEARCH_REPLICA_NAME``, default host name plus index path):
  its drain applies the rows after its cursor to its own index, then moves the cursor;
- one cluster-wide consumer, ``(favourite-notices)``, run by whichever drain holds the
  ``outbox-notices`` job lock: it sends the favourite notices once for the whole cluster.

**Cursors and late commits.** Ids come from a sequence, and on PostgreSQL a transaction may
commit id 11 after another committed id 12. A cursor is therefore a low-water mark: every
id at or below it has been applied or is known never to come. Rows above it are applied as
they appear (each only once per process); a missing id (a "gap") holds the cursor until the
transactions that might still commit it have finished (PostgreSQL: the oldest running
transaction is younger than the gap's discovery) or, failing that, ``GAP_SECONDS`` have
passed. Applying a row twice is harmless (documents are replaced by id), so a restarted
process simply re-reads from its cursor.

**Joining.** A new replica (or one whose cursor fell below what was pruned) builds from a
snapshot: it notes its start position *before* reading the listings (``start_position``), so
every change that commits during the rebuild is applied again afterwards from the log.

**Pruning.** Rows at or below the lowest cursor of the live consumers (seen within
``REPLICA_TIMEOUT_SECONDS``) and older than ``SEARCH_OUTBOX_RETENTION_SECONDS`` are deleted;
the highest pruned id is remembered, and a replica that comes back below it rebuilds.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.models import SearchOutbox, SearchReplica
from marketplace.database import utcnow

NOTICES = "(favourite-notices)"
PRUNED = "(pruned)"  # applied_id: the highest id pruned so far
GAP_SECONDS = 30.0
REPLICA_TIMEOUT_SECONDS = 24 * 3600

_state_lock = threading.Lock()
_seen: dict[tuple[str, str], set[int]] = {}  # (database, consumer) -> applied ids above cursor
_gaps: dict[tuple[str, str], dict[int, tuple[float, int | None]]] = {}  # id -> (when, xmax)


def replica_name(index_dir, config=None) -> str:
    """This host's replica: SEARCH_REPLICA_NAME, or the host name and the index path."""
    configured = (config or {}).get("SEARCH_REPLICA_NAME") if config is not None else None
    if configured:
        return str(configured)[:100]
    path = os.path.abspath(str(index_dir))
    return f"{socket.gethostname()[:60]}:{hashlib.sha256(path.encode()).hexdigest()[:12]}"


def _key(session: Session, consumer: str) -> tuple[str, str]:
    return (str(session.get_bind().url), consumer)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def cursor(session: Session, consumer: str) -> SearchReplica | None:
    return session.get(SearchReplica, consumer, populate_existing=True)


def set_cursor(session: Session, consumer: str, applied_id: int) -> None:
    """Create or move a consumer's cursor (flushes; the caller commits)."""
    row = cursor(session, consumer)
    if row is None:
        session.add(SearchReplica(name=consumer, applied_id=applied_id, updated_at=utcnow()))
        try:
            session.flush()
        except IntegrityError:  # another process created it meanwhile
            session.rollback()
            row = cursor(session, consumer)
    if row is not None:
        row.applied_id = applied_id
        row.updated_at = utcnow()
        session.flush()
    with _state_lock:
        _seen.pop(_key(session, consumer), None)
        _gaps.pop(_key(session, consumer), None)


def last_id(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(SearchOutbox.id), 0))) or 0


def pruned_below(session: Session) -> int:
    row = cursor(session, PRUNED)
    return row.applied_id if row is not None else 0


def start_position(session: Session) -> int:
    """Where a consumer built from a snapshot taken *now* starts reading the log: before every
    row that might still commit late (those of the last GAP_SECONDS), so nothing is missed."""
    newest = last_id(session)
    recent = session.scalar(select(func.min(SearchOutbox.id)).where(
        SearchOutbox.created_at >= utcnow() - timedelta(seconds=GAP_SECONDS)))
    return min(newest, recent - 1) if recent is not None else newest


def needs_snapshot(session: Session, consumer: str) -> bool:
    """A replica that never started, or whose cursor is below what was pruned, must rebuild."""
    row = cursor(session, consumer)
    return row is None or row.applied_id < pruned_below(session)


def ensure_consumer(session: Session, consumer: str) -> None:
    """A consumer that needs no snapshot (the notices) starts at the current position."""
    if cursor(session, consumer) is None:
        set_cursor(session, consumer, start_position(session))
        session.commit()


def read_new(session: Session, consumer: str, batch: int) -> list[SearchOutbox]:
    """Rows after the consumer's cursor that this process has not applied yet, in id order."""
    row = cursor(session, consumer)
    low = row.applied_id if row is not None else 0
    with _state_lock:
        seen = set(_seen.get(_key(session, consumer), ()))
    rows = list(session.scalars(
        select(SearchOutbox).where(SearchOutbox.id > low).order_by(SearchOutbox.id)
        .limit(batch + len(seen))))
    return [r for r in rows if r.id not in seen][:batch]


def _oldest_running_xid(session: Session) -> tuple[int, int] | None:
    """(xmin, xmax) of the current snapshot: every xid below xmin has finished."""
    if not _postgres(session):
        return None
    found = session.execute(text(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint")).one()
    return int(found[0]), int(found[1])


def advance(session: Session, consumer: str, applied: list[int]) -> int:
    """Record ``applied`` ids and move the cursor over every id that is applied or is a gap
    that can no longer be filled. Flushes; returns the new cursor."""
    key = _key(session, consumer)
    row = cursor(session, consumer)
    low = row.applied_id if row is not None else 0
    snapshot = _oldest_running_xid(session)
    now = time.monotonic()
    with _state_lock:
        seen = _seen.setdefault(key, set())
        gaps = _gaps.setdefault(key, {})
        seen.update(i for i in applied if i > low)
        if seen:
            top = max(seen)
            for missing in range(low + 1, top):
                if missing not in seen and missing not in gaps:
                    gaps[missing] = (now, snapshot[1] if snapshot else None)
        new_low = low
        while True:
            following = new_low + 1
            if following in seen:
                seen.discard(following)
                new_low = following
                continue
            gap = gaps.get(following)
            if gap is None:
                break
            noticed, xmax = gap
            settled = (snapshot is None  # SQLite: one writer, so a gap is never filled later
                       or (xmax is not None and snapshot[0] >= xmax)
                       or now - noticed >= GAP_SECONDS)
            if not settled:
                break
            # Re-check the database once before skipping: it may have committed meanwhile.
            if session.get(SearchOutbox, following) is not None:
                break  # read_new will deliver it
            del gaps[following]
            new_low = following
        for stale in [g for g in gaps if g <= new_low]:
            del gaps[stale]
    if row is None or new_low != low or applied:
        set_cursor_keep_state(session, consumer, new_low)
    return new_low


def set_cursor_keep_state(session: Session, consumer: str, applied_id: int) -> None:
    row = cursor(session, consumer)
    if row is None:
        session.add(SearchReplica(name=consumer, applied_id=applied_id, updated_at=utcnow()))
    else:
        session.execute(update(SearchReplica).where(SearchReplica.name == consumer)
                        .values(applied_id=applied_id, updated_at=utcnow()))
    session.flush()


def pending(session: Session, consumer: str) -> bool:
    """Whether rows after this consumer's cursor exist that this process has not applied."""
    row = cursor(session, consumer)
    low = row.applied_id if row is not None else 0
    with _state_lock:
        seen = _seen.get(_key(session, consumer), set())
    ids = session.scalars(select(SearchOutbox.id).where(SearchOutbox.id > low)
                          .order_by(SearchOutbox.id).limit(len(seen) + 1))
    return any(i not in seen for i in ids)


def prune(session: Session, retention_seconds: float) -> int:
    """Delete rows every live consumer has passed and that are older than the retention.
    Returns the number deleted (the caller commits)."""
    live_since = utcnow() - timedelta(seconds=REPLICA_TIMEOUT_SECONDS)
    lowest = session.scalar(select(func.min(SearchReplica.applied_id)).where(
        SearchReplica.name != PRUNED, SearchReplica.updated_at >= live_since))
    if not lowest:
        return 0
    conditions = [SearchOutbox.id <= lowest]
    if retention_seconds > 0:
        conditions.append(SearchOutbox.created_at < utcnow() - timedelta(
            seconds=retention_seconds))
    highest = session.scalar(select(func.max(SearchOutbox.id)).where(*conditions))
    if highest is None:
        return 0
    deleted = session.execute(delete(SearchOutbox).where(SearchOutbox.id <= highest)).rowcount
    if highest > pruned_below(session):
        set_cursor_keep_state(session, PRUNED, highest)
    return deleted or 0
