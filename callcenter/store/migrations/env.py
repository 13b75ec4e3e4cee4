"""Alembic environment: run the migrations on the connection `store.db.upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from callcenter.store.db import create_db_engine
from callcenter.store.schema import metadata


def run_on(connection: Connection) -> None:
    """Run the pending migrations on an open connection."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    """Print the migrations as SQL for the URL's dialect."""
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Run the migrations the way Alembic was asked to."""
    config = context.config
    connection = config.attributes.get("connection")
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        if not url:
            raise RuntimeError("offline migrations need a URL (config.attributes['url'])")
        run_offline(url)
    elif connection is not None:
        run_on(connection)
    elif url:
        engine = create_db_engine(url)
        try:
            with engine.begin() as new_connection:
                run_on(new_connection)
        finally:
            engine.dispose()
    else:
        raise RuntimeError("no connection or URL: use callcenter.store.db.upgrade(url)")


# Alembic sets context.config only while it executes this file; pytest's --doctest-modules also
# imports every module under callcenter/, and must not start a migration.
if hasattr(context, "config"):
    run()
