"""Commands of the demand side: `flask --app marketplace run-need-timers`.

The app factory adds every command of ``cli`` to the top-level `flask` command."""

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from demand import services
from marketplace import jobs
from marketplace.database import db, utcnow

cli = AppGroup("demand", help="Commands of the demand side (needs, 需求).")


@cli.command("run-need-timers")
@click.option("--now", "now_text", default=None,
              help="Pretend it is this UTC time (ISO 8601), for testing and replays.")
def run_need_timers(now_text):
    """Expire needs past their deadline without proposals, remind buyers with proposals
    to award, expire long-unawarded needs. Safe to re-run; run-order-timers runs it too."""
    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T09:00:00") from exc
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)

    def body(_job):
        report = services.run_need_timers(db.session, now=now)
        db.session.commit()
        return str(report)

    jobs.run("run-need-timers", body)
