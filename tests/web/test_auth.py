"""Login, roles, CSRF and cookie flags."""

from __future__ import annotations

import pytest

from tests.web.conftest import csrf_of, login


def test_login_page_renders_with_a_csrf_field(client):
    page = client.get("/auth/login")
    assert page.status_code == 200
    assert csrf_of(page.get_data(as_text=True))


def test_operator_logs_in_and_lands_on_the_panel(client):
    response = login(client, "anna")
    assert response.status_code == 302
    assert client.get("/").headers["Location"].endswith("/operator/")
    assert "доб. 101" in client.get("/operator/").get_data(as_text=True)


def test_supervisor_lands_on_todays_calls(client):
    login(client, "vera")
    assert client.get("/").headers["Location"].endswith("/supervisor/")


def test_wrong_password_is_refused(client):
    response = login(client, "anna", "nope")
    assert response.status_code == 401
    assert "Неверное имя пользователя или пароль" in response.get_data(as_text=True)
    assert client.get("/operator/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client):
    response = login(client, "anna")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_secure_cookie_flag_for_https(web_db_url, factory):
    from callcenter.config import Settings
    from web import create_app, notifier_for

    app = create_app(
        Settings(database_url=web_db_url, demo=True), session_factory=factory, secure_cookies=True
    )
    try:
        response = login(app.test_client(), "anna")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        notifier_for(app).close()


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_login_without_a_valid_csrf_token_is_refused(client, token):
    client.get("/auth/login")
    data = {"username": "anna", "password": "correct horse"}
    if token:
        data["csrf_token"] = token
    response = client.post("/auth/login", data=data)
    assert response.status_code == 400
    assert client.get("/operator/").status_code == 302  # still logged out


def test_token_of_another_session_is_refused(app):
    first, second = app.test_client(), app.test_client()
    token = csrf_of(first.get("/auth/login").get_data(as_text=True))
    second.get("/auth/login")
    response = second.post(
        "/auth/login", data={"username": "anna", "password": "correct horse", "csrf_token": token}
    )
    assert response.status_code == 400


def test_operator_gets_403_on_a_supervisor_page(operator_client):
    response = operator_client.get("/supervisor/")
    assert response.status_code == 403
    assert "недоступна" in response.get_data(as_text=True)


def test_supervisor_gets_403_on_the_operator_panel(supervisor_client):
    assert supervisor_client.get("/operator/").status_code == 403


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/supervisor/")
    assert response.status_code == 302
    assert "/auth/login?next=/supervisor/" in response.headers["Location"]


def test_login_follows_only_local_next(client):
    page = client.get("/auth/login")
    token = csrf_of(page.get_data(as_text=True))
    response = client.post(
        "/auth/login?next=//evil.example/",
        data={"username": "anna", "password": "correct horse", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_logout_needs_csrf_and_ends_the_session(operator_client):
    assert operator_client.post("/auth/logout").status_code == 400
    page = operator_client.get("/operator/").get_data(as_text=True)
    response = operator_client.post("/auth/logout", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert operator_client.get("/operator/").status_code == 302
