"""Commands of the buying area (registered from marketplace.cli)."""

from datetime import datetime

import click
from flask import current_app

from marketplace import jobs
from marketplace.database import db, utcnow


def register_order_commands(app) -> None:
    @app.cli.command("run-order-timers")
    @click.option("--now", "now_text", default=None,
                  help="Pretend it is this UTC time (ISO 8601), for testing and replays.")
    def run_order_timers(now_text):
        """Auto-decline paid orders not accepted in time, auto-complete delivered orders the
        buyer did not answer, cancel unpaid orders, expire quotes, repair stuck money.
        Safe to run as often as you like (cron: every few minutes)."""
        from datetime import UTC

        from orders import timers

        now = utcnow()
        if now_text:
            try:
                now = datetime.fromisoformat(now_text)
            except ValueError as exc:
                raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T09:00:00") from exc
            now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        days = int(current_app.config.get("AUTO_COMPLETE_DAYS", 7))

        def body(job):
            report = timers.run(db.session, now, days, progress=job.progress)
            for error in report.errors:
                click.echo(f"  error: {error}", err=True)
            if report.errors:
                job.fail()
            from demand.services import run_need_timers  # needs (需求) past their deadline

            needs = run_need_timers(db.session, now)
            db.session.commit()
            return f"{report.summary()}; {needs}"

        jobs.run("run-order-timers", body)

    @app.cli.command("seed-demo-vouchers")
    def seed_demo_vouchers():
        """Demo only: a voucher programme and a voucher for the demo enterprises that have
        none (safe to run repeatedly)."""
        from datetime import timedelta

        from sqlalchemy import select

        from marketplace.models import Organisation, User
        from orders import vouchers
        from orders.models import Voucher, VoucherProgramme

        session = db.session
        admin = session.scalar(select(User).where(User.role.in_(("admin", "staff")))
                               .order_by(User.role, User.id))
        if admin is None:
            click.echo("No staff account yet; no demo vouchers.")
            return
        programme = session.scalar(select(VoucherProgramme).order_by(VoucherProgramme.id))
        if programme is None:
            today = utcnow().date()
            programme = vouchers.create_programme(session, admin, vouchers.ProgrammeInput(
                name="SIP innovation vouchers 2026 苏州工业园区创新券",
                funder="SIP Science and Technology Bureau", budget=2_000_000_00,
                valid_from=today - timedelta(days=30), valid_until=today + timedelta(days=365),
                max_share_bp=3000, eligible_category_ids=[],
                currency=current_app.config.get("CURRENCY", "CNY")))
        have = set(session.scalars(select(Voucher.organisation_id)))
        # The demo accounts' enterprises and the first few dozen others.
        demo_orgs = set(session.scalars(select(User.organisation_id).where(
            User.email.like("%@demo.example"), User.organisation_id.is_not(None))))
        first = set(session.scalars(select(Organisation.id).where(
            Organisation.kind == "enterprise").order_by(Organisation.id).limit(40)))
        granted = 0
        for organisation in session.scalars(select(Organisation).where(
                Organisation.kind == "enterprise", Organisation.id.in_(demo_orgs | first))
                .order_by(Organisation.id)):
            if organisation.id not in have:
                vouchers.grant(session, admin, programme, organisation, 20_000_00,
                               "Demo grant")
                granted += 1
        session.commit()
        click.echo(f"Demo vouchers: {granted} granted under “{programme.name}”.")

    @app.cli.command("run-settlement")
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
        from orders import settlement

        def body(job):
            try:
                if start or end:
                    chosen = settlement.period_between(start and start.date(), end and end.date())
                else:
                    chosen = settlement.month(period or settlement.previous_month(utcnow().date()))
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

    @app.cli.command("load-demo-activity")
    @click.option("--if-empty", is_flag=True, help="Do nothing when orders already exist.")
    @click.option("--seed", default=None, type=int,
                  help="Random seed (default: the demo activity's fixed seed).")
    @click.option("--orders", "order_count", default=None, type=click.IntRange(30, 5000),
                  help="About how many orders and quote requests to make (default 300).")
    @click.option("--now", "now_text", default=None, metavar="ISO-TIME",
                  help="Play the history up to this UTC time (default: the current hour).")
    def load_demo_activity(if_empty, seed, order_count, now_text):
        """Demo only: nine months of orders, quotes, payments, reviews and settlements among
        the demo organisations, made through the real services (run after load-demo and
        seed-demo-vouchers)."""
        from datetime import UTC

        from orders import demo_activity

        now = None
        if now_text:
            try:
                now = datetime.fromisoformat(now_text)
            except ValueError as exc:
                raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T09:00:00") from exc
            now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        if if_empty and demo_activity.has_orders(db.session):
            click.echo("Demo activity: orders already exist; nothing to do.")
            return

        def body(job):
            try:
                report = demo_activity.load_demo_activity(
                    db.session, now=now, seed=seed or demo_activity.DEFAULT_SEED,
                    orders=order_count or demo_activity.DEFAULT_ORDERS, echo=click.echo)
            except demo_activity.ActivityError as exc:
                db.session.rollback()
                raise click.ClickException(str(exc)) from exc
            return report.summary()

        jobs.run("load-demo-activity", body)
