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
from contextlib import contextmanager, suppress
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


class JobLock:
    """One job's lock, taken and given back explicitly, that notices when it was lost.

    PostgreSQL: a session-level advisory lock on a connection of its own (held across
    processes and hosts; released by the server when the connection dies, e.g. when the
    database restarts). SQLite: an ``flock`` on a file in ``lock_dir``.
    """

    def __init__(self, name: str, engine, lock_dir):
        self.name = name
        self.engine = engine
        self.lock_dir = lock_dir
        self.key = lock_key(name)
        self._connection = None
        self._handle = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Take the lock if it is free; False at once if another run holds it."""
        if self.postgres:
            connection = self.engine.connect()
            try:
                held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                              {"key": self.key}))
                connection.commit()  # the lock is per connection, not per transaction
            except BaseException:
                self._discard(connection)
                raise
            if held:
                self._connection = connection
            else:
                connection.close()
            return held
        path = lock_file_path(self.name, self.lock_dir, str(self.engine.url))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 - held open for as long as the lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def still_held(self) -> bool:
        """Whether we still hold it: on PostgreSQL the lock dies with its connection (a
        database restart ends every session), and then another host may already run."""
        if self._handle is not None:
            return True
        if self._connection is None:
            return False
        try:
            # The same live session still holds its session-level lock.
            self._connection.scalar(text("SELECT 1"))
            self._connection.commit()
        except Exception:  # noqa: BLE001 - a dead connection: the lock is gone
            self._discard(self._connection)
            self._connection = None
            return False
        return True

    def release(self) -> None:
        """Give the lock back. A connection that died already took the lock with it, so a
        failure here is logged, never raised: it must not turn a finished run into a crash."""
        if self._handle is not None:
            try:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            finally:
                self._handle.close()
                self._handle = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                connection.commit()
                connection.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("job %s: could not release its lock (%s); the database dropped "
                            "the connection, and the lock with it", self.name,
                            type(exc).__name__)
                self._discard(connection)

    @staticmethod
    def _discard(connection) -> None:
        with suppress(Exception):
            connection.invalidate()
            connection.close()


@contextmanager
def job_lock(name: str, engine, lock_dir) -> Iterator[bool]:
    """Yield True with the job's lock held, or False at once if another run holds it."""
    lock = JobLock(name, engine, lock_dir)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            lock.release()


def database_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached (restart, failover)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def run_loop(name: str, step: Callable[[], str | None], *, interval: float, engine=None,
             lock_dir=None, rounds: int | None = None, on_error_wait: float = 1.0,
             lock_name: str | None = None) -> None:
    """A worker that outlives its database restarting: the ``--loop`` of a job.

    Holds the job's lock while it works. A second copy (on this host or another) waits as a
    standby and takes over when the holder dies. Runs ``step()`` every ``interval`` seconds
    and prints what it returns, if anything. When the database cannot be reached it says so,
    rolls back, waits and tries again (the lock is re-taken first: the restart dropped it, and
    another host may have it now); it never exits for that. ``rounds`` bounds it in tests.
    """
    from marketplace.database import db

    engine = engine if engine is not None else db.engine
    lock_dir = lock_dir or current_app.config.get("JOB_LOCK_DIR") or Path(
        current_app.instance_path) / "locks"
    lock = JobLock(lock_name or name, engine, lock_dir)
    done = 0
    outage_since: float | None = None
    said_standby = False
    while rounds is None or done < rounds:
        done += 1
        try:
            if not lock.still_held():
                if not lock.acquire():
                    if not said_standby:
                        click.echo(f"{name}: another run holds the lock; standing by.")
                        said_standby = True
                    time.sleep(interval)
                    continue
                said_standby = False
            summary = step()
            if outage_since is not None:
                click.echo(f"{name}: the database is back after "
                           f"{time.monotonic() - outage_since:.1f}s.")
                outage_since = None
            if summary:
                click.echo(f"{name}: {summary}")
            time.sleep(interval)
        except Exception as exc:
            if not database_down(exc):
                raise
            _safe_rollback()
            if outage_since is None:
                outage_since = time.monotonic()
                click.echo(f"{name}: the database cannot be reached ({type(exc).__name__}); "
                           "retrying.", err=True)
                log.warning("job %s: database unreachable: %s", name, exc)
            lock.release()
            time.sleep(on_error_wait)
    lock.release()


def _safe_rollback() -> None:
    from marketplace.database import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection may refuse even this
        db.session.remove()


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
        interactive: bool | None = None, lock_name: str | None = None) -> str | None:
    """Run ``body`` under the job's lock and print its summary line.

    Returns the summary, or None when another run holds the lock (nothing done)."""
    engine = engine if engine is not None else db.engine
    lock_dir = lock_dir or current_app.config.get("JOB_LOCK_DIR") or Path(
        current_app.instance_path) / "locks"
    job = Job(name, _interactive() if interactive is None else interactive)
    started = time.perf_counter()
    with job_lock(lock_name or name, engine, lock_dir) as held:
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
