"""Roles, walked over ``app.url_map``: an operator gets 403 on every supervisor page and route.

The walk takes every rule under /supervisor and /admin and every /api/v1 rule except the few
any logged-in user may call, fills URL parameters with sample values and tries each method,
so a route added later is covered without touching this file. Anonymous visitors are sent
to the login page (pages) or get a JSON 401 (API).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from werkzeug.routing import IntegerConverter, Rule

#: /api/v1 routes any logged-in user may call (everything else there is supervisor-only).
OPEN_TO_OPERATORS = {"/api/v1/openapi.json"}
SUPERVISOR_PREFIXES = ("/supervisor", "/admin", "/api/v1/")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _sample(rule: Rule) -> dict[str, object]:
    return {
        name: 1 if isinstance(converter, IntegerConverter) else "1795369641.1"
        for name, converter in rule._converters.items()
    }


def supervisor_routes(app) -> Iterator[tuple[str, str, str]]:
    """Yield (rule, method, url) of every supervisor-only route, URL parameters filled in."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(SUPERVISOR_PREFIXES) or rule.rule in OPEN_TO_OPERATORS:
            continue
        built = rule.build(_sample(rule), append_unknown=False)
        assert built is not None, rule.rule
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, built[1]


def _csrf_headers(client) -> dict[str, str]:
    """Return a CSRF header valid for the client's session (set one if it has none)."""
    with client.session_transaction() as session:
        token = session.setdefault("csrf", "walk-token")
    return {"X-CSRF-Token": token}


def _request(client, method: str, url: str):
    headers = _csrf_headers(client) if method in UNSAFE else {}
    return client.open(url, method=method, headers=headers)


def test_the_walk_sees_the_routes_it_must(app):
    rules = {rule for rule, _, _ in supervisor_routes(app)}
    assert {"/supervisor/dashboard", "/supervisor/calls", "/api/v1/reports/figures"} <= rules
    assert {"/api/v1/reports/figures.xlsx", "/api/v1/calls.xlsx"} <= rules
    assert not rules & OPEN_TO_OPERATORS


def test_operator_gets_403_on_every_supervisor_route(app, operator_client):
    walked = 0
    for rule, method, url in supervisor_routes(app):
        response = _request(operator_client, method, url)
        assert response.status_code == 403, (rule, method, response.status_code)
        if url.startswith("/api/"):
            assert response.is_json and response.get_json()["error"] == "Forbidden", rule
        walked += 1
    assert walked >= 10


def test_supervisor_passes_the_role_check_on_every_page(app, supervisor_client):
    """The 403s above come from the role, not from the route: a supervisor never gets one.

    GET only: a form posted with sample values would act on the test's data.
    """
    for rule, method, url in supervisor_routes(app):
        if method != "GET":
            continue
        response = _request(supervisor_client, method, url)
        assert response.status_code not in (401, 403), (rule, method, response.status_code)


def test_anonymous_visitors_go_to_login_or_get_json_401(app, client):
    for rule, method, url in supervisor_routes(app):
        response = _request(client, method, url)
        if url.startswith("/api/"):
            assert response.status_code == 401 and response.is_json, (rule, method)
            assert response.get_json()["error"] == "Unauthorized"
        else:
            assert response.status_code == 302, (rule, method, response.status_code)
            assert "/auth/login" in response.headers["Location"], rule


@pytest.mark.parametrize("url", sorted(OPEN_TO_OPERATORS))
def test_the_open_api_routes_answer_operators(operator_client, url):
    assert operator_client.get(url).status_code == 200
