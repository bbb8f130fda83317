"""Commands of the buying area: `flask --app marketplace run-order-timers | run-settlement |
capture-accepted-holds`.

The app factory adds every command of ``cli`` to the top-level `flask` command."""

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from marketplace import jobs
from marketplace.database import db, utcnow
from marketplace.i18n import local_today
from orders import payments, settlement, sla, timers

cli = AppGroup("orders", help="Commands of the buying area.")


@cli.command("run-order-timers")
@click.option("--now", "now_text", default=None,
              help="Pretend it is this UTC time (ISO 8601), for testing and replays.")
def run_order_timers(now_text):
    """Auto-decline paid orders not accepted in time, auto-complete delivered orders the
    buyer did not answer, cancel unpaid orders, expire quotes, repair stuck money, announce
    milestones that deviate from the plan (once per deviation).
    Safe to run as often as you like (cron: every few minutes)."""
    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T09:00:00") from exc
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    days = int(current_app.config.get("AUTO_COMPLETE_DAYS", 7))
    warning_days = int(current_app.config.get("SLA_WARNING_DAYS", sla.DEFAULT_WARNING_DAYS))
    milestone_days = int(current_app.config.get("MILESTONE_AUTO_APPROVE_DAYS", 14))

    def body(job):
        report = timers.run(db.session, now, days, progress=job.progress,
                            warning_days=warning_days, milestone_days=milestone_days)
        for error in report.errors:
            click.echo(f"  error: {error}", err=True)
        if report.errors:
            job.fail()
        from demand.services import run_need_timers  # needs (需求) past their deadline

        needs = run_need_timers(db.session, now)
        db.session.commit()
        return f"{report.summary()}; {needs}"

    jobs.run("run-order-timers", body)


@cli.command("capture-accepted-holds")
def capture_accepted_holds():
    """One-off (issue 13, escrow): capture the card holds of orders accepted before the card
    was captured at acceptance, so their money is held by the platform; an order whose hold
    the bank already released is marked for the buyer to pay again (buyer and staff told
    once). Idempotent: run it after deploying, and again until it reports nothing left."""

    def body(job):
        report = payments.capture_accepted_holds(db.session, progress=job.progress)
        if report.failed:
            click.echo("  Stripe did not answer for: " + ", ".join(report.failed), err=True)
            job.fail()
        return report.summary()

    jobs.run("capture-accepted-holds", body)


@cli.command("run-settlement")
@click.option("--period", default=None,
              help="Month to settle, YYYY-MM (default: last month).")
@click.option("--from", "start", default=None, type=click.DateTime(["%Y-%m-%d"]),
              help="First day of a custom period (with --to), YYYY-MM-DD.")
@click.option("--to", "end", default=None, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of a custom period (inclusive), YYYY-MM-DD.")
def run_settlement(period, start, end):
    """Make the settlement batch of a period: every order completed or ruled on in it and
    not yet in a batch, one statement per institution. Re-running creates nothing new
    (only a supplementary batch for orders whose money became final since)."""
    def body(job):
        try:
            if start or end:
                chosen = settlement.period_between(start and start.date(), end and end.date())
            else:
                chosen = settlement.month(period or settlement.previous_month(local_today()))
            result = settlement.run_period(db.session, chosen, None,
                                           current_app.config.get("CURRENCY", "CNY"),
                                           progress=job.progress)
        except settlement.SettlementError as exc:
            db.session.rollback()
            raise click.UsageError(exc.message) from exc
        db.session.commit()
        for order, why in result.waiting:
            click.echo(f"  waiting: {order.number}: {why}")
        return result.summary()

    jobs.run("run-settlement", body)
