"""Errors → HTTP in one place: domain exceptions and HTTP errors, as JSON or as a page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from callcenter.errors import (
    CallcenterError,
    ConfigError,
    ConsentMissing,
    TaskAlreadyClaimed,
    UnknownCaller,
)
from callcenter.reports.figures import BadPeriod
from callcenter.store.reports import BadCursor
from callcenter.store.users import BadOutcome, UserError

log = logging.getLogger(__name__)

#: Domain error → HTTP status. Unlisted CallcenterErrors are the client's fault (400).
STATUS_BY_ERROR: dict[type[CallcenterError], int] = {
    UnknownCaller: 404,
    ConsentMissing: 409,
    TaskAlreadyClaimed: 409,
    BadOutcome: 400,
    BadPeriod: 400,
    BadCursor: 400,
    UserError: 400,
    ConfigError: 500,
}

PAGE_MESSAGES = {
    400: "Запрос не принят (устаревшая форма? обновите страницу).",
    401: "Нужно войти.",
    403: "Эта страница вам недоступна.",
    404: "Страница не найдена.",
}


def wants_json_response() -> bool:
    """Return True for API calls and for clients that prefer JSON (the panel's fetch)."""
    if request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] >= accept["text/html"] and accept["application/json"] > 0


def error_response(status: int, message: str | None = None) -> tuple[Response | str, int]:
    """Return the error as JSON (API) or as the error page."""
    if wants_json_response():
        body = {"error": HTTP_STATUS_CODES.get(status, "Unknown error")}
        if message:
            body["message"] = message
        return jsonify(body), status
    page = render_template(
        "errors/error.html", status=status, message=PAGE_MESSAGES.get(status, message or "")
    )
    return page, status


def status_for(exc: CallcenterError) -> int:
    """Return the HTTP status of a domain error (closest listed base class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def register_error_handlers(app: Flask) -> None:
    """Install the one handler for domain errors and the one for HTTP errors."""

    @app.errorhandler(CallcenterError)
    def handle_domain_error(exc: CallcenterError) -> tuple[Response | str, int]:
        status = status_for(exc)
        if status >= 500:
            log.error("domain error: %s", exc)
        return error_response(status, str(exc))

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> tuple[Response | str, int]:
        return error_response(exc.code or 500, exc.description)
