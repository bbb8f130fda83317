"""Backups and restores of the database (the `backup` and `restore` commands).

- **SQLite**: SQLite's online backup API (``sqlite3.Connection.backup``) copies the live
  database page by page into a timestamped file, consistent even while the site is serving
  (writers simply wait for each step). A restore copies a backup into an empty database path
  the same way; a non-empty database is refused unless ``force`` is given.
- **PostgreSQL**: ``pg_dump --format=custom`` (compressed, restorable table by table with
  ``pg_restore``); the password travels in ``PGPASSWORD``, never on the command line. A
  restore runs ``pg_restore --no-owner --no-privileges`` into an empty database (or with
  ``--clean --if-exists`` when forced).

Uploaded files (``UPLOAD_DIR``) are not in the database: back them up with the same schedule
(e.g. ``rsync -a instance/uploads/ backup-host:uploads/``). The search index is derived data
and is rebuilt with ``flask --app marketplace reindex``.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


@dataclass
class BackupResult:
    path: Path
    size: int
    tables: int


def _sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        raise BackupError(f"Not an SQLite database file: {url.render_as_string(hide_password=True)}")
    return Path(url.database)


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).drivername.startswith("sqlite")


def backup_name(now: datetime, suffix: str) -> str:
    return f"supermarket-{now:%Y%m%d-%H%M%S}.{suffix}"


def _user_tables(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]


def backup_sqlite(database_url: str, target_dir, now: datetime, progress=None) -> BackupResult:
    """Copy the live database into ``target_dir/supermarket-<UTC time>.sqlite``.

    ``progress(copied_pages, total_pages)`` is called as the copy advances."""
    source_path = _sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"There is no database at {source_path}.")
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / backup_name(now, "sqlite")
    if target.exists():
        raise BackupError(f"{target} already exists; wait a second and run the backup again.")
    partial = target.with_suffix(".sqlite.partial")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(partial)
        try:
            def report(status, remaining, total):
                if progress is not None:
                    progress(total - remaining, total)

            source.backup(destination, pages=256, progress=report)
            tables = len(_user_tables(destination))
            check = destination.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            destination.close()
    finally:
        source.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"The copy failed its integrity check ({check}); nothing was kept.")
    partial.rename(target)  # a finished backup appears at once, never half written
    os.chmod(target, 0o600)
    return BackupResult(target, target.stat().st_size, tables)


def restore_sqlite(backup_file, database_url: str, *, force: bool = False) -> BackupResult:
    """Copy ``backup_file`` into the database at ``database_url``.

    Refuses a database that already has tables unless ``force`` (which replaces it)."""
    backup_path = Path(backup_file)
    if not backup_path.is_file():
        raise BackupError(f"There is no backup file at {backup_path}.")
    target_path = _sqlite_path(database_url)
    try:
        source = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
        tables = _user_tables(source)
        check = source.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup_path} is not an SQLite backup ({exc}).") from exc
    try:
        if "alembic_version" not in tables or check != "ok":
            raise BackupError(f"{backup_path} is not a backup of this application "
                              f"(integrity: {check}; tables: {len(tables)}).")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        destination = sqlite3.connect(target_path)
        try:
            existing = _user_tables(destination)
            if existing and not force:
                raise BackupError(
                    f"The database at {target_path} is not empty ({len(existing)} tables). "
                    "Restore into a new path, or pass --force to replace it.")
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    return BackupResult(target_path, target_path.stat().st_size, len(tables))


# ------------------------------------------------------------------ PostgreSQL

def pg_tool(name: str) -> str:
    """The newest server-side client tool (pg_dump must not be older than the server)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda path: int(Path(path).parent.parent.name)
                        if Path(path).parent.parent.name.isdigit() else 0)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return found


def _pg_connection(database_url: str) -> tuple[list[str], dict[str, str]]:
    """libpq options for the URL, and the environment carrying the password."""
    url = make_url(database_url)
    options = []
    if url.host:
        options += ["--host", url.host]
    if url.port:
        options += ["--port", str(url.port)]
    if url.username:
        options += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    host = url.query.get("host")  # a socket directory given as ?host=/path
    if host and not url.host:
        options += ["--host", host if isinstance(host, str) else host[0]]
    return options, env


def pg_dump_command(database_url: str, target: Path) -> tuple[list[str], dict[str, str]]:
    options, env = _pg_connection(database_url)
    database = make_url(database_url).database
    return ([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
             "--file", str(target), *options, "--dbname", database], env)


def pg_restore_command(database_url: str, backup_file, *, force: bool = False
                       ) -> tuple[list[str], dict[str, str]]:
    options, env = _pg_connection(database_url)
    database = make_url(database_url).database
    extra = ["--clean", "--if-exists"] if force else []
    return ([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             *extra, *options, "--dbname", database, str(backup_file)], env)


def backup_postgres(database_url: str, target_dir, now: datetime) -> BackupResult:
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / backup_name(now, "dump")
    command, env = pg_dump_command(database_url, target)
    done = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603 - argv list, our own settings
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    os.chmod(target, 0o600)
    return BackupResult(target, target.stat().st_size, 0)


def restore_postgres(backup_file, database_url: str, engine, *, force: bool = False
                     ) -> BackupResult:
    from sqlalchemy import inspect

    backup_path = Path(backup_file)
    if not backup_path.is_file():
        raise BackupError(f"There is no backup file at {backup_path}.")
    existing = inspect(engine).get_table_names()
    if existing and not force:
        raise BackupError(f"The database is not empty ({len(existing)} tables). Restore into a "
                          "new database (createdb), or pass --force to replace its contents.")
    command, env = pg_restore_command(database_url, backup_path, force=force)
    done = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603 - argv list, our own settings
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    return BackupResult(backup_path, backup_path.stat().st_size,
                        len(inspect(engine).get_table_names()))
