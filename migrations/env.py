"""Alembic environment: the URL comes from the caller (marketplace.migrate) or DATABASE_URL."""

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

import catalog.models  # noqa: F401 - register tables on Base.metadata
import catalog.search_models  # noqa: F401
import orders.models  # noqa: F401
import orders.paperwork_models  # noqa: F401
import providers.models  # noqa: F401
import demand.models  # noqa: F401
import marketplace.models  # noqa: F401
from marketplace.database import Base

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    from marketplace.config import load_config

    url = os.environ.get("DATABASE_URL") or load_config()["DATABASE_URL"]
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
