"""What the operator panel needs from the process it runs in: the AMI command port and the
operators' last reported states.

``callcenter serve``/``demo`` call ``install_live_panel`` on the app: commands then go through
the listener's own AMI client (bound once the listener is built) and the listener's notifier
also feeds ``OperatorStates``, so a freshly loaded panel shows the state Asterisk last
reported. ``callcenter web`` alone gets ``HueyCommands`` (a ``callcenter worker`` job) on first
use, and learns states only from the ``operator_state`` events that arrive while it is open.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask

from callcenter.ami.commands import AmiCommands, HueyCommands, LiveClientCommands
from callcenter.calls.effects import OperatorStateChanged
from callcenter.notify import NullNotifier

_COMMANDS_KEY = "callcenter.ami_commands"
_STATES_KEY = "callcenter.operator_states"
_LOCK = threading.Lock()

#: The operator's state as the panel words it (tracker status → label).
STATE_LABELS = {
    "free": "Свободен",
    "ringing": "Звонок",
    "on_call": "Разговор",
    "wrap_up": "Поствызывная обработка",
    "paused": "Пауза",
    "unavailable": "Недоступен",
}


def state_payload(effect: OperatorStateChanged) -> dict[str, Any]:
    """Return the ``operator_state`` payload of an effect (the notifier's shape)."""
    return {
        "agent": effect.agent,
        "agent_name": effect.agent_name,
        "status": str(effect.status),
        "ts": effect.ts,
        "until": effect.until,
    }


class OperatorStates(NullNotifier):
    """A notifier that keeps each operator's last reported state (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}

    def operator_state(self, effect: OperatorStateChanged) -> None:
        payload = state_payload(effect)
        with self._lock:
            self._states[effect.agent] = payload

    def get(self, agent: str) -> dict[str, Any] | None:
        """Return the last ``operator_state`` payload of ``agent``, or None if none came."""
        with self._lock:
            state = self._states.get(agent)
            return dict(state) if state is not None else None


@dataclass(frozen=True, slots=True)
class LivePanel:
    """What ``install_live_panel`` installed: bind ``commands``, feed ``states``."""

    commands: LiveClientCommands
    states: OperatorStates


def install_live_panel(app: Flask, *, commands: AmiCommands | None = None) -> LivePanel:
    """Install the in-process command port and state board on ``app`` (serve/demo/tests).

    ``commands`` replaces the live client port (tests pass a fake).
    """
    from web import settings

    with app.app_context():
        interface = settings().queue_member_interface
    live = LivePanel(
        commands=LiveClientCommands(interface_template=interface),
        states=OperatorStates(),
    )
    app.extensions[_COMMANDS_KEY] = commands or live.commands
    app.extensions[_STATES_KEY] = live.states
    return live


def commands_for(app: Flask) -> AmiCommands:
    """Return the app's command port; without one installed, the Huey one (``callcenter web``)."""
    port: AmiCommands | None = app.extensions.get(_COMMANDS_KEY)
    if port is not None:
        return port
    from callcenter.jobs import build_huey
    from web import settings

    with _LOCK:
        port = app.extensions.get(_COMMANDS_KEY)
        if port is None:
            cfg = settings()
            port = HueyCommands(
                huey=build_huey(cfg),
                settings=cfg,
                interface_template=cfg.queue_member_interface,
            )
            app.extensions[_COMMANDS_KEY] = port
    return port


def states_for(app: Flask) -> OperatorStates | None:
    """Return the app's state board, when a listener in this process feeds one."""
    states: OperatorStates | None = app.extensions.get(_STATES_KEY)
    return states
