"""The OpenAPI 3.1 document of ``/api/v1``: a hand-written registry of operations.

Each ``/api/v1`` route has one ``Operation`` here (a test walks ``app.url_map`` and fails on
a route missing from the document). The figures' schemas are generated from the dataclasses
of ``callcenter.reports.figures``, so a new figure shows up in the document by itself.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from callcenter.reports.figures import (
    MAX_PERIOD_DAYS,
    OUTCOME_TAGS,
    AgentFigures,
    CallFigures,
    DropFigures,
    GapFigures,
    ObjectionFigures,
    ReportOptions,
    TagFigures,
)
from web.api.params import DEFAULT_LIMIT, MAX_LIMIT
from web.api.xlsx import XLSX_MIMETYPE

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"

SUPERVISOR = "supervisor"
ANY_USER = "any"


@dataclass(frozen=True, slots=True)
class Operation:
    """One route and method of the API."""

    path: str  # OpenAPI form: /api/v1/reports/figures
    method: str  # lower case
    summary: str
    roles: str  # SUPERVISOR or ANY_USER
    parameters: tuple[str, ...] = ()  # names in PARAMETERS
    response: dict[str, Any] = field(default_factory=dict)  # 200 content
    errors: tuple[int, ...] = (400,)
    tags: tuple[str, ...] = ("reports",)


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_DEFAULTS = ReportOptions()
_DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
PARAMETERS: dict[str, dict[str, Any]] = {
    "from": _param(
        "from",
        "First day of the period (clinic time zone), YYYY-MM-DD; default: 6 days before `to`. "
        f"A malformed, reversed or future period, or one over {MAX_PERIOD_DAYS} days, is a 400.",
        _DATE,
    ),
    "to": _param("to", "Last day of the period (inclusive), YYYY-MM-DD; default: today.", _DATE),
    "short_abandon_s": _param(
        "short_abandon_s",
        "An abandon sooner than this many seconds after joining the queue is «short».",
        {"type": "number", "default": _DEFAULTS.short_abandon_s},
    ),
    "service_level_s": _param(
        "service_level_s",
        "Service level: answered within this many seconds of queue wait.",
        {"type": "number", "default": _DEFAULTS.service_level_s},
    ),
    "win_back_days": _param(
        "win_back_days",
        "A booking within this many days after the drop wins the caller back.",
        {"type": "integer", "default": _DEFAULTS.win_back_days},
    ),
    "disposition": _param(
        "disposition",
        "Only calls of this disposition (an unknown one is a 400).",
        {
            "type": "string",
            "enum": [
                "answered",
                "abandoned",
                "queue_timeout",
                "ivr_abandoned",
                "no_answer",
                "busy",
                "failed",
                "outbound_answered",
                "outbound_failed",
            ],
        },
    ),
    "agent": _param(
        "agent",
        "Only calls answered or last handled by this extension.",
        {"type": "string"},
    ),
    "phone": _param(
        "phone",
        "A whole number (any format) matches it exactly; digits alone match a fragment.",
        {"type": "string"},
    ),
    "tag": _param(
        "tag",
        "Only calls with this outcome tag (an unknown tag is a 400).",
        {"type": "string", "enum": list(OUTCOME_TAGS)},
    ),
    "limit": _param(
        "limit",
        "Page size.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    "after": _param(
        "after",
        "The `next` cursor of the previous page (keyset paging); a foreign cursor is a 400.",
        {"type": "string"},
    ),
}

PERIOD = ("from", "to")
THRESHOLDS = ("short_abandon_s", "service_level_s", "win_back_days")
FILTERS = (*PERIOD, "disposition", "agent", "phone", "tag")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_XLSX = {XLSX_MIMETYPE: {"schema": {"type": "string", "contentEncoding": "binary"}}}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "/api/v1/reports/figures",
        "get",
        "Every figure of the period: totals, by day, by hour, drops, administrators, tags,"
        " what happened after objections.",
        SUPERVISOR,
        (*PERIOD, *THRESHOLDS),
        _json(_ref("Figures")),
    ),
    Operation(
        "/api/v1/reports/figures.xlsx",
        "get",
        "The period's figures as an Excel workbook (by day, by hour, administrators, tags).",
        SUPERVISOR,
        (*PERIOD, *THRESHOLDS),
        _XLSX,
        tags=("exports",),
    ),
    Operation(
        "/api/v1/reports/agents",
        "get",
        "Per-administrator figures of the period.",
        SUPERVISOR,
        (*PERIOD, *THRESHOLDS),
        _json(
            {
                "type": "object",
                "required": ["period", "agents"],
                "properties": {
                    "period": _ref("Period"),
                    "agents": {"type": "array", "items": _ref("AgentFigures")},
                },
            }
        ),
    ),
    Operation(
        "/api/v1/reports/calls",
        "get",
        "One page of the filtered call list, newest first, and the next page's cursor.",
        SUPERVISOR,
        (*FILTERS, "limit", "after"),
        _json(
            {
                "type": "object",
                "required": ["calls", "next"],
                "properties": {
                    "calls": {"type": "array", "items": _ref("Call")},
                    "next": {"type": ["string", "null"]},
                },
            }
        ),
    ),
    Operation(
        "/api/v1/calls.xlsx",
        "get",
        "Every call matching the filters as an Excel workbook (streamed, any length).",
        SUPERVISOR,
        FILTERS,
        _XLSX,
        tags=("exports",),
    ),
    Operation(
        "/api/v1/openapi.json",
        "get",
        "This document.",
        ANY_USER,
        (),
        _json({"type": "object"}),
        errors=(),
        tags=("meta",),
    ),
)


def _schema_of(annotation: Any) -> dict[str, Any]:
    """Return the JSON schema of a dataclass field's type (int, float, str, optional)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = _schema_of(parts[0])
        return {**inner, "type": [inner["type"], "null"]}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    return {"type": "string"}


def dataclass_schema(cls: type) -> dict[str, Any]:
    """Return the JSON schema of a flat dataclass of numbers and strings."""
    assert is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    return {
        "type": "object",
        "required": [f.name for f in fields(cls)],
        "properties": {f.name: _schema_of(hints[f.name]) for f in fields(cls)},
    }


def _components() -> dict[str, Any]:
    call_figures = dataclass_schema(CallFigures)
    nullable_string = {"type": ["string", "null"]}
    nullable_number = {"type": ["number", "null"]}
    return {
        "securitySchemes": {
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "session",
                "description": "The panel's session cookie (log in at /auth/login).",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string", "description": "HTTP reason, e.g. Bad Request"},
                    "message": {"type": "string", "description": "What is wrong, for people"},
                },
            },
            "Period": {
                "type": "object",
                "required": ["from", "to", "timezone"],
                "properties": {
                    "from": _DATE,
                    "to": _DATE,
                    "timezone": {"type": "string"},
                },
            },
            "CallFigures": call_figures,
            "DayFigures": {
                "allOf": [
                    _ref("CallFigures"),
                    {"type": "object", "required": ["day"], "properties": {"day": _DATE}},
                ]
            },
            "HourFigures": {
                "allOf": [
                    _ref("CallFigures"),
                    {
                        "type": "object",
                        "required": ["hour"],
                        "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23}},
                    },
                ]
            },
            "DropFigures": dataclass_schema(DropFigures),
            "AgentFigures": dataclass_schema(AgentFigures),
            "GapFigures": dataclass_schema(GapFigures),
            "TagFigures": dataclass_schema(TagFigures),
            "ObjectionFigures": dataclass_schema(ObjectionFigures),
            "ReportOptions": dataclass_schema(ReportOptions),
            "Figures": {
                "type": "object",
                "required": [
                    "period",
                    "options",
                    "totals",
                    "by_day",
                    "by_hour",
                    "drops",
                    "agents",
                    "gaps",
                    "tags",
                    "tagged_calls",
                    "objections",
                    "objections_total",
                ],
                "properties": {
                    "period": _ref("Period"),
                    "options": _ref("ReportOptions"),
                    "totals": _ref("CallFigures"),
                    "by_day": {"type": "array", "items": _ref("DayFigures")},
                    "by_hour": {"type": "array", "items": _ref("HourFigures")},
                    "drops": _ref("DropFigures"),
                    "agents": {"type": "array", "items": _ref("AgentFigures")},
                    "gaps": _ref("GapFigures"),
                    "tags": {"type": "array", "items": _ref("TagFigures")},
                    "tagged_calls": {"type": "integer"},
                    "objections": {"type": "array", "items": _ref("ObjectionFigures")},
                    "objections_total": _ref("ObjectionFigures"),
                },
            },
            "Call": {
                "type": "object",
                "properties": {
                    "linkedid": {"type": "string"},
                    "caller": nullable_string,
                    "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                    "disposition": {"type": "string"},
                    "queue": nullable_string,
                    "agent": nullable_string,
                    "wait_s": {"type": "number"},
                    "talk_s": {"type": "number"},
                    "queue_wait_s": nullable_number,
                    "start_ts": {"type": "number", "description": "Unix time (AMI)"},
                    "end_ts": {"type": "number"},
                    "recording": nullable_string,
                    "callback_task": nullable_string,
                    "caller_name": nullable_string,
                    "did": nullable_string,
                    "agent_name": nullable_string,
                    "last_agent": nullable_string,
                    "transfers": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "responses": {
            str(status): {
                "description": description,
                "content": _json(_ref("Error")),
            }
            for status, description in (
                (400, "Bad input: the message says which parameter and why."),
                (401, "Not logged in."),
                (403, "Logged in without the role this route needs."),
                (404, "No such route or object."),
            )
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": op.response}}
    for status in (*op.errors, 401, *((403,) if op.roles == SUPERVISOR else ())):
        responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    return {
        "operationId": op.path.removeprefix("/api/v1/").replace("/", "_").replace(".", "_"),
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": [PARAMETERS[name] for name in op.parameters],
        "responses": responses,
        "x-roles": ["supervisor"] if op.roles == SUPERVISOR else ["operator", "supervisor"],
    }


def openapi_document() -> dict[str, Any]:
    """Return the whole OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "callcenter API",
            "version": API_VERSION,
            "description": (
                "Supervisor figures, the call list and exports of the clinic's call center. "
                'Every error is JSON: `{"error": reason, "message": details}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"session": []}],
        "paths": paths,
        "components": _components(),
    }
