"""The wallboard's live state: callers waiting now, each administrator's state, today's figures.

The notifier keeps one ``LiveBoard`` next to its pop registry and updates it on its screen-pops
thread as the tracker reports calls and operators; a wallboard that connects (or reloads) in
the middle of traffic gets ``snapshot()`` at once, then a fresh one after every change.

Times on the board are this process's clock at the moment a notification arrived, not the
AMI ``Timestamp``: Asterisk's clock (or a replayed trace's) may differ from the server's, and
the browser's clock from both, so a snapshot carries durations (``wait_s``), never instants.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.calls.effects import AgentRinging, CallQueued, CallStarted, OperatorStatus
from callcenter.calls.model import CallRecord
from callcenter.reports.figures import CallRow, Period, ReportOptions, summarize_calls

#: No caller waits this long in a clinic's queue: such an entry is a call whose end went unseen
#: (the tracker reports calls lost in an AMI gap as ``CallLost``, which the notifier port does
#: not carry), so it is dropped rather than keep the alert up.
STALE_WAIT_S = 30 * 60.0
#: Ended calls kept in memory for today's figures: today's, with a day's margin.
KEEP_ROWS = timedelta(days=2)

#: Loads the stored calls of a period (today's, when a board starts or a day begins).
RowsLoader = Callable[[Period], list[CallRow]]


@dataclass
class WaitingCaller:
    linkedid: str
    caller: str | None
    caller_name: str | None
    since: float
    queue: str | None = None
    ringing: list[str] = field(default_factory=list)


@dataclass
class OperatorOnBoard:
    agent: str
    agent_name: str | None
    status: str
    since: float
    # Wrap-up: how long it lasts (Asterisk sends no event when it ends).
    wrap_s: float | None = None


def call_row_of(call: CallRecord) -> CallRow:
    """Return the figures' row of a finished call (no legs: today's totals do not need them)."""
    return CallRow(
        linkedid=call.linkedid,
        direction=str(call.direction),
        disposition=str(call.disposition),
        started_at=datetime.fromtimestamp(call.start_ts, UTC),
        agent=call.agent,
        wait_s=call.wait_s,
        talk_s=call.talk_s,
        queue_wait_s=call.queue_wait_s,
        callback_task=call.callback_task,
    )


class LiveBoard:
    """Thread-safe live state of the wallboard (updated by the notifier, read by sockets)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rows_loader: RowsLoader | None = None,
        timezone: str | None = None,
        options: ReportOptions | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rows_loader = rows_loader
        self.timezone = timezone
        self.options = options or ReportOptions()
        self._waiting: dict[str, WaitingCaller] = {}
        self._operators: dict[str, OperatorOnBoard] = {}
        self._rows: dict[str, CallRow] = {}
        self._seeded_day: str | None = None
        self._link_up: bool | None = None
        self._link_reason: str | None = None
        self._link_down_since: float | None = None
        #: True once any notification reached this board (a listener runs in this process).
        self.fed = False

    def configure(self, *, timezone: str, options: ReportOptions | None = None) -> None:
        """Set the clinic's time zone (today's figures) and the thresholds (service level)."""
        with self._lock:
            if timezone != self.timezone:
                self._seeded_day = None
            self.timezone = timezone
            if options is not None:
                self.options = options

    @property
    def threshold_s(self) -> float:
        """Return the service-level threshold: a caller waiting longer raises the alert."""
        return self.options.service_level_s

    # -- updates (the notifier's screen-pops thread) --

    def call_started(self, effect: CallStarted) -> None:
        with self._lock:
            self.fed = True
            if str(effect.direction) != "inbound":
                # An inbound-looking call turned out to be a callback we placed: no caller waits.
                self._waiting.pop(effect.linkedid, None)
                return
            if effect.linkedid not in self._waiting:
                self._waiting[effect.linkedid] = WaitingCaller(
                    linkedid=effect.linkedid,
                    caller=effect.caller,
                    caller_name=effect.caller_name,
                    since=self._clock(),
                )

    def call_queued(self, effect: CallQueued) -> None:
        """The caller joined a queue: the wait shown (and the service-level alert) counts from
        here, like the reports' queue wait, not from the greeting before it."""
        with self._lock:
            self.fed = True
            waiting = self._waiting.get(effect.linkedid)
            if waiting is None:
                return  # a callback we placed, or a call from before the board started
            if waiting.queue is None:
                waiting.since = self._clock()
            waiting.queue = effect.queue

    def call_ringing(self, effect: AgentRinging) -> None:
        with self._lock:
            self.fed = True
            waiting = self._waiting.get(effect.linkedid)
            if waiting is None:
                return  # outbound, or already answered (a transfer rings the next phone)
            waiting.queue = effect.queue or waiting.queue
            waiting.caller = waiting.caller or effect.caller
            waiting.caller_name = waiting.caller_name or effect.caller_name
            if effect.agent not in waiting.ringing:
                waiting.ringing.append(effect.agent)

    def agent_stopped_ringing(self, linkedid: str, agent: str) -> None:
        with self._lock:
            waiting = self._waiting.get(linkedid)
            if waiting is not None and agent in waiting.ringing:
                waiting.ringing.remove(agent)

    def call_answered(self, linkedid: str) -> None:
        with self._lock:
            self._waiting.pop(linkedid, None)

    def call_ended(self, call: CallRecord) -> None:
        with self._lock:
            self.fed = True
            self._waiting.pop(call.linkedid, None)
            row = call_row_of(call)
            self._rows[call.linkedid] = row
            oldest = datetime.fromtimestamp(self._clock(), UTC) - KEEP_ROWS
            for linkedid in [k for k, r in self._rows.items() if r.started_at < oldest]:
                del self._rows[linkedid]

    def operator_state(
        self, *, agent: str, agent_name: str | None, status: str, ts: float, until: float | None
    ) -> None:
        with self._lock:
            self.fed = True
            old = self._operators.get(agent)
            self._operators[agent] = OperatorOnBoard(
                agent=agent,
                agent_name=agent_name or (old.agent_name if old else None),
                status=status,
                since=self._clock(),
                wrap_s=None if until is None else max(0.0, until - ts),
            )

    def link_state(self, *, up: bool, reason: str | None) -> None:
        with self._lock:
            self.fed = True
            now = self._clock()
            if up and self._link_up is False and self._link_down_since is not None:
                # Callers seen before the gap may have hung up unseen, and the notifier port
                # does not carry the tracker's ``CallLost``: drop them rather than keep ghost
                # callers (and a false alert) on the board. A caller still queued leaves the
                # board too, for at most the rest of the queue's timeout.
                cutoff = self._link_down_since
                for linkedid in [k for k, w in self._waiting.items() if w.since <= cutoff]:
                    del self._waiting[linkedid]
            if not up and self._link_up is not False:
                self._link_down_since = now
            self._link_up = up
            self._link_reason = reason

    # -- reads (sockets, pages) --

    def snapshot(self) -> dict[str, Any]:
        """Return the board as the wallboard shows it (JSON-ready)."""
        period = self._today()
        if period is not None:
            self._seed(period)
        now = self._clock()
        threshold = self.threshold_s
        with self._lock:
            for linkedid in [k for k, w in self._waiting.items() if now - w.since > STALE_WAIT_S]:
                del self._waiting[linkedid]
            waiting = sorted(self._waiting.values(), key=lambda w: w.since)
            operators = sorted(self._operators.values(), key=lambda o: o.agent)
            rows = list(self._rows.values())
            link = {"up": self._link_up, "reason": self._link_reason}
        today: dict[str, Any] | None = None
        if period is not None:
            todays = [r for r in rows if period.start <= r.started_at < period.end]
            today = {
                "day": period.first.isoformat(),
                **asdict(summarize_calls(todays, options=self.options)),
            }
        return {
            "taken_at": now,
            "threshold_s": threshold,
            "link": link,
            "waiting": [
                {
                    "linkedid": w.linkedid,
                    "caller": w.caller,
                    "caller_name": w.caller_name,
                    "queue": w.queue,
                    "ringing": list(w.ringing),
                    "wait_s": round(now - w.since, 1),
                    "over": now - w.since > threshold,
                }
                for w in waiting
            ],
            "operators": [_operator_view(o, now) for o in operators],
            "today": today,
        }

    def _today(self) -> Period | None:
        if self.timezone is None:
            return None
        zone = ZoneInfo(self.timezone)
        day = datetime.fromtimestamp(self._clock(), zone).date()
        return Period(first=day, last=day, timezone=self.timezone)

    def _seed(self, period: Period) -> None:
        """Load today's stored calls once a day; live ones already on the board win.

        A board no listener feeds (the web process, with the listener in another one) has
        the store as its only source: it reads it for every snapshot.
        """
        day = period.first.isoformat()
        if (self._seeded_day == day and self.fed) or self._rows_loader is None:
            return
        stored = self._rows_loader(period)
        with self._lock:
            if self._seeded_day == day and self.fed:
                return
            for row in stored:
                self._rows.setdefault(row.linkedid, row)
            self._seeded_day = day


def _operator_view(op: OperatorOnBoard, now: float) -> dict[str, Any]:
    status = op.status
    since = op.since
    wrap_left: float | None = None
    if status == OperatorStatus.WRAP_UP and op.wrap_s is not None:
        wrap_left = op.since + op.wrap_s - now
        if wrap_left <= 0:
            # Asterisk says nothing when wrap-up ends: the administrator is free again, since
            # the moment it ended.
            status, wrap_left, since = str(OperatorStatus.FREE), None, op.since + op.wrap_s
    return {
        "agent": op.agent,
        "agent_name": op.agent_name,
        "status": status,
        "state_s": round(now - since, 1),
        "wrap_left_s": None if wrap_left is None else round(wrap_left, 1),
    }


def age_snapshot(snapshot: dict[str, Any], *, now: float) -> dict[str, Any]:
    """Return a snapshot taken at ``snapshot["taken_at"]`` as it stands at ``now``.

    Waits and times in a state go on, callers past the threshold are marked, wrap-ups that
    ended turn free and callers waiting impossibly long are dropped, as ``LiveBoard`` does.
    """
    age = max(0.0, now - float(snapshot.get("taken_at", now)))
    threshold = float(snapshot["threshold_s"])
    waiting = []
    for entry in snapshot["waiting"]:
        wait = float(entry["wait_s"]) + age
        if wait <= STALE_WAIT_S:
            waiting.append({**entry, "wait_s": round(wait, 1), "over": wait > threshold})
    operators = []
    for op in snapshot["operators"]:
        state_s = float(op["state_s"]) + age
        wrap_left = op.get("wrap_left_s")
        if wrap_left is not None:
            wrap_left = float(wrap_left) - age
            if wrap_left <= 0:
                op = {**op, "status": str(OperatorStatus.FREE)}
                state_s, wrap_left = -wrap_left, None
        operators.append(
            {
                **op,
                "state_s": round(state_s, 1),
                "wrap_left_s": None if wrap_left is None else round(wrap_left, 1),
            }
        )
    return {**snapshot, "taken_at": now, "waiting": waiting, "operators": operators}
