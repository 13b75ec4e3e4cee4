"""Process logging: JSON lines for log collectors, plain lines for a person at a terminal.

``Settings.log_json`` decides; ``None`` means JSON when stderr is not a terminal (a container,
a systemd unit), plain text when it is. Context passed with ``extra=`` (the call's
``linkedid``, a callback ``task_id``, a ``disposition``…) becomes fields of the JSON object, so
one call's lines can be found across processes; plain lines show it in brackets.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from callcenter.config import Settings

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}

#: Context fields put first, in this order, when present.
CONTEXT_FIELDS = ("linkedid", "task_id")

_OURS = "_callcenter_handler"


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """Return the ``extra=`` fields of a record, the well-known ones first."""
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
    ordered = {k: extra.pop(k) for k in CONTEXT_FIELDS if k in extra}
    ordered.update(sorted(extra.items()))
    return ordered


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the context, then exc."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in context_of(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        # default=str: a context value that JSON cannot hold is logged as text, never lost.
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [linkedid=… task_id=…]`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        context = context_of(record)
        if context:
            line += " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        return line


def wants_json(settings: Settings, stream: TextIO) -> bool:
    """Return whether to log JSON: as configured, else when ``stream`` is not a terminal."""
    if settings.log_json is not None:
        return settings.log_json
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(
    settings: Settings, *, stream: TextIO | None = None, level: str | None = None
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as JSON lines or plain text.

    Replaces the plain stderr handler the command line installs before settings are known
    (and any handler an earlier call installed); other handlers (pytest's) stay. ``level``
    overrides ``settings.log_level`` (the demo's quieter console). Returns the new handler.
    """
    stream = sys.stderr if stream is None else stream
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False) or (
            type(old) is logging.StreamHandler and old.stream in (sys.stderr, sys.__stderr__)
        ):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if wants_json(settings, stream) else TextFormatter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    return handler
