"""The follow-up sweep: open the follow-up calls the visits call for, close those no longer wanted.

One sweep (``sweep_followups``) runs in the caller's transaction and is idempotent: every
follow-up it opens is recorded in ``followups`` under a unique (patient, reason, anchor visit,
step) key, so running it again opens nothing new, and a follow-up whose task was closed is never
opened again. The rules are ``callcenter.tasks.followups``; this module only gathers the facts
set-based (one query per table, chunked ``IN`` lists, never one query per patient) and writes.

Per patient and sweep, at most one follow-up is opened, and none on a clinic day on which one
was already opened for that patient (no stacking of calls) — except a reminder, whose only day
is the one before the visit. A follow-up is not opened when:

* one of the patient's numbers already has an open task (one open task per number): it is
  considered again on the next sweep while its window lasts, and never once it has passed.
  Only a reminder, which cannot wait, replaces another follow-up of ours that is open on the
  number (closed "superseded", its record dropped so it may open again later in its window);
  a dropped caller's task is never replaced;
* the patient's consent does not allow its kind (``patients.consent.may_call``; follow-ups are
  the clinic's initiative, never the caller's own request); the dialer checks again before
  dialling;
* the patient has no phone number.

Sweeps serialize on one lock (PostgreSQL advisory lock; SQLite has one writer), and each number
is locked (``queries.lock_phone``) before its task is opened, as the call listener does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from callcenter.patients.consent import (
    CallPurpose,
    ConsentRecordView,
    consent_state_from_records,
    may_call,
)
from callcenter.store import queries
from callcenter.store.db import lock_key
from callcenter.store.models import OPEN_TASK_WHERE, Task, TaskEvent
from callcenter.store.models_dialer import TaskLease
from callcenter.store.models_followups import FOLLOWUP_OPENED, FOLLOWUP_STOPPED, FollowupRecord
from callcenter.store.models_patients import ConsentRecord, DoNotCall, PatientPhone, Visit
from callcenter.store.patients import phone_hash
from callcenter.tasks.followups import (
    DEFAULT_RULES,
    URGENCY,
    Followup,
    FollowupClock,
    FollowupCloseReason,
    FollowupKey,
    FollowupReason,
    FollowupRules,
    PatientFacts,
    VisitFacts,
    close_reason_for,
    day_start,
    due_followups,
    local_day,
    remaining_steps,
)
from callcenter.tasks.schedule import ClinicSchedule, kind_for_reason

# Below SQLite's 32,766 bound parameters per statement, with room to spare.
_IN_CHUNK = 5_000

_REASONS = {str(reason): reason for reason in FollowupReason}

#: Why a due follow-up was not opened (besides the consent rule's refusal reasons).
SKIP_OPEN_TASK = "open_task"  # one of the patient's numbers has an open task
SKIP_NO_PHONE = "no_phone"
SKIP_LIMIT = "limit"  # the sweep's limit was reached; the next sweep takes it
#: A follow-up task closed for a reminder (its record is dropped: it may be opened again later).
CLOSE_SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedFollowup:
    """A follow-up task the sweep opened (or, dry run, would open)."""

    patient_id: int
    phone: str
    reason: str
    kind: str
    step: int
    anchor_visit_id: int
    anchor_date: date
    due_at: datetime
    task_id: int | None  # None in a dry run


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedFollowup:
    """An open follow-up task the sweep closed (or would close)."""

    task_id: int
    patient_id: int
    reason: str
    close_reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedFollowup:
    """A due follow-up the sweep did not open, and why."""

    patient_id: int
    reason: str
    step: int
    anchor_visit_id: int
    why: str  # SKIP_* or the consent rule's reason ("no_pd_consent", "do_not_call", …)


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepReport:
    """What one sweep did."""

    now: datetime
    dry_run: bool
    opened: tuple[OpenedFollowup, ...] = ()
    closed: tuple[ClosedFollowup, ...] = ()
    stopped_steps: int = 0  # first-visit steps that will not happen: a booking appeared
    skipped: tuple[SkippedFollowup, ...] = ()
    skipped_by_why: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict (times ISO 8601 UTC, dates ISO)."""

        def plain(item: Any) -> dict[str, Any]:
            return {
                k: v.isoformat() if isinstance(v, date | datetime) else v
                for k, v in asdict(item).items()
            }

        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "opened": [plain(o) for o in self.opened],
            "closed": [plain(c) for c in self.closed],
            "stopped_steps": self.stopped_steps,
            "skipped_by_why": dict(sorted(self.skipped_by_why.items())),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Record:
    patient_id: int
    key: FollowupKey
    anchor_date: date
    status: str
    task_id: int | None
    created_at: datetime
    task_open: bool
    leased: bool
    # The patient's own dropped call was recorded on the task: we owe them a callback now.
    caller_waiting: bool
    task_phone: str | None


def sweep_followups(
    session: Session,
    *,
    now: datetime,
    schedule: ClinicSchedule,
    rules: FollowupRules = DEFAULT_RULES,
    dry_run: bool = False,
    limit: int | None = None,
) -> SweepReport:
    """Run one follow-up sweep at ``now``; the caller commits (or, dry run, rolls back).

    Closes open follow-up tasks that are no longer wanted, stops first-visit series that a
    booking answered, then opens at most ``limit`` due follow-ups (all when None), most urgent
    first.

    :raises ValueError: ``now`` is naive, or ``limit`` is negative.
    """
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware datetime")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    now = now.astimezone(UTC)
    today = local_day(now, schedule)
    midnight = day_start(today, schedule).astimezone(UTC)
    if not dry_run:
        lock_key(session, key="followup-sweep")
    since = rules.lookback_start(today)
    clock = FollowupClock(now=now, schedule=schedule, rules=rules)
    patient_ids = _candidate_ids(session, clock)
    patients = _load_patients(
        session, since=since, first_since=rules.first_visit_lookback(today), patient_ids=patient_ids
    )
    records = _load_records(
        session, since=since, midnight=midnight, now=now, patient_ids=patient_ids
    )

    closed = _close_unwanted(
        session,
        records=records,
        patients=patients,
        today=today,
        now=now,
        schedule=schedule,
        rules=rules,
        dry_run=dry_run,
    )
    stopped = _stop_booked_series(
        session,
        records=records,
        patients=patients,
        today=today,
        now=now,
        schedule=schedule,
        rules=rules,
        dry_run=dry_run,
    )

    done: dict[int, set[FollowupKey]] = defaultdict(set)
    opened_today: set[int] = set()
    for record in records:
        done[record.patient_id].add(record.key)
        if record.status == FOLLOWUP_OPENED and record.created_at >= midnight:
            opened_today.add(record.patient_id)
    for patient_id, key in stopped:
        done[patient_id].add(key)

    due: dict[int, list[Followup]] = {}
    for patient_id, facts in patients.items():
        found = due_followups(
            facts, now=now, schedule=schedule, rules=rules, done=done[patient_id], clock=clock
        )
        if patient_id in opened_today:
            # One follow-up call a day, but a reminder cannot wait: tomorrow is the visit.
            found = [f for f in found if f.reason is FollowupReason.REMINDER]
        if found:
            due[patient_id] = found
    closed_ids = {c.task_id for c in closed}
    supersedable = {
        r.patient_id: r
        for r in records
        if r.task_open
        and not r.leased
        and not r.caller_waiting
        and r.task_id is not None
        and r.task_id not in closed_ids
        and r.key.reason is not FollowupReason.REMINDER
    }
    opened, skipped, superseded = _open_due(
        session,
        due=due,
        now=now,
        schedule=schedule,
        dry_run=dry_run,
        limit=limit,
        closed_task_ids=closed_ids,
        supersedable=supersedable,
    )
    closed = [*closed, *superseded]
    by_why: dict[str, int] = defaultdict(int)
    for skip in skipped:
        by_why[skip.why] += 1
    return SweepReport(
        now=now,
        dry_run=dry_run,
        opened=tuple(opened),
        closed=tuple(closed),
        stopped_steps=len(stopped),
        skipped=tuple(skipped),
        skipped_by_why=dict(by_why),
    )


# -- facts ----------------------------------------------------------------------------------


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _candidate_ids(session: Session, clock: FollowupClock) -> list[int]:
    """The patients who may have a follow-up to open or close now, from one SQL query: a visit
    near today (a visit ahead to remind of, a recent no-show or visit for the rebooking, care
    and NPS calls, a recent first visit), a last completed visit in the sleeping window without
    a «Забота» record for it yet (and with the consent records such a call needs, a necessary
    condition checked in full later), or an open follow-up task."""
    today = clock.today
    visit = aliased(Visit)
    earlier = aliased(Visit)
    first_visit = ~exists().where(
        earlier.patient_id == visit.patient_id,
        earlier.status == "completed",
        earlier.visit_date < visit.visit_date,
    )
    near = select(visit.patient_id).where(
        visit.visit_date >= clock.active_since,
        visit.visit_date <= clock.reminder_horizon,
        or_(
            and_(visit.status == "scheduled", visit.visit_date > today),
            and_(
                visit.status.in_(["no_show", "completed"]),
                visit.visit_date >= clock.recent_since,
                visit.visit_date <= today,
            ),
            and_(visit.status == "completed", visit.visit_date <= today, first_visit),
        ),
    )
    # The last completed visit is in the sleeping window: a completed visit in the window with
    # no later one up to today (ix_visits_visit_date_status, then the patient's own visits).
    last = aliased(Visit)
    later = aliased(Visit)
    oldest, newest = clock.sleeping_bounds
    conditions = [
        last.status == "completed",
        last.visit_date >= oldest,
        last.visit_date <= newest,
        ~exists().where(
            later.patient_id == last.patient_id,
            later.status == "completed",
            later.visit_date > last.visit_date,
            later.visit_date <= clock.today,
        ),
        ~exists().where(
            FollowupRecord.patient_id == last.patient_id,
            FollowupRecord.reason == str(FollowupReason.SLEEPING),
            FollowupRecord.anchor_visit_id == last.id,
        ),
    ]
    needed = ["pd"]
    if kind_for_reason(str(FollowupReason.SLEEPING), clock.schedule) == "marketing":
        needed.append("marketing")
    for kind in needed:
        conditions.append(
            exists().where(
                ConsentRecord.patient_id == last.patient_id,
                ConsentRecord.kind == kind,
                ConsentRecord.action == "given",
            )
        )
    sleeping = select(last.patient_id).where(*conditions)
    open_task = (
        select(FollowupRecord.patient_id)
        .join(Task, Task.id == FollowupRecord.task_id)
        .where(Task.status == queries.TASK_OPEN)
    )
    return sorted(session.scalars(union(near, sleeping, open_task)))


def _load_patients(
    session: Session, *, since: date, first_since: date, patient_ids: Sequence[int]
) -> dict[int, PatientFacts]:
    """These patients with their visits on or after ``since``, plus the number of earlier
    completed visits of those who may be in a first-visit series."""
    connection = session.connection()
    visits: dict[int, list[VisitFacts]] = defaultdict(list)
    for chunk in _chunks(patient_ids):
        rows = connection.execute(
            select(
                Visit.patient_id,
                Visit.id,
                Visit.visit_date,
                Visit.status,
                Visit.service,
                Visit.booked_at,
            ).where(Visit.patient_id.in_(chunk), Visit.visit_date >= since)
        ).all()
        for patient_id, visit_id, visit_date, status, service, booked_at in rows:
            if booked_at is not None and booked_at.tzinfo is None:
                booked_at = booked_at.replace(tzinfo=UTC)  # Core rows from SQLite come back naive
            visits[patient_id].append(
                VisitFacts(
                    visit_id=visit_id,
                    visit_date=visit_date,
                    status=status,
                    service=service,
                    booked_at=booked_at,
                )
            )
    recent_first = (
        select(Visit.patient_id)
        .where(Visit.status == "completed", Visit.visit_date >= first_since)
        .scalar_subquery()
    )
    earlier = dict(
        connection.execute(
            select(Visit.patient_id, func.count())
            .where(
                Visit.status == "completed",
                Visit.visit_date < since,
                Visit.patient_id.in_(recent_first),
            )
            .group_by(Visit.patient_id)
        )
        .tuples()
        .all()
    )
    return {
        pid: PatientFacts(
            patient_id=pid, visits=tuple(vs), earlier_completed=int(earlier.get(pid, 0))
        )
        for pid, vs in visits.items()
    }


def _load_records(
    session: Session,
    *,
    since: date,
    midnight: datetime,
    now: datetime,
    patient_ids: Sequence[int],
) -> list[_Record]:
    """Follow-up records that can still matter: these patients' recent anchors, and every
    record opened today or with an open task (with whether a dialer holds that task now)."""
    f = FollowupRecord
    base = (
        select(
            f.id,
            f.patient_id,
            f.reason,
            f.anchor_visit_id,
            f.step,
            f.anchor_date,
            f.status,
            f.task_id,
            f.created_at,
            Task.status,
            Task.phone,
            Task.dropped_calls,
            TaskLease.lease_until,
        )
        .outerjoin(Task, Task.id == f.task_id)
        .outerjoin(TaskLease, TaskLease.task_id == f.task_id)
    )
    queries_to_run = [
        base.where(or_(f.created_at >= midnight, Task.status == queries.TASK_OPEN)),
        *(
            base.where(f.patient_id.in_(chunk), f.anchor_date >= since)
            for chunk in _chunks(patient_ids)
        ),
    ]
    seen: set[int] = set()
    records = []
    for query in queries_to_run:
        for row in session.execute(query):
            (
                record_id,
                pid,
                reason,
                anchor_id,
                step,
                anchor_date,
                status,
                task_id,
                created_at,
                task_status,
                task_phone,
                dropped_calls,
                lease_until,
            ) = row
            if record_id in seen:
                continue
            seen.add(record_id)
            known = _REASONS.get(reason)
            if known is None:
                continue  # a reason this version does not know: leave it alone
            key = FollowupKey(known, anchor_id, step)
            records.append(
                _Record(
                    patient_id=pid,
                    key=key,
                    anchor_date=anchor_date,
                    status=status,
                    task_id=task_id,
                    created_at=created_at,
                    task_open=task_status == queries.TASK_OPEN,
                    leased=lease_until is not None and lease_until > now,
                    caller_waiting=bool(dropped_calls),
                    task_phone=task_phone,
                )
            )
    return records


# -- closing and stopping -------------------------------------------------------------------


def _close_unwanted(
    session: Session,
    *,
    records: Sequence[_Record],
    patients: dict[int, PatientFacts],
    today: date,
    now: datetime,
    schedule: ClinicSchedule,
    rules: FollowupRules,
    dry_run: bool,
) -> list[ClosedFollowup]:
    """Close the open follow-up tasks no longer wanted. A task a dialer holds right now is left
    to the dialer (the next sweep closes it if it is still open); a task on which the patient's
    own dropped call was recorded (one open task per number) is a callback now, never closed
    here."""
    closing: list[ClosedFollowup] = []
    for record in records:
        if not record.task_open or record.leased or record.caller_waiting or record.task_id is None:
            continue
        facts = patients.get(record.patient_id) or PatientFacts(
            patient_id=record.patient_id, visits=()
        )
        why = close_reason_for(
            record.key,
            facts,
            anchor_date=record.anchor_date,
            today=today,
            schedule=schedule,
            rules=rules,
        )
        if why is not None:
            closing.append(
                ClosedFollowup(
                    task_id=record.task_id,
                    patient_id=record.patient_id,
                    reason=str(record.key.reason),
                    close_reason=str(why),
                )
            )
    if dry_run or not closing:
        return closing
    if session.get_bind().dialect.name == "postgresql":
        # The call listener records a dropped call on the number's open task under this lock:
        # take it, so a drop is never recorded on a task closed under it.
        closing_ids = {c.task_id for c in closing}
        phones = {r.task_phone for r in records if r.task_id in closing_ids and r.task_phone}
        for phone in sorted(phones):
            queries.lock_phone(session, phone=phone)
    done: list[ClosedFollowup] = []
    for reason in sorted({c.close_reason for c in closing}):
        ids = [c.task_id for c in closing if c.close_reason == reason]
        for chunk in _chunks(ids):
            result = session.execute(
                update(Task)
                .where(
                    Task.id.in_(chunk),
                    Task.status == queries.TASK_OPEN,
                    Task.dropped_calls == 0,  # a drop recorded since we looked: a callback now
                )
                .values(status=queries.TASK_CLOSED, closed_at=now, close_reason=reason)
                .returning(Task.id)
            )
            closed_ids = set(result.scalars())
            done.extend(c for c in closing if c.task_id in closed_ids and c.close_reason == reason)
    _insert_rows(
        session,
        TaskEvent,
        [
            {
                "task_id": c.task_id,
                "at": now,
                "kind": queries.EVENT_CLOSED,
                "call_linkedid": None,
                "detail": c.close_reason,
            }
            for c in done
        ],
    )
    session.expire_all()  # ORM copies of these tasks are stale now
    return done


def _stop_booked_series(
    session: Session,
    *,
    records: Iterable[_Record],
    patients: dict[int, PatientFacts],
    today: date,
    now: datetime,
    schedule: ClinicSchedule,
    rules: FollowupRules,
    dry_run: bool,
) -> list[tuple[int, FollowupKey]]:
    """Record the first-visit steps that will not happen because the patient booked."""
    series: dict[tuple[int, int], list[_Record]] = defaultdict(list)
    for record in records:
        if record.key.reason is FollowupReason.FIRST_VISIT:
            series[(record.patient_id, record.key.anchor_visit_id)].append(record)
    stopped: list[tuple[int, FollowupKey]] = []
    rows: list[dict[str, Any]] = []
    for (patient_id, anchor_id), recorded in series.items():
        latest = max(recorded, key=lambda r: r.key.step)
        facts = patients.get(patient_id)
        if facts is None:
            continue
        why = close_reason_for(
            latest.key,
            facts,
            anchor_date=latest.anchor_date,
            today=today,
            schedule=schedule,
            rules=rules,
        )
        if why is not FollowupCloseReason.BOOKED:
            continue
        have = {r.key.step for r in recorded}
        for step in remaining_steps(latest.key, rules):
            if step in have:
                continue
            key = FollowupKey(FollowupReason.FIRST_VISIT, anchor_id, step)
            stopped.append((patient_id, key))
            rows.append(
                {
                    "patient_id": patient_id,
                    "reason": str(key.reason),
                    "anchor_visit_id": anchor_id,
                    "anchor_date": latest.anchor_date,
                    "step": step,
                    "status": FOLLOWUP_STOPPED,
                    "phone": None,
                    "task_id": None,
                    "created_at": now,
                }
            )
    if not dry_run:
        _insert_rows(session, FollowupRecord, rows)
    return stopped


# -- opening --------------------------------------------------------------------------------


def _open_due(
    session: Session,
    *,
    due: dict[int, list[Followup]],
    now: datetime,
    schedule: ClinicSchedule,
    dry_run: bool,
    limit: int | None,
    closed_task_ids: set[int],
    supersedable: dict[int, _Record],
) -> tuple[list[OpenedFollowup], list[SkippedFollowup], list[ClosedFollowup]]:
    """Open the due follow-ups the numbers and consents allow. A reminder cannot wait (its only
    day is the one before the visit): when the patient's only open task is another follow-up
    of ours, that one is closed "superseded" and its record dropped, so it may be opened again
    on a later day while its window lasts."""
    patient_ids = sorted(due)
    phones = _phones(session, patient_ids=patient_ids)
    all_phones = sorted({p for ps in phones.values() for p in ps})
    busy = _phones_with_open_task(
        session, phones=all_phones, except_ids=closed_task_ids if dry_run else set()
    )
    dnc = _do_not_call(session, phones=all_phones)
    consents = _consent_records(session, patient_ids=patient_ids)

    chosen: list[tuple[int, str, Followup, str]] = []  # (patient, phone, follow-up, kind)
    skipped: list[SkippedFollowup] = []
    superseding: dict[int, _Record] = {}  # patient → the follow-up task a reminder replaces

    def skip(patient_id: int, f: Followup, why: str) -> None:
        skipped.append(
            SkippedFollowup(
                patient_id=patient_id,
                reason=str(f.reason),
                step=f.key.step,
                anchor_visit_id=f.key.anchor_visit_id,
                why=why,
            )
        )

    for patient_id in patient_ids:
        followups = due[patient_id]
        numbers = phones.get(patient_id, [])
        if not numbers:
            skip(patient_id, followups[0], SKIP_NO_PHONE)
            continue
        busy_numbers = {n for n in numbers if n in busy}
        if busy_numbers:
            other = supersedable.get(patient_id)
            if (
                followups[0].reason is not FollowupReason.REMINDER
                or other is None
                or busy_numbers != {other.task_phone}
            ):
                skip(patient_id, followups[0], SKIP_OPEN_TASK)
                continue
            superseding[patient_id] = other
            followups = followups[:1]
        state = consent_state_from_records(
            consents.get(patient_id, ()), do_not_call=any(n in dnc for n in numbers), at=now
        )
        for f in followups:
            kind = kind_for_reason(str(f.reason), schedule)
            permission = may_call(
                purpose=CallPurpose(str(kind)), consent=state, callers_own_request=False
            )
            if permission.allowed:
                chosen.append((patient_id, numbers[0], f, str(kind)))
                break
            skip(patient_id, f, permission.reason)

    chosen.sort(key=lambda c: (URGENCY.index(c[2].reason), c[2].due_at, c[2].anchor_date, c[0]))
    if limit is not None:
        for patient_id, _, f, _ in chosen[limit:]:
            skip(patient_id, f, SKIP_LIMIT)
        chosen = chosen[:limit]
    replaced = [superseding[c[0]] for c in chosen if c[0] in superseding]
    if dry_run:
        return (
            [_opened(c, task_id=None) for c in chosen],
            skipped,
            [_superseded(r) for r in replaced],
        )

    is_postgres = session.get_bind().dialect.name == "postgresql"
    numbers_of = {c[0]: phones[c[0]] for c in chosen}
    locked = sorted({n for ns in numbers_of.values() for n in ns})
    if is_postgres:
        # As the call listener does before it opens a task (sorted: two lockers never
        # deadlock); then look again below: a task may have been opened since the first look.
        for phone in locked:
            queries.lock_phone(session, phone=phone)
    superseded = _close_superseded(session, records=replaced, now=now)
    if is_postgres and chosen:
        busy_now = _phones_with_open_task(session, phones=locked, except_ids=set())
        for patient_id, _, f, _ in chosen:
            if any(n in busy_now for n in numbers_of[patient_id]):
                skip(patient_id, f, SKIP_OPEN_TASK)
        chosen = [c for c in chosen if not any(n in busy_now for n in numbers_of[c[0]])]
    task_ids = _insert_tasks(session, chosen=chosen, now=now)
    opened: list[OpenedFollowup] = []
    events: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for c in chosen:
        patient_id, phone, f, _ = c
        task_id = task_ids.get(phone)
        if task_id is None:
            skip(patient_id, f, SKIP_OPEN_TASK)  # a task for the number appeared meanwhile
            continue
        opened.append(_opened(c, task_id=task_id))
        detail = f"{f.reason} after visit {f.anchor_date.isoformat()}"
        if f.key.step:
            detail += f", step {f.key.step}"
        events.append(
            {
                "task_id": task_id,
                "at": now,
                "kind": queries.EVENT_OPENED,
                "call_linkedid": None,
                "detail": detail,
            }
        )
        records.append(
            {
                "patient_id": patient_id,
                "reason": str(f.reason),
                "anchor_visit_id": f.key.anchor_visit_id,
                "anchor_date": f.anchor_date,
                "step": f.key.step,
                "status": FOLLOWUP_OPENED,
                "phone": phone,
                "task_id": task_id,
                "created_at": now,
            }
        )
    _insert_rows(session, TaskEvent, events)
    _insert_rows(session, FollowupRecord, records)
    return opened, skipped, superseded


def _superseded(record: _Record) -> ClosedFollowup:
    return ClosedFollowup(
        task_id=record.task_id or 0,
        patient_id=record.patient_id,
        reason=str(record.key.reason),
        close_reason=CLOSE_SUPERSEDED,
    )


def _close_superseded(
    session: Session, *, records: Sequence[_Record], now: datetime
) -> list[ClosedFollowup]:
    """Close the follow-up tasks a reminder replaces and drop their records."""
    ids = [r.task_id for r in records if r.task_id is not None]
    if not ids:
        return []
    result = session.execute(
        update(Task)
        .where(Task.id.in_(ids), Task.status == queries.TASK_OPEN, Task.dropped_calls == 0)
        .values(status=queries.TASK_CLOSED, closed_at=now, close_reason=CLOSE_SUPERSEDED)
        .returning(Task.id)
    )
    closed_ids = set(result.scalars())
    if not closed_ids:
        return []
    _insert_rows(
        session,
        TaskEvent,
        [
            {
                "task_id": task_id,
                "at": now,
                "kind": queries.EVENT_CLOSED,
                "call_linkedid": None,
                "detail": CLOSE_SUPERSEDED,
            }
            for task_id in sorted(closed_ids)
        ],
    )
    session.execute(delete(FollowupRecord).where(FollowupRecord.task_id.in_(closed_ids)))
    session.expire_all()
    return [_superseded(r) for r in records if r.task_id in closed_ids]


def _opened(chosen: tuple[int, str, Followup, str], *, task_id: int | None) -> OpenedFollowup:
    patient_id, phone, f, kind = chosen
    return OpenedFollowup(
        patient_id=patient_id,
        phone=phone,
        reason=str(f.reason),
        kind=kind,
        step=f.key.step,
        anchor_visit_id=f.key.anchor_visit_id,
        anchor_date=f.anchor_date,
        due_at=f.due_at,
        task_id=task_id,
    )


def _phones(session: Session, *, patient_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each patient's numbers, the first stored first (the one we call)."""
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(patient_ids):
        rows = session.execute(
            select(PatientPhone.patient_id, PatientPhone.phone)
            .where(PatientPhone.patient_id.in_(chunk))
            .order_by(PatientPhone.patient_id, PatientPhone.id)
        )
        for patient_id, phone in rows.tuples():
            found[patient_id].append(phone)
    return found


def _phones_with_open_task(
    session: Session, *, phones: Sequence[str], except_ids: set[int]
) -> set[str]:
    busy: set[str] = set()
    for chunk in _chunks(phones):
        rows = session.execute(
            select(Task.id, Task.phone).where(
                Task.status == queries.TASK_OPEN, Task.phone.in_(chunk)
            )
        )
        busy.update(phone for task_id, phone in rows.tuples() if task_id not in except_ids)
    return busy


def _do_not_call(session: Session, *, phones: Sequence[str]) -> set[str]:
    by_hash = {phone_hash(p): p for p in phones}
    listed: set[str] = set()
    for chunk in _chunks(sorted(by_hash)):
        hashes = session.scalars(
            select(DoNotCall.phone_hash).where(DoNotCall.phone_hash.in_(chunk))
        )
        listed.update(by_hash[h] for h in hashes)
    return listed


def _consent_records(
    session: Session, *, patient_ids: Sequence[int]
) -> dict[int, list[ConsentRecordView]]:
    found: dict[int, list[ConsentRecordView]] = defaultdict(list)
    for chunk in _chunks(patient_ids):
        rows = session.execute(
            select(
                ConsentRecord.patient_id, ConsentRecord.kind, ConsentRecord.action, ConsentRecord.at
            ).where(ConsentRecord.patient_id.in_(chunk))
        )
        for patient_id, kind, action, at in rows.tuples():
            found[patient_id].append(ConsentRecordView(kind=kind, action=action, at=at))
    return found


def _insert_tasks(
    session: Session, *, chosen: Sequence[tuple[int, str, Followup, str]], now: datetime
) -> dict[str, int]:
    """Open the tasks, set-based; a number that got an open task meanwhile is left out (the
    partial unique index ``uq_tasks_open_phone`` decides). Returns the new task id per number."""
    table = cast(Table, Task.__table__)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        build: Any = postgresql.insert
    elif dialect == "sqlite":
        build = sqlite.insert
    else:
        raise RuntimeError(f"unsupported database {dialect!r}")
    rows = [
        {
            "phone": phone,
            "reason": str(f.reason),
            "kind": kind,
            "status": queries.TASK_OPEN,
            "opened_at": now,
            "due_at": f.due_at,
            "attempts": 0,
            "dropped_calls": 0,
            "patient_id": patient_id,
        }
        for patient_id, phone, f, kind in chosen
    ]
    if not rows:
        return {}
    # One statement, executemany: SQLAlchemy batches it into multi-row INSERT … RETURNING
    # ("insertmanyvalues") on both back-ends, compiled once.
    statement = (
        build(table)
        .on_conflict_do_nothing(index_elements=[table.c.phone], index_where=OPEN_TASK_WHERE)
        .returning(table.c.id, table.c.phone)
    )
    result = session.execute(statement, rows)
    return {phone: task_id for task_id, phone in result.tuples()}


def _insert_rows(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model.__table__), rows)
