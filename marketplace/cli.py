"""Command-line tools: `flask --app marketplace <command>`."""

import click
from flask import current_app
from sqlalchemy import select

from marketplace import jobs
from marketplace.database import db


def register_cli(app):
    @app.cli.command("init-db")
    def init_db():
        """Apply migrations and seed the category tree (safe to run repeatedly)."""
        from catalog.categories import seed_categories
        from marketplace.migrate import upgrade

        upgrade(current_app.config["DATABASE_URL"])
        added = seed_categories(db.session)
        db.session.commit()
        click.echo(f"Database is at the latest migration; {added} categories added.")

    @app.cli.command("create-staff")
    @click.option("--email", required=True)
    @click.option("--name", "full_name", required=True)
    @click.option("--admin", is_flag=True, help="Create a platform admin instead of staff.")
    @click.password_option()
    def create_staff(email, full_name, admin, password):
        """Create a platform staff (monitor) or admin account; never possible by sign-up."""
        from marketplace.accounts_service import AccountError, create_staff_user

        try:
            user = create_staff_user(db.session, email=email, full_name=full_name,
                                     password=password, admin=admin)
        except AccountError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"Created {user.role} account {user.email}.")

    @app.cli.command("load-demo")
    @click.option("--seed", default=20261123, show_default=True)
    @click.option("--if-empty", is_flag=True, help="Do nothing when products already exist.")
    def load_demo(seed, if_empty):
        """Load the deterministic demo supermarket (institutions, products, enterprises)."""
        from catalog.models import Product
        from marketplace.demo import DemoDataError, load_demo_data

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

    @app.cli.command("recompute-credibility")
    @click.option("--now", "now_text", default=None, metavar="ISO-TIME",
                  help="Compute as of this UTC time (default: now).")
    def recompute_credibility(now_text):
        """Recompute the credibility score of every organisation (nightly; idempotent)."""
        from datetime import UTC, datetime

        from providers.credibility import recompute_all

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

    from orders.cli import register_order_commands

    register_order_commands(app)  # run-order-timers, seed-demo-vouchers
