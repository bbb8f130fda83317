"""Commands of the catalogue: `flask --app marketplace reindex | drain-outbox |
publish-reviews`."""

import time
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from catalog import reviews
from catalog.models import Product
from catalog.search.index import indexed_ids, reindex_all
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
            if existing:
                result = drain_outbox(db.session, index_dir)
                return f"The search index has {existing} listings; not rebuilt. {result}"
        total = db.session.scalar(select(func.count()).select_from(Product).where(
            visible_products_condition()))
        with job.bar(total, "indexing listings") as advance:
            count = reindex_all(db.session, index_dir, on_batch=advance)
        return f"Indexed {count} listings."

    jobs.run("reindex", body)

@cli.command("drain-outbox")
@click.option("--loop", is_flag=True, help="Keep draining (a worker process).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
def drain_command(loop, interval):
    """Apply pending listing changes to the search index."""
    index_dir = current_app.config["SEARCH_INDEX_DIR"]

    def body(job):
        while True:
            result = drain_outbox(db.session, index_dir)
            if not loop:
                return str(result)
            if result.rows:
                click.echo(str(result))
            time.sleep(interval)

    jobs.run("drain-outbox", body)


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
