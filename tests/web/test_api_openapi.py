"""The OpenAPI document: every /api/v1 route is in it, its references resolve, errors match it."""

from __future__ import annotations

import re
from typing import Any

import pytest

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _openapi_path(rule: str) -> str:
    """Return a Flask rule in OpenAPI form: /x/<int:id> → /x/{id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _v1_routes(app) -> set[tuple[str, str]]:
    return {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - IGNORED_METHODS
    }


@pytest.fixture
def document(operator_client) -> dict[str, Any]:
    response = operator_client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_every_v1_route_is_in_the_document_and_nothing_else(app, document):
    routes = _v1_routes(app)
    assert ("/api/v1/reports/figures", "get") in routes  # the walk sees the real routes
    assert ("/api/v1/calls.xlsx", "get") in routes
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    missing = routes - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    assert documented <= routes, f"documented but not served: {sorted(documented - routes)}"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_document_is_openapi_3_1_with_resolvable_references(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    refs = _refs(document)
    assert "#/components/schemas/Figures" in refs and "#/components/responses/400" in refs
    for ref in refs:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for ops in document["paths"].values():
        for op in ops.values():
            assert "200" in op["responses"] and "401" in op["responses"]
            names = [p["name"] for p in op["parameters"]]
            assert len(names) == len(set(names))


def test_figure_schemas_list_every_field_the_api_returns(supervisor_client, document):
    body = supervisor_client.get("/api/v1/reports/figures").get_json()
    schemas = document["components"]["schemas"]
    assert set(body) == set(schemas["Figures"]["properties"])
    assert set(body["totals"]) == set(schemas["CallFigures"]["properties"])
    assert set(body["drops"]) == set(schemas["DropFigures"]["properties"])
    assert set(body["gaps"]) == set(schemas["GapFigures"]["properties"])
    assert schemas["CallFigures"]["properties"]["service_level"]["type"] == ["number", "null"]


def test_documented_filters_are_the_ones_the_list_accepts(supervisor_client, document):
    op = document["paths"]["/api/v1/reports/calls"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"from", "to", "disposition", "agent", "phone", "tag", "limit", "after"} <= set(params)
    for disposition in params["disposition"]["schema"]["enum"]:
        response = supervisor_client.get(f"/api/v1/reports/calls?disposition={disposition}")
        assert response.status_code == 200, disposition
    for tag in params["tag"]["schema"]["enum"]:
        assert supervisor_client.get(f"/api/v1/reports/calls?tag={tag}").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/reports/figures?from=2026-13-01",
        "/api/v1/reports/calls?limit=0",
        "/api/v1/reports/calls?tag=nonsense",
        "/api/v1/calls.xlsx?disposition=nonsense",
        "/api/v1/nothing-here",
    ],
)
def test_errors_have_the_documented_json_shape(supervisor_client, document, url):
    response = supervisor_client.get(url)
    assert response.status_code in (400, 404) and response.is_json
    body = response.get_json()
    schema = document["components"]["schemas"]["Error"]
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert all(isinstance(value, str) and value for value in body.values())


def test_the_document_needs_a_login(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401 and response.is_json
    assert response.get_json()["error"] == "Unauthorized"
