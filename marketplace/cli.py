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

    @app.cli.command("backup")
    @click.option("--output", "output_dir", default=None, type=click.Path(file_okay=False),
                  help="Folder for the backup file (default: BACKUP_DIR).")
    def backup_command(output_dir):
        """Back up the database: SQLite through the online backup API (safe while serving),
        PostgreSQL through pg_dump --format=custom. Prints the file written."""
        from marketplace import backup
        from marketplace.database import utcnow

        url = current_app.config["DATABASE_URL"]
        target_dir = output_dir or current_app.config.get("BACKUP_DIR")

        def body(job):
            now = utcnow()
            try:
                if backup.is_sqlite(url):
                    with job.bar(100, "copying pages") as advance:
                        done = {"percent": 0}

                        def progress(copied, total):
                            percent = int(100 * copied / total) if total else 100
                            advance(percent - done["percent"])
                            done["percent"] = percent

                        result = backup.backup_sqlite(url, target_dir, now, progress)
                else:
                    result = backup.backup_postgres(url, target_dir, now)
            except backup.BackupError as exc:
                raise click.ClickException(str(exc)) from exc
            return f"wrote {result.path} ({result.size / 1024 / 1024:.1f} MB)"

        jobs.run("backup", body)

    @app.cli.command("restore")
    @click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--force", is_flag=True, help="Replace a database that is not empty.")
    def restore_command(backup_file, force):
        """Restore a backup made by `backup` into DATABASE_URL (an empty database unless
        --force). Afterwards run `reindex` to rebuild the search index."""
        from marketplace import backup

        url = current_app.config["DATABASE_URL"]
        try:
            if backup.is_sqlite(url):
                db.session.remove()
                db.engine.dispose()
                result = backup.restore_sqlite(backup_file, url, force=force)
            else:
                result = backup.restore_postgres(backup_file, url, db.engine, force=force)
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        from catalog import page_cache

        # Workers still running keep pages filed under catalogue versions; the restored
        # counter may be one of them, so it jumps to a number no process has seen.
        db.session.remove()
        page_cache.start_new_era(db.session)
        click.echo(f"Restored {backup_file} ({result.tables} tables). "
                   "Now run `flask --app marketplace reindex` to rebuild the search index.")

    from orders.cli import register_order_commands

    register_order_commands(app)  # run-order-timers, seed-demo-vouchers
