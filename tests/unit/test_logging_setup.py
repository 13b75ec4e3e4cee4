"""Structured logs: JSON lines off a terminal, with the call's linkedid and the task id."""

from __future__ import annotations

import io
import json
import logging

import pytest

from callcenter.config import Settings
from callcenter.logging_setup import configure_logging, wants_json


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_linkedid_task_id_and_other_context(restore_root):
    out = io.StringIO()
    configure_logging(Settings(log_json=True), stream=out)
    logging.getLogger("callcenter.dispatch").info(
        "call %s ended",
        "x",
        extra={"linkedid": "1795369641.7", "task_id": 12, "disposition": "busy"},
    )
    (line,) = out.getvalue().splitlines()
    data = json.loads(line)
    assert list(data) == ["ts", "level", "logger", "message", "linkedid", "task_id", "disposition"]
    assert data["level"] == "INFO"
    assert data["logger"] == "callcenter.dispatch"
    assert data["message"] == "call x ended"
    assert data["linkedid"] == "1795369641.7"
    assert data["task_id"] == 12
    assert data["ts"].endswith("+00:00")


def test_a_json_line_without_context_has_no_context_fields_and_keeps_the_traceback(restore_root):
    out = io.StringIO()
    configure_logging(Settings(log_json=True), stream=out)
    try:
        raise ValueError("bad frame")
    except ValueError:
        logging.getLogger("callcenter.ami").exception("listener failed")
    (line,) = out.getvalue().splitlines()  # the traceback stays inside the one JSON line
    data = json.loads(line)
    assert set(data) == {"ts", "level", "logger", "message", "exc"}
    assert "ValueError: bad frame" in data["exc"]


def test_auto_mode_is_json_off_a_terminal_and_text_on_one(restore_root):
    assert wants_json(Settings(), io.StringIO()) is True
    assert wants_json(Settings(), Terminal()) is False
    assert wants_json(Settings(log_json=True), Terminal()) is True
    assert wants_json(Settings(log_json=False), io.StringIO()) is False

    term = Terminal()
    configure_logging(Settings(), stream=term)
    logging.getLogger("callcenter").warning("link down", extra={"linkedid": "1.2"})
    line = term.getvalue().strip()
    assert not line.startswith("{")
    assert line.endswith("WARNING callcenter: link down [linkedid=1.2]")


def test_configure_logging_replaces_its_own_handler_and_sets_the_level(restore_root):
    first, second = io.StringIO(), io.StringIO()
    configure_logging(Settings(log_json=True), stream=first)
    configure_logging(Settings(log_json=True, log_level="WARNING"), stream=second)
    logging.getLogger("callcenter").info("hidden")
    logging.getLogger("callcenter").warning("shown")
    assert first.getvalue() == ""
    assert [json.loads(x)["message"] for x in second.getvalue().splitlines()] == ["shown"]
