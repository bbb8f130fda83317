"""Commands of the catalogue: `flask --app marketplace reindex | drain-outbox | search-merge |
publish-reviews`."""

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from catalog import reviews
from catalog.models import Product
from catalog.search import replicas as search_replicas
from catalog.search.index import (
    built_marker,
    indexed_ids,
    merge_segments,
    reindex_all,
    segment_count,
)
from catalog.search.worker import drain_outbox
from catalog.services import visible_products_condition
from marketplace import jobs
from marketplace.database import db, utcnow

cli = AppGroup("catalog", help="Commands of the catalogue.")


@cli.command("reindex")
@click.option("--if-empty", is_flag=True,
              help="Only rebuild a missing or empty index; otherwise apply the outbox.")
def reindex_command(if_empty):
    """Rebuild the search index from the database."""
    index_dir = current_app.config["SEARCH_INDEX_DIR"]

    def body(job):
        if if_empty:
            existing = len(indexed_ids(index_dir))
            if existing and built_marker(index_dir).exists():
                result = drain_outbox(db.session, index_dir)
                return f"The search index has {existing} listings; not rebuilt. {result}"
        total = db.session.scalar(select(func.count()).select_from(Product).where(
            visible_products_condition()))
        with job.bar(total, "indexing listings") as advance:
            count = reindex_all(db.session, index_dir, on_batch=advance)
        return f"Indexed {count} listings."

    jobs.run("reindex", body, lock_name=(
        f"reindex:{search_replicas.replica_name(index_dir, current_app.config)}"))


@cli.command("drain-outbox")
@click.option("--loop", is_flag=True, help="Keep draining (a worker process).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
def drain_command(loop, interval):
    """Apply pending listing changes to this host's search index (its replica)."""
    index_dir = current_app.config["SEARCH_INDEX_DIR"]
    # Every host drains its own replica: the lock is per replica, not per cluster.
    lock_name = f"drain-outbox:{search_replicas.replica_name(index_dir, current_app.config)}"
    if loop:
        # Rides out database restarts (marketplace/jobs.py run_loop).
        def step():
            result = drain_outbox(db.session, index_dir)
            if not (result.rows or result.notices):
                return None
            merged = _merge_if_many_segments(index_dir, result)
            return f"{result} {merged}" if merged else str(result)

        jobs.run_loop("drain-outbox", step, interval=interval, lock_name=lock_name)
        return

    def body(job):
        result = drain_outbox(db.session, index_dir)
        merged = _merge_if_many_segments(index_dir, result)
        return f"{result} {merged}" if merged else str(result)

    jobs.run("drain-outbox", body, lock_name=lock_name)


def _merge_if_many_segments(index_dir, result) -> str:
    """After a drain that wrote to the index: merge its small segments once there are more
    than SEARCH_MERGE_SEGMENTS (each drain commit adds one)."""
    threshold = current_app.config.get("SEARCH_MERGE_SEGMENTS") or 0
    if result.skipped or not result.rows or threshold <= 0:
        return ""
    if segment_count(index_dir) <= threshold:
        return ""
    return str(merge_segments(index_dir, deleted_share=_deleted_share()))


def _deleted_share() -> float:
    return float(current_app.config.get("SEARCH_MERGE_DELETED_SHARE") or 0.1)


@cli.command("search-merge")
@click.option("--full", is_flag=True,
              help="Rewrite the whole index into one segment (about half a rebuild).")
def search_merge_command(full):
    """Merge the search index's small segments (left by outbox drains) into one."""
    index_dir = current_app.config["SEARCH_INDEX_DIR"]

    def body(job):
        return str(merge_segments(index_dir, full=full, deleted_share=_deleted_share()))

    jobs.run("search-merge", body, lock_name=(
        f"search-merge:{search_replicas.replica_name(index_dir, current_app.config)}"))


@cli.command("publish-reviews")
@click.option("--now", "now_text", default=None,
              help="Act as if it were this UTC time (ISO 8601), e.g. to replay a run.")
def publish_reviews_command(now_text):
    """Publish reviews whose double-blind window is over (also run by run-order-timers)."""
    now = datetime.fromisoformat(now_text) if now_text else utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)

    def body(job):
        count = reviews.publish_due_reviews(db.session, now, reviews.blind_days_setting())
        db.session.commit()
        return f"{count} reviews published (blind window of {reviews.blind_days_setting()} days over)."

    jobs.run("publish-reviews", body)
