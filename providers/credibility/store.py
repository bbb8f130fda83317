"""Layer 3, storing: ``recompute``/``recompute_many``/``recompute_all`` store the score on
``Organisation``, write a ``CredibilitySnapshot`` when the score or level changed and queue
the published listings of an institution whose score changed in the search outbox, all in
the caller's transaction. Order transitions do not recompute in the request: they mark
both parties in ``credibility_dirty`` (``mark_dirty``) and ``drain_dirty`` recomputes them
after commit (``flask --app marketplace refresh-credibility``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.models import Organisation
from providers.credibility.gather import (
    OrgRow,
    _chunks,
    gather,
)
from providers.credibility.score import (
    CredibilityInputs,
    CredibilityResult,
    score,
)

# --------------------------------------------------------------------------- storing

# Listings already queued for the search index in the current transaction (by any service):
# one outbox row per listing and transaction is enough, because the writer reads the listing
# and its institution after the commit. Rows of earlier transactions are not counted: the
# writer may be applying them right now, before this transaction's change is visible.
_QUEUED = "credibility.outbox_queued"


@event.listens_for(Session, "before_flush")
def _note_queued_listings(session, _flush_context, _instances) -> None:
    from catalog.models import SearchOutbox

    for obj in session.new:
        if isinstance(obj, SearchOutbox):
            session.info.setdefault(_QUEUED, set()).add(obj.product_id)


@event.listens_for(Session, "after_transaction_end")
def _forget_queued_listings(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_QUEUED, None)


@dataclass
class RecomputeReport:
    organisations: int = 0
    changed: int = 0
    snapshots: int = 0
    listings_queued: int = 0

    def __str__(self) -> str:
        return (f"Credibility recomputed for {self.organisations} organisations: "
                f"{self.changed} changed, {self.snapshots} snapshots written, "
                f"{self.listings_queued} listings queued for the search index.")


def _store(session: Session, gathered: dict[int, tuple[OrgRow, CredibilityInputs]],
           now: datetime, queue_listings: bool = True,
           ) -> tuple[RecomputeReport, dict[int, CredibilityResult]]:
    from catalog.models import Product
    from catalog.search import outbox as search_outbox
    from providers.models import CredibilitySnapshot

    report = RecomputeReport(organisations=len(gathered))
    results: dict[int, CredibilityResult] = {}
    updates, snapshots, changed_providers = [], [], []
    for org_id, (row, inputs) in gathered.items():
        result = score(inputs)
        results[org_id] = result
        if (row.score, row.level) == (result.score, result.level):
            continue
        report.changed += 1
        updates.append({"id": org_id, "credibility_score": result.score,
                        "credibility_level": result.level, "credibility_updated_at": now})
        snapshots.append({"organisation_id": org_id, "score": result.score,
                          "level": result.level, "breakdown": result.breakdown(),
                          "computed_at": now})
        if row.kind == "provider" and queue_listings:
            changed_providers.append(org_id)
    for batch in _chunks(updates, 1000):
        session.execute(update(Organisation), batch)
    for batch in _chunks(snapshots, 1000):
        session.execute(CredibilitySnapshot.__table__.insert(), batch)
    report.snapshots = len(snapshots)
    queued = session.info.get(_QUEUED, set())
    for batch in _chunks(changed_providers):
        product_ids = [pid for pid in session.scalars(select(Product.id).where(
            Product.provider_id.in_(batch), Product.status == "published")).all()
            if pid not in queued]
        # The pages showing these listings are filed under the institution, which the
        # Organisation update above names: no scope per listing.
        report.listings_queued += search_outbox.enqueue_many(session, product_ids,
                                                             "credibility_changed", pages=False)
    # Keep loaded Organisation objects in step with the bulk UPDATE.
    for org_id in (u["id"] for u in updates):
        org = session.identity_map.get((Organisation, (org_id,), None))
        if org is not None:
            session.expire(org, ["credibility_score", "credibility_level",
                                 "credibility_updated_at"])
    session.flush()
    return report, results


def recompute_many(session: Session, org_ids, now: datetime | None = None) -> RecomputeReport:
    """Recompute the given organisations in the caller's transaction."""
    now = now or utcnow()
    ids = [org_id for org_id in org_ids if org_id is not None]
    if not ids:
        return RecomputeReport()
    report, _ = _store(session, gather(session, now, ids), now)
    return report


def recompute(session: Session, org: Organisation, now: datetime | None = None
              ) -> CredibilityResult:
    """Recompute one organisation and return its result (with the breakdown)."""
    now = now or utcnow()
    _, results = _store(session, gather(session, now, [org.id]), now)
    return results[org.id]


def recompute_all(session: Session, now: datetime | None = None, *,
                  queue_listings: bool = True) -> RecomputeReport:
    """The nightly job: every organisation, in bulk. Idempotent: a second run with nothing
    changed writes nothing. The caller commits. ``queue_listings=False`` only when every
    listing is queued for the search index anyway (the demo loader)."""
    now = now or utcnow()
    marked = _dirty_rows(session, None)  # everyone is recomputed: their marks are done too
    report, _ = _store(session, gather(session, now), now, queue_listings)
    _clear_dirty(session, marked)
    return report


def refresh_for_order(session: Session, order, now: datetime | None = None) -> RecomputeReport:
    """Both parties of the order, now (order transitions mark them instead: ``mark_dirty``)."""
    return recompute_many(session, [order.buyer_org_id, order.provider_org_id], now)


# --------------------------------------------------------------------------- the queue

def mark_dirty(session: Session, org_ids, now: datetime | None = None) -> None:
    """Record, in the caller's transaction, that these organisations need a recompute.
    One row per organisation; marking it again bumps ``marks`` and keeps ``since``."""
    from providers.models import CredibilityDirty

    now = now or utcnow()
    ids = sorted({org_id for org_id in org_ids if org_id is not None})
    if not ids:
        return
    table = CredibilityDirty.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values([{"organisation_id": i, "since": now, "marks": 1} for i in ids])
    session.execute(stmt.on_conflict_do_update(
        index_elements=[table.c.organisation_id], set_={"marks": table.c.marks + 1}))


def _dirty_rows(session: Session, limit: int | None) -> list[tuple[int, int]]:
    from providers.models import CredibilityDirty as D  # noqa: N814

    stmt = select(D.organisation_id, D.marks).order_by(D.since, D.organisation_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [tuple(row) for row in session.execute(stmt).all()]


def _clear_dirty(session: Session, rows: list[tuple[int, int]]) -> None:
    """Delete the marks that were read, unless marked again since (then the next drain
    recomputes with what that later change wrote)."""
    from providers.models import CredibilityDirty as D  # noqa: N814

    for org_id, marks in rows:
        session.execute(delete(D).where(D.organisation_id == org_id, D.marks == marks))


def dirty_count(session: Session) -> int:
    from providers.models import CredibilityDirty

    return session.scalar(select(func.count()).select_from(CredibilityDirty)) or 0


def drain_dirty(session: Session, now: datetime | None = None, *,
                limit: int = 500) -> RecomputeReport:
    """Recompute up to ``limit`` marked organisations (oldest marks first) and delete their
    marks, in the caller's transaction; the caller commits and calls again while the
    report says ``organisations == limit``. Idempotent: with nothing marked it does nothing."""
    rows = _dirty_rows(session, limit)
    if not rows:
        return RecomputeReport()
    report = recompute_many(session, [org_id for org_id, _marks in rows], now)
    _clear_dirty(session, rows)
    session.flush()
    return report


def refresh_organisation(session: Session, org: Organisation,
                         now: datetime | None = None) -> RecomputeReport:
    """After a verification, suspension or review change of one organisation."""
    return recompute_many(session, [org.id], now)


def current(session: Session, org: Organisation, now: datetime | None = None
            ) -> CredibilityResult:
    """The breakdown as it stands now, computed on the fly (nothing is written)."""
    now = now or utcnow()
    gathered = gather(session, now, [org.id])
    return score(gathered[org.id][1])

