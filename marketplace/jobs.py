"""Background jobs run from the command line (cron, a scheduler): one lock per job, a progress
bar for long runs and one summary line at the end.

    @app.cli.command("run-order-timers")
    def run_order_timers():
        def body(job):
            report = timers.run(db.session, now, progress=job.progress)
            return report.summary()

        jobs.run("run-order-timers", body)

- **Lock per job.** Two runs of the same job never overlap: the second one says so and exits
  cleanly (status 0: cron simply tries again next time). On PostgreSQL the lock is a
  session-level advisory lock (``pg_try_advisory_lock``) on a connection of its own, so it
  holds across processes and machines and is released when the process dies. On SQLite it
  is an OS file lock (``flock``) in ``JOB_LOCK_DIR``, named after the job and the database,
  also released by the kernel when the process dies.
- **Progress** (``job.progress(items, label)`` over items, ``job.bar(total, label)`` for
  batches) is a click progress bar on an interactive terminal and silent otherwise (cron mail
  and logs stay clean).
- **Summary line**: ``<job>: <what the body returned> (<seconds>s)``; a failure prints
  ``<job> failed after <seconds>s: <error>`` on stderr and exits non-zero.

The bodies themselves (service functions) are idempotent and commit in small consistent
units, so a run killed halfway leaves nothing half written and the next run finishes the work.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import text

from marketplace.database import db

log = logging.getLogger(__name__)


class JobFailed(click.ClickException):
    """The job ran but reported errors; its summary line has been printed."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    digest = hashlib.sha256(f"supermarket-job:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file_path(name: str, lock_dir, database_url: str) -> Path:
    database = hashlib.sha256(database_url.encode()).hexdigest()[:10]
    return Path(lock_dir) / f"{name}-{database}.lock"


@contextmanager
def job_lock(name: str, engine, lock_dir) -> Iterator[bool]:
    """Yield True with the job's lock held, or False at once if another run holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = lock_key(name)
            held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            connection.commit()  # the lock is per connection, not per transaction
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
        return
    path = lock_file_path(name, lock_dir, str(engine.url))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Job:
    """What a job body gets: progress reporting and a way to report errors."""

    def __init__(self, name: str, interactive: bool):
        self.name = name
        self.interactive = interactive
        self.failed = False

    def progress(self, items: Iterable, label: str, length: int | None = None) -> Iterator:
        """Iterate over ``items``, with a progress bar on an interactive terminal."""
        if not self.interactive:
            yield from items
            return
        if length is None and hasattr(items, "__len__"):
            length = len(items)
        with click.progressbar(items, length=length, label=f"{self.name}: {label}",
                               show_pos=True, file=sys.stderr) as bar:
            yield from bar

    @contextmanager
    def bar(self, total: int, label: str) -> Iterator[Callable[[int], None]]:
        """A progress bar of ``total`` steps for work done in batches: yields ``advance(n)``."""
        if not self.interactive:
            yield lambda n: None
            return
        with click.progressbar(length=total, label=f"{self.name}: {label}", show_pos=True,
                               file=sys.stderr) as bar:
            yield bar.update

    def fail(self) -> None:
        """Mark the run as failed (exit status 1) while still printing its summary."""
        self.failed = True


def _interactive() -> bool:
    try:
        return sys.stderr.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def run(name: str, body: Callable[[Job], str], *, engine=None, lock_dir=None,
        interactive: bool | None = None) -> str | None:
    """Run ``body`` under the job's lock and print its summary line.

    Returns the summary, or None when another run holds the lock (nothing done)."""
    engine = engine if engine is not None else db.engine
    lock_dir = lock_dir or current_app.config.get("JOB_LOCK_DIR") or Path(
        current_app.instance_path) / "locks"
    job = Job(name, _interactive() if interactive is None else interactive)
    started = time.perf_counter()
    with job_lock(name, engine, lock_dir) as held:
        if not held:
            message = f"{name}: another run is in progress (it holds the job lock); nothing done."
            click.echo(message)
            log.info(message)
            return None
        try:
            summary = body(job)
        except (click.ClickException, click.Abort):
            raise
        except BaseException as exc:
            elapsed = time.perf_counter() - started
            click.echo(f"{name} failed after {elapsed:.1f}s: {exc!r}", err=True)
            log.exception("job %s failed", name)
            raise
    elapsed = time.perf_counter() - started
    line = f"{name}: {summary} ({elapsed:.1f}s)"
    if job.failed:
        raise JobFailed(line)
    click.echo(line)
    log.info(line)
    return summary
