"""Commands of the platform: `flask --app marketplace <command>`.

Every package keeps its commands in its own ``cli.py`` as an ``AppGroup`` named ``cli``; the
app factory adds each of their commands to the top-level `flask` command, so names stay flat
(`flask init-db`, `flask run-order-timers`, ...).
"""

import time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from catalog import page_cache
from catalog.categories import seed_categories
from marketplace import backup, jobs, mail
from marketplace.accounts_service import AccountError, create_staff_user
from marketplace.database import db, utcnow
from marketplace.migrate import upgrade
from marketplace.models import EmailMessage
from orders import figures

cli = AppGroup("marketplace", help="Commands of the platform.")


@cli.command("init-db")
def init_db():
    """Apply migrations and seed the category tree (safe to run repeatedly)."""
    upgrade(current_app.config["DATABASE_URL"])
    added = seed_categories(db.session)
    db.session.commit()
    click.echo(f"Database is at the latest migration; {added} categories added.")


@cli.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--admin", is_flag=True, help="Create a platform admin instead of staff.")
@click.password_option()
def create_staff(email, full_name, admin, password):
    """Create a platform staff (monitor) or admin account; never possible by sign-up."""
    try:
        user = create_staff_user(db.session, email=email, full_name=full_name,
                                 password=password, admin=admin)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created {user.role} account {user.email}.")


@cli.command("backup")
@click.option("--output", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for the backup file (default: BACKUP_DIR).")
def backup_command(output_dir):
    """Back up the database: SQLite through the online backup API (safe while serving),
    PostgreSQL through pg_dump --format=custom. Prints the file written."""
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


@cli.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a database that is not empty.")
def restore_command(backup_file, force):
    """Restore a backup made by `backup` into DATABASE_URL (an empty database unless
    --force). Afterwards run `reindex` to rebuild the search index."""
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

    # Workers still running keep pages filed under catalogue versions; the restored
    # counter may be one of them, so it jumps to a number no process has seen.
    db.session.remove()
    page_cache.start_new_era(db.session)
    click.echo(f"Restored {backup_file} ({result.tables} tables). "
               "Now run `flask --app marketplace reindex` to rebuild the search index.")


@cli.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep sending as emails are queued (a worker).")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between polls with --loop.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="Most emails sent per round.")
def send_mail_command(loop, interval, limit):
    """Deliver queued emails through MAIL_BACKEND (oldest first; a temporary refusal is
    retried with back-off, a permanent one is given up; see `flask outbox`). Safe from
    cron and beside a --loop worker (one lock)."""
    backend = mail.backend_from_config(current_app.config)

    def body(job):
        while True:
            report = mail.deliver_pending(db.session, backend, limit)
            if loop and not backend.delivers:
                # MAIL_BACKEND=outbox never sends: say so once, then idle without
                # counting an ever-growing table every few seconds.
                click.echo(f"send-mail: {report}")
                while True:
                    time.sleep(3600)
            if not loop:
                if report.failed:
                    job.fail()  # cron mails the summary; the rows wait for the next run
                return str(report)
            if report.attempted:
                click.echo(f"send-mail: {report}")
            if report.sent < limit:  # a full round may have more right behind it
                time.sleep(interval)

    jobs.run("send-mail", body)


@cli.command("outbox")
@click.option("--to", "to_address", default=None, metavar="EMAIL",
              help="Only emails to this address.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many of the newest emails to show.")
@click.option("--unsent", is_flag=True, help="Only emails not sent yet.")
def outbox_command(to_address, limit, unsent):
    """Print the newest emails in the outbox, bodies included (development: read the
    reset and invitation links the site sent). There is deliberately no web page."""
    conditions = []
    if to_address:
        conditions.append(func.lower(EmailMessage.to_address) == to_address.strip().lower())
    if unsent:
        conditions.append(EmailMessage.sent_at.is_(None))
    total = db.session.scalar(
        select(func.count()).select_from(EmailMessage).where(*conditions))
    rows = db.session.scalars(
        select(EmailMessage).where(*conditions)
        .order_by(EmailMessage.created_at.desc(), EmailMessage.id.desc()).limit(limit)).all()
    if not rows:
        click.echo("No emails" + (f" to {to_address}" if to_address else "")
                   + (" waiting to be sent" if unsent else "") + ".")
        return
    rule = "=" * 72
    for row in rows:
        if row.sent_at is not None:
            state = f"sent {row.sent_at:%Y-%m-%d %H:%M:%S} UTC"
        elif row.gave_up_at is not None:
            state = (f"given up {row.gave_up_at:%Y-%m-%d %H:%M:%S} UTC after "
                     f"{row.attempts} {'try' if row.attempts == 1 else 'tries'}; "
                     f"last error: {row.error}")
        elif row.retry_after is not None:
            state = (f"not sent; next try after {row.retry_after:%Y-%m-%d %H:%M:%S} UTC; "
                     f"last error: {row.error}")
        elif row.error:
            state = f"not sent; last error: {row.error}"
        else:
            state = "not sent yet"
        click.echo(f"{rule}\n#{row.id}  To: {row.to_address}\nSubject: {row.subject}\n"
                   f"Created: {row.created_at:%Y-%m-%d %H:%M:%S} UTC · {state}\n\n"
                   f"{row.body}")
    click.echo(f"{rule}\nShowing the newest {len(rows)} of {total} emails"
               + (f" to {to_address}" if to_address else "")
               + (" not sent yet" if unsent else "") + ".")


@cli.command("rebuild-console-figures")
def rebuild_console_figures():
    """Recompute the dashboard's daily roll-up and per-state counters from the orders (after
    a bulk load that bypassed the app; idempotent, one transaction)."""
    def body(job):
        report = figures.rebuild(db.session)
        db.session.commit()
        return (f"Rebuilt the console figures: {report['days']:,} day rows, "
                f"{report['orders']:,} orders counted.")

    jobs.run("rebuild-console-figures", body)
