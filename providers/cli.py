"""Commands of the providers area: `flask --app marketplace recompute-credibility` (nightly)
and `refresh-credibility` (the after-commit queue order transitions fill)."""

import time
from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from marketplace import jobs
from marketplace.database import db
from providers.credibility import RecomputeReport, drain_dirty, recompute_all

cli = AppGroup("providers", help="Commands of the providers area.")


@cli.command("recompute-credibility")
@click.option("--now", "now_text", default=None, metavar="ISO-TIME",
              help="Compute as of this UTC time (default: now).")
def recompute_credibility(now_text):
    """Recompute the credibility score of every organisation (nightly; idempotent)."""
    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter("use an ISO time such as 2026-11-24T02:00",
                                     param_hint="--now") from exc
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    def body(job):
        report = recompute_all(db.session, now)
        db.session.commit()
        return str(report)

    jobs.run("recompute-credibility", body)


@cli.command("refresh-credibility")
@click.option("--loop", is_flag=True, help="Keep draining as organisations are marked.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between polls with --loop.")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(min=1),
              help="Organisations recomputed per transaction.")
def refresh_credibility(loop, interval, batch):
    """Recompute the organisations that order transitions marked (credibility_dirty),
    after their commit, off the users' requests. Idempotent; the jobs loop runs it."""

    def body(job):
        while True:
            total = RecomputeReport()
            while True:
                report = drain_dirty(db.session, limit=batch)
                db.session.commit()
                total.organisations += report.organisations
                total.changed += report.changed
                total.snapshots += report.snapshots
                total.listings_queued += report.listings_queued
                if report.organisations < batch:
                    break
            if not loop:
                return str(total)
            if total.organisations:
                click.echo(f"refresh-credibility: {total}")
            time.sleep(interval)

    jobs.run("refresh-credibility", body)
