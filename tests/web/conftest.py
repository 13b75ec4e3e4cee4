"""Web fixtures: an app on a migrated SQLite file with one supervisor and two operators."""

from __future__ import annotations

import re

import pytest

from callcenter.config import Settings
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from web import create_app, notifier_for
from web.extensions import socketio

PASSWORD = "correct horse"


@pytest.fixture
def web_db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    return url


@pytest.fixture
def factory(web_db_url):
    engine = create_db_engine(web_db_url)
    factory = create_session_factory(engine)
    with factory.begin() as s:
        users.create_user(s, username="anna", password=PASSWORD, role="operator", extension="101")
        users.create_user(s, username="boris", password=PASSWORD, role="operator", extension="102")
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
    yield factory
    engine.dispose()


@pytest.fixture
def app(web_db_url, factory):
    app = create_app(
        Settings(database_url=web_db_url, demo=True), session_factory=factory, testing=True
    )
    yield app
    notifier_for(app).close()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/auth/login")
    token = csrf_of(page.get_data(as_text=True))
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
    )


@pytest.fixture
def operator_client(app):
    client = app.test_client()
    assert login(client, "anna").status_code == 302
    return client


@pytest.fixture
def supervisor_client(app):
    client = app.test_client()
    assert login(client, "vera").status_code == 302
    return client


def socket_for(app, flask_client, namespace: str):
    return socketio.test_client(app, namespace=namespace, flask_test_client=flask_client)
