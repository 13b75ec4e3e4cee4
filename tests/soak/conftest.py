"""Fixtures of the soak tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from callcenter.store.db import create_db_engine, upgrade


@pytest.fixture
def pg_schema_url(postgres_base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema, migrated; dropped afterwards."""
    schema = f"cc_{secrets.token_hex(6)}"
    admin = create_db_engine(postgres_base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    try:
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
