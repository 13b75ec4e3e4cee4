"""The WSGI entry point for a production server: ``gunicorn web.wsgi:app``.

This is the one module that builds an app at import time; that is its purpose (a WSGI server
imports ``module:app``). Nothing else imports it. Settings come from the environment, and the
same refusals as ``callcenter web`` apply (no default SECRET_KEY outside the demo).

Serve it with gunicorn's threaded worker, one process per container, many threads::

    gunicorn --worker-class gthread --workers 1 --threads 100 --bind 0.0.0.0:8000 web.wsgi:app

Flask-SocketIO runs in threading mode with simple-websocket, which works under ``gthread``:
each WebSocket holds one thread, hence the many threads. One worker per container, because
Socket.IO keeps a client's session in the process that accepted it; scale with more containers
behind a proxy with sticky sessions (``docker/nginx.conf``: ``ip_hash``), and let listeners in
other processes reach the browsers through ``REDIS_URL``.
"""

from __future__ import annotations

from flask import Flask

from callcenter.config import Settings
from callcenter.logging_setup import configure_logging
from web import create_app


def build_app() -> Flask:
    """Build the app from the environment, with the process's logging set up.

    :raises ConfigError: when a variable does not parse or a secret has its default.
    """
    settings = Settings.from_env()
    settings.require_production_secrets(need_web=True, need_ami=False)
    configure_logging(settings)
    return create_app(settings, secure_cookies=settings.web_https)


app = build_app()
