"""`backup` then `restore` into an empty database gives the same rows in every table and a
working login (SQLite: online backup API; PostgreSQL: pg_dump / pg_restore)."""

import sqlite3
from contextlib import contextmanager
from datetime import timedelta

import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import create_engine, func, inspect, select, table, text

from catalog import page_cache
from marketplace import backup
from marketplace.database import db, make_engine, utcnow


def row_counts(engine) -> dict[str, int]:
    counts = {}
    with engine.connect() as connection:
        for name in sorted(inspect(connection).get_table_names()):
            counts[name] = connection.scalar(select(func.count()).select_from(table(name)))
    return counts


@contextmanager
def serving_database(app, url, monkeypatch):
    """Point the app (config and the shared engine) at another database for a while."""
    original_engine, original_url = db.engine, app.config["DATABASE_URL"]
    db.session.remove()
    db.engine = make_engine(url)
    db.session.configure(bind=db.engine)
    monkeypatch.setitem(app.config, "DATABASE_URL", url)
    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()
        db.engine = original_engine
        db.session.configure(bind=original_engine)
        app.config["DATABASE_URL"] = original_url


@contextmanager
def empty_database(database_url, tmp_path):
    """An empty database of the same kind as the test database: a new SQLite file, or on
    PostgreSQL the test database itself with its schema dropped (the test role may not
    create databases); the restore brings every table back, so later tests find the same
    schema."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'restored' / 'supermarket.sqlite'}"
        return
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield database_url


def some_of_everything(session) -> str:
    """Organisations, users, listings, an order with its events and ledger, an audit row."""
    p = osup.parties(session)
    osup.order(session, p, status="paid", accept_by=utcnow() + timedelta(days=2))
    factories.product(session, p.provider_org, title="Patent search 专利检索")
    session.commit()
    return p.buyer.email


def test_backup_then_restore_into_an_empty_database(app, session, database_url, tmp_path,
                                                    monkeypatch):
    email = some_of_everything(session)
    before = row_counts(db.engine)
    version_at_backup = page_cache.read_version(session)
    session.rollback()  # end the read: pg_restore --clean must be able to drop the table
    assert before["user_account"] >= 4 and before["purchase_order"] >= 1 and before["product"] >= 2
    runner = app.test_cli_runner()

    made = runner.invoke(args=["backup", "--output", str(tmp_path / "backups")])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("backup: wrote ")
    [file] = list((tmp_path / "backups").iterdir())
    assert file.name.startswith("supermarket-") and file.stat().st_mode & 0o077 == 0

    with empty_database(database_url, tmp_path) as new_url, \
            serving_database(app, new_url, monkeypatch):
        restored = runner.invoke(args=["restore", str(file)])
        assert restored.exit_code == 0, restored.output
        assert "Now run `flask --app marketplace reindex`" in restored.output
        assert row_counts(db.engine) == before
        # Pages cached by running workers under the backed-up version are never served again.
        with app.app_context():
            assert page_cache.read_version(db.session) not in (None, version_at_backup)
        client = app.test_client()
        response = post_form(client, "/login", {"email": email, "password": factories.PASSWORD})
        assert response.status_code == 302
        assert client.get("/account").status_code == 200

        # A second restore over a database that now has data is refused without --force.
        again = runner.invoke(args=["restore", str(file)])
        assert again.exit_code != 0 and "is not empty" in again.output
        with app.app_context():
            db.session.add(factories.user(db.session, role="staff"))
            db.session.commit()
        forced = runner.invoke(args=["restore", "--force", str(file)])
        assert forced.exit_code == 0, forced.output
        assert row_counts(db.engine) == before


def test_sqlite_backup_is_consistent_while_the_site_writes(tmp_path):
    """Another connection writes between backup steps, as a busy site would: the copy is a
    consistent database with every committed row (SQLite restarts the copy when needed)."""
    live = tmp_path / "live.sqlite"
    with sqlite3.connect(live) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE listing (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany("INSERT INTO listing (body) VALUES (?)",
                               [("x" * 2000,) for _ in range(2000)])  # about 4 MB: many steps
    writes = {"n": 0}

    def write_during_copy(copied, total):
        if writes["n"] < 3:
            with sqlite3.connect(live) as writer:
                writer.execute("INSERT INTO listing (body) VALUES ('written meanwhile')")
            writes["n"] += 1

    result = backup.backup_sqlite(f"sqlite:///{live}", tmp_path / "out", utcnow(),
                                  write_during_copy)
    assert writes["n"] == 3
    with sqlite3.connect(result.path) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM listing").fetchone()[0] == 2003


def test_restore_refuses_what_is_not_a_backup(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_bytes(b"this is not a database")
    with pytest.raises(backup.BackupError, match="not an SQLite backup"):
        backup.restore_sqlite(bogus, f"sqlite:///{tmp_path / 'new.sqlite'}")
    other_app = tmp_path / "other.sqlite"
    with sqlite3.connect(other_app) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER)")
    with pytest.raises(backup.BackupError, match="not a backup of this application"):
        backup.restore_sqlite(other_app, f"sqlite:///{tmp_path / 'new.sqlite'}")
    with pytest.raises(backup.BackupError, match="no backup file"):
        backup.restore_sqlite(tmp_path / "missing.sqlite", f"sqlite:///{tmp_path / 'new.sqlite'}")


def test_pg_dump_command_keeps_the_password_off_the_command_line(tmp_path):
    command, env = backup.pg_dump_command(
        "postgresql+psycopg://shop:s3cret@db.internal:5433/shop", tmp_path / "x.dump")
    assert "s3cret" not in " ".join(command) and env["PGPASSWORD"] == "s3cret"
    assert command[1:4] == ["--format=custom", "--no-owner", "--no-privileges"]
    assert command[-2:] == ["--dbname", "shop"]
    assert command[command.index("--host"):command.index("--host") + 2] == ["--host", "db.internal"]
