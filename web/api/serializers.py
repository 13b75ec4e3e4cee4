"""Stored rows → the JSON the API and the screens share (``callcenter.notify.call_payload``)."""

from __future__ import annotations

from typing import Any

from callcenter.store.models import Call


def call_row_payload(call: Call) -> dict[str, Any]:
    """Return a stored call with the keys of ``notify.call_payload`` (replay contract + names)."""
    return {
        "linkedid": call.linkedid,
        "caller": call.caller,
        "direction": call.direction,
        "disposition": call.disposition,
        "queue": call.queue,
        "agent": call.agent,
        "wait_s": call.wait_s,
        "talk_s": call.talk_s,
        "queue_wait_s": call.queue_wait_s,
        "start_ts": call.start_ts,
        "end_ts": call.end_ts,
        "recording": call.recording,
        "callback_task": call.callback_task,
        "caller_name": call.caller_name,
        "did": call.did,
        "agent_name": call.agent_name,
        "last_agent": call.last_agent,
        "transfers": list(call.transfers or []),
    }
