"""The AMI command port: actions the web panel asks Asterisk to carry out (``QueuePause``).

Two adapters, chosen by how the web server runs:

* ``LiveClientCommands`` — ``callcenter serve`` / ``callcenter demo``: the web server runs in a
  thread of the listener's process, so the action goes through the listener's own logged-in
  ``AmiClient``, handed to its event loop with ``asyncio.run_coroutine_threadsafe``.
* ``HueyCommands`` — ``callcenter web`` alone: the action is a Huey job that ``callcenter
  worker`` runs over a short AMI connection of its own (``send_once``); the web thread waits
  for its result a few seconds. The job expires when no worker takes it in time, so a pause
  asked for long ago never lands later by surprise.

Neither adapter reports the operator's new state: Asterisk answers the action, then sends
``QueueMemberPause``, which the listener's tracker turns into the ``operator_state`` the
panel shows. A failure raises ``AmiCommandError`` with a message in Russian for the operator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from callcenter.ami.actions import new_action_id
from callcenter.ami.client import AmiClient, AmiError, AmiNotConnected
from callcenter.ami.events import AmiEvent
from callcenter.errors import CallcenterError

if TYPE_CHECKING:
    from huey import Huey

    from callcenter.config import Settings

log = logging.getLogger(__name__)

#: How a queue member is named in ``queues.conf`` (the lab's Local members; ``PJSIP/{extension}``
#: on a plain PJSIP set-up).
DEFAULT_MEMBER_INTERFACE = "Local/{extension}@agents/n"
#: How long the panel waits for Asterisk's answer (or for the worker's job) before giving up.
DEFAULT_COMMAND_TIMEOUT_S = 5.0
#: Pause reasons an operator can choose (stored by Asterisk as PausedReason), with labels.
PAUSE_REASONS: dict[str, str] = {
    "break": "Перерыв",
    "lunch": "Обед",
    "paperwork": "Работа с документами",
    "training": "Обучение",
}

_FORBIDDEN = "\r\n"


class AmiCommandError(CallcenterError):
    """An action the panel asked for was not carried out; ``str(exc)`` is for the operator."""


class AmiUnavailable(AmiCommandError):
    """No AMI link (Asterisk down, the listener not connected, no worker took the job)."""


class AmiRejected(AmiCommandError):
    """Asterisk answered ``Response: Error`` (an unknown queue member, say)."""


def _value(name: str, value: str, *, forbid: str = _FORBIDDEN) -> str:
    if not value:
        raise ValueError(f"{name} must not be empty")
    if any(c in value for c in forbid):
        raise ValueError(f"{name} must not contain any of {forbid!r}: {value!r}")
    return value


def member_interface(extension: str, *, template: str = DEFAULT_MEMBER_INTERFACE) -> str:
    """Return the queue member interface of an operator's extension.

    >>> member_interface("101")
    'Local/101@agents/n'
    >>> member_interface("102", template="PJSIP/{extension}")
    'PJSIP/102'
    >>> member_interface("10/1")
    Traceback (most recent call last):
    ...
    ValueError: extension must not contain any of '\\r\\n@/;,': '10/1'
    """
    return template.format(extension=_value("extension", extension, forbid="\r\n@/;,"))


def build_queue_pause(
    *,
    interface: str,
    paused: bool,
    action_id: str,
    queue: str | None = None,
    reason: str | None = None,
) -> dict[str, str]:
    """Build a ``QueuePause``: pause or resume a member in one queue, or in all without ``Queue``.

    >>> build_queue_pause(interface="Local/101@agents/n", paused=True, action_id="qp-1",
    ...                   reason="Обед")
    {'Action': 'QueuePause', 'ActionID': 'qp-1', 'Interface': 'Local/101@agents/n', \
'Paused': 'true', 'Reason': 'Обед'}
    >>> build_queue_pause(interface="PJSIP/101", paused=False, action_id="qp-2", queue="reception")
    {'Action': 'QueuePause', 'ActionID': 'qp-2', 'Interface': 'PJSIP/101', 'Paused': 'false', \
'Queue': 'reception'}

    :raises ValueError: for a value that would break the AMI frame (nothing is sent).
    """
    action = {
        "Action": "QueuePause",
        "ActionID": _value("action_id", action_id),
        "Interface": _value("interface", interface),
        "Paused": "true" if paused else "false",
    }
    if queue:
        action["Queue"] = _value("queue", queue)
    if reason:
        action["Reason"] = _value("reason", reason)
    return action


def check_reply(reply: AmiEvent | Mapping[str, str], *, action: str) -> None:
    """Raise ``AmiRejected`` unless Asterisk answered ``Response: Success``.

    :raises AmiRejected: with Asterisk's ``Message`` in the text.
    """
    headers = reply.headers if isinstance(reply, AmiEvent) else reply
    response = headers.get("Response", "")
    if response.lower() == "success":
        return
    message = headers.get("Message") or response or "нет ответа"
    raise AmiRejected(f"АТС отклонила команду {action}: {message}")


class AmiCommands(Protocol):
    """What the panel may ask Asterisk to do."""

    def queue_pause(
        self, *, extension: str, paused: bool, reason: str | None = None, queue: str | None = None
    ) -> None:
        """Pause (or resume) the extension's queue membership; raise ``AmiCommandError``."""
        ...


@dataclass(frozen=True, slots=True)
class PauseCommand:
    """A pause request as both adapters build it."""

    extension: str
    paused: bool
    reason: str | None = None
    queue: str | None = None

    def action(self, *, interface_template: str) -> dict[str, str]:
        return build_queue_pause(
            interface=member_interface(self.extension, template=interface_template),
            paused=self.paused,
            action_id=new_action_id(f"qp-{self.extension}"),
            queue=self.queue,
            reason=self.reason,
        )


_NOT_CONNECTED = "Нет связи с АТС: команда не отправлена. Попробуйте ещё раз через минуту."
_NO_REPLY = "АТС не ответила на команду; состояние не изменилось."


class LiveClientCommands:
    """Sends through the listener's ``AmiClient`` in this process (``serve``/``demo``).

    Built before the listener exists (the web server starts first) and ``bind``-ed to the
    client once it does; until then every command fails with ``AmiUnavailable``.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
        interface_template: str = DEFAULT_MEMBER_INTERFACE,
    ) -> None:
        self.timeout = timeout
        self.interface_template = interface_template
        self._client: AmiClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, client: AmiClient, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Send through ``client``, whose event loop is ``loop`` (default: the running one)."""
        self._loop = loop or asyncio.get_running_loop()
        self._client = client

    def queue_pause(
        self, *, extension: str, paused: bool, reason: str | None = None, queue: str | None = None
    ) -> None:
        command = PauseCommand(extension=extension, paused=paused, reason=reason, queue=queue)
        action = command.action(interface_template=self.interface_template)
        check_reply(self._send(action), action="QueuePause")

    def _send(self, action: dict[str, str]) -> AmiEvent:
        client, loop = self._client, self._loop
        if client is None or loop is None or loop.is_closed():
            raise AmiUnavailable(_NOT_CONNECTED)
        future = asyncio.run_coroutine_threadsafe(
            client.send_action(action, timeout=self.timeout), loop
        )
        try:
            return future.result(self.timeout + 1.0)
        except AmiNotConnected as exc:
            raise AmiUnavailable(_NOT_CONNECTED) from exc
        except (AmiError, concurrent.futures.TimeoutError) as exc:
            future.cancel()
            log.warning("AMI %s: %s", action.get("Action"), exc)
            raise AmiUnavailable(_NO_REPLY) from exc


class _QuietListener:
    """The listener of a short command link: it only needs to know when the login is done."""

    def __init__(self) -> None:
        self.up = asyncio.Event()

    def on_event(self, event: AmiEvent) -> None:
        pass

    def on_link_up(self, *, at: float) -> None:
        self.up.set()

    def on_link_down(self, *, at: float, reason: str) -> None:
        pass

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None:
        pass


async def send_once(
    settings: Settings, action: Mapping[str, str], *, timeout: float = DEFAULT_COMMAND_TIMEOUT_S
) -> dict[str, str]:
    """Open a short AMI connection, send one action, log off; return the reply's headers.

    :raises AmiUnavailable: when the login does not succeed within ``timeout`` or no reply
        comes (the action may or may not have run; it is never re-sent).
    """
    listener = _QuietListener()
    client = AmiClient.from_settings(
        settings, listener=listener, connect_timeout=timeout, action_timeout=timeout
    )
    await client.start()
    try:
        try:
            await asyncio.wait_for(listener.up.wait(), timeout)
        except TimeoutError as exc:
            detail = client.stats.last_error or "no login"
            raise AmiUnavailable(f"{_NOT_CONNECTED} ({detail})") from exc
        try:
            reply = await client.send_action(action)
        except AmiError as exc:
            raise AmiUnavailable(_NO_REPLY) from exc
        return dict(reply.headers)
    finally:
        await client.stop()


#: The Huey job's name (``callcenter worker`` registers it).
QUEUE_PAUSE_TASK = "ami_queue_pause"


@dataclass(frozen=True, slots=True)
class CommandTasks:
    """The Huey tasks ``register_command_tasks`` registered."""

    queue_pause: Any  # huey.api.TaskWrapper


def register_command_tasks(
    huey: Huey, settings: Settings, *, expires: float | None = None
) -> CommandTasks:
    """Register the AMI command jobs on ``huey`` (the web enqueues, the worker runs them).

    ``expires`` (seconds) is set by the enqueuing side: a job no worker took by then is
    dropped instead of run late.

    A job returns ``{"ok": True, "reply": headers}`` or ``{"ok": False, "error": kind,
    "message": text}``; an expected failure is a result, not a Huey retry (never re-sent).
    """

    def ami_queue_pause(action: dict[str, str]) -> dict[str, Any]:
        try:
            reply = asyncio.run(send_once(settings, action))
        except AmiCommandError as exc:
            log.warning("QueuePause for %s failed: %s", action.get("Interface"), exc)
            return {"ok": False, "error": "unavailable", "message": str(exc)}
        log.info("QueuePause %s %s: %s", action.get("Interface"), action.get("Paused"), reply)
        return {"ok": True, "reply": reply}

    task = huey.task(name=QUEUE_PAUSE_TASK, expires=expires)(ami_queue_pause)
    return CommandTasks(queue_pause=task)


class HueyCommands:
    """Sends through a ``callcenter worker`` job (``callcenter web`` runs without a listener)."""

    def __init__(
        self,
        *,
        huey: Huey,
        settings: Settings,
        timeout: float = DEFAULT_COMMAND_TIMEOUT_S * 2,
        interface_template: str = DEFAULT_MEMBER_INTERFACE,
    ) -> None:
        self.timeout = timeout
        self.interface_template = interface_template
        self._tasks = register_command_tasks(huey, settings, expires=timeout)

    def queue_pause(
        self, *, extension: str, paused: bool, reason: str | None = None, queue: str | None = None
    ) -> None:
        from huey.exceptions import HueyException

        command = PauseCommand(extension=extension, paused=paused, reason=reason, queue=queue)
        action = command.action(interface_template=self.interface_template)
        # Not taken by a worker within the wait: dropped, never run late (``expires``).
        result = self._tasks.queue_pause(action)
        try:
            outcome = result.get(blocking=True, timeout=self.timeout)
        except HueyException as exc:
            raise AmiUnavailable(
                "Фоновый обработчик (callcenter worker) не ответил: команда не выполнена."
            ) from exc
        if not isinstance(outcome, dict) or not outcome.get("ok"):
            message = outcome.get("message") if isinstance(outcome, dict) else None
            raise AmiUnavailable(str(message or _NO_REPLY))
        check_reply(outcome["reply"], action="QueuePause")
