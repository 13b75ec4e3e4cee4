"""The web panel: operator screen pops, supervisor pages, a JSON API (``create_app``)."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, redirect, url_for
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response

from callcenter.config import Settings
from callcenter.health import Readiness
from callcenter.metrics import Metrics
from callcenter.store.db import create_db_engine, create_session_factory
from web.extensions import init_socketio
from web.health import init_health
from web.realtime.notifier import PopRegistry, SocketIONotifier, emitter_for
from web.security import check_csrf, csrf_token, current_user, load_user

_DB_KEY = "callcenter.session_factory"
_NOTIFIER_KEY = "callcenter.notifier"
_SETTINGS_KEY = "callcenter.settings"


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    secure_cookies: bool = False,
    testing: bool = False,
    readiness: Readiness | None = None,
    metrics: Metrics | None = None,
) -> Flask:
    """Build the web app for ``settings``.

    ``session_factory`` defaults to one on ``settings.database_url`` (already migrated);
    ``secure_cookies`` marks the session cookie Secure (set it when served over HTTPS).
    ``readiness`` carries the AMI link state of a listener in this process (for /readyz);
    ``metrics`` is the registry /metrics renders (a fresh one by default).
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        TESTING=testing,
        JSON_SORT_KEYS=False,
    )
    if session_factory is None:
        session_factory = create_session_factory(create_db_engine(settings.database_url))
    app.extensions[_DB_KEY] = session_factory
    app.extensions[_SETTINGS_KEY] = settings

    socketio = init_socketio(app, settings)
    notifier = SocketIONotifier(
        emit=emitter_for(socketio), session_factory=session_factory, registry=PopRegistry()
    )
    app.extensions[_NOTIFIER_KEY] = notifier

    _register_blueprints(app)
    _register_namespaces(app, notifier)
    init_health(
        app,
        readiness=readiness or Readiness(),
        metrics=metrics or Metrics(),
        session_factory=session_factory,
    )

    @app.before_request
    def _load_user_and_check_csrf() -> None:
        g.user = load_user(session_factory)
        check_csrf()

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        return {"csrf_token": csrf_token, "current_user": current_user()}

    @app.get("/")
    def index() -> Response:
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login"))
        if user.role == "supervisor":
            return redirect(url_for("supervisor.calls_today"))
        return redirect(url_for("operator.panel"))

    return app


def notifier_for(app: Flask) -> SocketIONotifier:
    """Return the app's notifier: hand it to ``build_listener`` to pop screens in this process."""
    notifier: SocketIONotifier = app.extensions[_NOTIFIER_KEY]
    return notifier


def db() -> sessionmaker[Session]:
    """Return the session factory of the current app."""
    factory: sessionmaker[Session] = current_app.extensions[_DB_KEY]
    return factory


def settings() -> Settings:
    """Return the settings of the current app."""
    value: Settings = current_app.extensions[_SETTINGS_KEY]
    return value


def _register_blueprints(app: Flask) -> None:
    from web.admin import bp as admin_bp
    from web.api import bp as api_bp
    from web.api.errors import register_error_handlers
    from web.api.reports import bp as reports_api_bp
    from web.auth import bp as auth_bp
    from web.operator import bp as operator_bp
    from web.supervisor import bp as supervisor_bp

    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(operator_bp, url_prefix="/operator")
    app.register_blueprint(supervisor_bp, url_prefix="/supervisor")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(reports_api_bp, url_prefix="/api/v1/reports")
    register_error_handlers(app)


def _register_namespaces(app: Flask, notifier: SocketIONotifier) -> None:
    from web.extensions import socketio
    from web.realtime.namespaces import OperatorNamespace, SupervisorNamespace

    socketio.on_namespace(OperatorNamespace("/operator", notifier=notifier))
    socketio.on_namespace(SupervisorNamespace("/supervisor"))
