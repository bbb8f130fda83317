"""Commands that load the demo: `flask --app marketplace load-demo`, `seed-demo-vouchers`,
`load-demo-activity` (scripts/serve runs them in that order)."""

from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from catalog.models import Product
from marketplace import jobs
from marketplace.database import db, utcnow
from marketplace.demo import activity as demo_activity
from marketplace.demo.catalogue import DemoDataError, load_demo_data
from marketplace.models import Organisation, User
from orders import vouchers
from orders.models import Voucher, VoucherProgramme

cli = AppGroup("demo", help="Load the demo supermarket and its history.")


@cli.command("load-demo")
@click.option("--seed", default=20261123, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when products already exist.")
def load_demo(seed, if_empty):
    """Load the deterministic demo supermarket (institutions, products, enterprises)."""
    if if_empty and db.session.scalar(select(Product.id).limit(1)) is not None:
        click.echo("Demo data already present; nothing to do.")
        return
    try:
        summary = load_demo_data(db.session, seed=seed, echo=click.echo)
    except DemoDataError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(summary)


@cli.command("seed-demo-vouchers")
def seed_demo_vouchers():
    """Demo only: a voucher programme and a voucher for the demo enterprises that have
    none (safe to run repeatedly)."""
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


@cli.command("load-demo-activity")
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
