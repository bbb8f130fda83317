"""Commands of the providers area: `flask --app marketplace recompute-credibility`."""

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from marketplace import jobs
from marketplace.database import db
from providers.credibility import recompute_all

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
