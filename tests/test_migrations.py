"""The Alembic history builds exactly the schema the models describe, and runs both ways.

A model change without a migration fails here, as does a downgrade that leaves something
behind (the next upgrade would then trip over it).
"""

import importlib
import pkgutil
import re
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from marketplace.config import ROOT
from marketplace.database import Base
from marketplace.migrate import alembic_config, upgrade

PACKAGES = ("marketplace", "catalog", "orders", "providers")


def model_modules() -> list[str]:
    """Every module that may declare tables: ``<package>.models`` and ``*models`` submodules."""
    names = []
    for package in PACKAGES:
        path = ROOT / package
        for info in pkgutil.iter_modules([str(path)]):
            if info.name.endswith("models"):
                names.append(f"{package}.{info.name}")
    return sorted(names)


@pytest.fixture(scope="module")
def full_metadata():
    for name in model_modules():
        importlib.import_module(name)
    return Base.metadata


def schema_differences(url: str, metadata) -> list:
    """What `alembic revision --autogenerate` would put into a new migration."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrated_test_database_matches_the_models(database_url, full_metadata):
    differences = schema_differences(database_url, full_metadata)
    assert differences == [], (
        "the models and the migrations disagree; add a migration "
        "(see docs/development.md, 'Adding a migration'):\n" + "\n".join(map(repr, differences))
    )


def test_every_models_module_is_known_to_alembic(full_metadata):
    env = (ROOT / "migrations" / "env.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^import ([\w.]+)", env, flags=re.MULTILINE))
    missing = [name for name in model_modules() if name not in imported]
    assert missing == [], f"migrations/env.py must import {missing} so autogenerate sees them"


def test_history_has_a_single_head():
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, (
        f"several migration heads {heads}: point the newest migration's down_revision "
        "at the other head so the history stays one line"
    )


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of the same kind as the test database, thrown away afterwards.

    SQLite: a new file. PostgreSQL: a new schema in the test database, selected through
    the connection's search_path, so the shared test schema is never touched.
    """
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'scratch.sqlite'}"
        return
    schema = f"migration_check_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_downgrade_to_base_and_upgrade_again(scratch_url, full_metadata):
    config = alembic_config(scratch_url)
    model_tables = set(full_metadata.tables)

    upgrade(scratch_url)
    assert model_tables <= table_names(scratch_url)

    command.downgrade(config, "base")
    assert table_names(scratch_url) <= {"alembic_version"}, "downgrade to base left tables behind"

    upgrade(scratch_url)
    assert schema_differences(scratch_url, full_metadata) == []


def test_each_migration_can_be_undone_and_redone(scratch_url):
    """Step through the history: every revision's downgrade reverses its own upgrade."""
    config = alembic_config(scratch_url)
    script = ScriptDirectory.from_config(config)
    revisions = list(reversed(list(script.walk_revisions("base", "heads"))))
    assert revisions, "no migrations found"
    for revision in revisions:
        command.upgrade(config, revision.revision)
        before = table_names(scratch_url)
        command.downgrade(config, "-1")
        command.upgrade(config, revision.revision)
        assert table_names(scratch_url) == before, f"redoing {revision.revision} changed the tables"


def test_model_modules_are_found():
    # Guards the discovery above: if it found nothing, the checks would pass vacuously.
    found = model_modules()
    assert {"marketplace.models", "catalog.models"} <= set(found)
    assert all(Path(ROOT, *name.split(".")).with_suffix(".py").exists() for name in found)
