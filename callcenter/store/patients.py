"""Reads and writes of the patients part: consent, do-not-call, the card, the CSV import.

The caller owns the transaction. Reads select plain columns, not ORM objects: the card is loaded
on every ring and must stay within a few milliseconds for a long-standing patient.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CompoundSelect,
    Row,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from callcenter.errors import CallcenterError
from callcenter.patients.card import (
    RECENT_CALLS,
    Card,
    NoteView,
    PatientView,
    TaskView,
    assemble_card,
)
from callcenter.patients.consent import (
    NO_CONSENT,
    ConsentAction,
    ConsentKind,
    ConsentRecordView,
    ConsentState,
    consent_state_from_records,
)
from callcenter.patients.phone import normalize_phone
from callcenter.patients.segments import (
    CONTACT_DISPOSITIONS,
    DROPPED_CALL_DISPOSITIONS,
    CallView,
    VisitView,
)
from callcenter.store.models import Call, Task
from callcenter.store.models_patients import (
    ConsentRecord,
    DoNotCall,
    Patient,
    PatientNote,
    PatientPhone,
    Visit,
)

if TYPE_CHECKING:
    from callcenter.patients.demo_data import DemoPatient
    from callcenter.patients.importer import PatientRow

#: The clinic's calendar, for "today" in segments and months since the last visit.
DEFAULT_CLINIC_TZ = ZoneInfo("Europe/Moscow")

# Below SQLite's 32,766 bound parameters per statement, with room to spare.
_IN_CHUNK = 5_000


def phone_hash(phone: str) -> str:
    """Return the SHA-256 (hex) of an E.164 number, the do-not-call list's key.

    >>> phone_hash("+79161234567")[:16]
    'c795313d1a25fea4'
    """
    return hashlib.sha256(phone.encode("ascii")).hexdigest()


def _rows(
    session: Session,
    query: Select[Any] | CompoundSelect[Any],
    params: dict[str, Any] | None = None,
) -> Sequence[Row[Any]]:
    # The Core connection and fetchall: no ORM row loading, no row-by-row fetching.
    return session.connection().execute(query, params).all()


def _require_phone(raw: str) -> str:
    phone = normalize_phone(raw)
    if phone is None:
        raise ValueError(f"{raw!r} is not a phone number")
    return phone


# --- consent and do-not-call ---------------------------------------------------------------


def find_patient_id(session: Session, *, phone: str) -> int | None:
    """Return the id of the patient with this number (any form), if any."""
    normalized = normalize_phone(phone)
    if normalized is None:
        return None
    return session.scalar(select(PatientPhone.patient_id).where(PatientPhone.phone == normalized))


def record_consent(
    session: Session,
    *,
    patient_id: int,
    kind: str,
    action: str,
    at: datetime,
    by: str | None,
    channel: str | None,
) -> None:
    """Record a consent given or withdrawn; it counts for every decision from ``at`` on.

    :raises ValueError: unknown kind or action.
    """
    kind = ConsentKind(kind)
    action = ConsentAction(action)
    session.add(
        ConsentRecord(
            patient_id=patient_id, kind=kind, action=action, at=at, by=by, channel=channel
        )
    )
    session.flush()


def add_do_not_call(session: Session, *, phone: str, at: datetime, by: str | None) -> None:
    """Put the number on the do-not-call list (once; adding it again changes nothing).

    :raises ValueError: ``phone`` is not a phone number.
    """
    key = phone_hash(_require_phone(phone))
    if session.get(DoNotCall, key) is None:
        session.add(DoNotCall(phone_hash=key, at=at, by=by))
        session.flush()


def is_do_not_call(session: Session, *, phone: str) -> bool:
    """Return True when the number asked not to be called."""
    normalized = normalize_phone(phone)
    if normalized is None:
        return False
    return bool(
        session.scalar(select(exists().where(DoNotCall.phone_hash == phone_hash(normalized))))
    )


def consent_state_for_phone(session: Session, *, phone: str, at: datetime) -> ConsentState | None:
    """Return the number's consent state at ``at``.

    None when no patient has the number and it is not on the do-not-call list. A patient who
    asked not to be called on one of their numbers is not called on the others either: the
    request is the person's, and the card shows it whichever number rings.
    """
    normalized = normalize_phone(phone)
    if normalized is None:
        return None
    found = _patient_with_phones(session, phone=normalized)
    if found is None:
        if is_do_not_call(session, phone=normalized):
            return ConsentState(pd_consent=False, marketing_consent=False, do_not_call=True)
        return None
    patient, phones = found
    return consent_state_from_records(
        _consent_records(session, patient_id=patient.id),
        do_not_call=_any_do_not_call(session, phones=phones),
        at=at,
    )


def called_us_within(session: Session, *, phone: str, since: datetime) -> bool:
    """Return True when the number made an inbound call that started at or after ``since``."""
    normalized = normalize_phone(phone)
    if normalized is None:
        return False
    query = select(
        exists().where(
            Call.phone == normalized, Call.direction == "inbound", Call.started_at >= since
        )
    )
    return bool(session.scalar(query))


# --- the card ------------------------------------------------------------------------------


def load_card(
    session: Session,
    *,
    caller: str | None,
    now: datetime,
    clinic_tz: tzinfo = DEFAULT_CLINIC_TZ,
) -> Card:
    """Load the screen-pop card for a caller ID (raw, as Asterisk gave it)."""
    phone = normalize_phone(caller)
    found = _patient_with_phones(session, phone=phone) if phone is not None else None
    today = now.astimezone(clinic_tz).date()
    if found is None:
        phones = [phone] if phone is not None else []
        do_not_call = phone is not None and is_do_not_call(session, phone=phone)
        return assemble_card(
            phone=phone,
            raw_caller=caller,
            patient=None,
            visits=(),
            notes=(),
            calls=_calls(session, phones=phones),
            open_tasks=_open_tasks(session, phones=phones),
            consent=ConsentState(pd_consent=False, marketing_consent=False, do_not_call=True)
            if do_not_call
            else NO_CONSENT,
            today=today,
        )
    patient, phones = found
    # Any of the patient's numbers on the list stops calls to the patient: they asked not to be
    # called, and the card must read the same whichever number rings.
    do_not_call = _any_do_not_call(session, phones=phones)
    return assemble_card(
        phone=phone,
        raw_caller=caller,
        patient=patient,
        visits=_visits(session, patient_id=patient.id),
        notes=_notes(session, patient_id=patient.id),
        calls=_calls(session, phones=phones),
        open_tasks=_open_tasks(session, phones=phones),
        consent=consent_state_from_records(
            _consent_records(session, patient_id=patient.id), do_not_call=do_not_call, at=now
        ),
        today=today,
    )


# The card's statements are built once: building and hashing a statement costs about as much
# as running it, and the card runs seven of them on every ring.
_RUNG = aliased(PatientPhone)
_PATIENT_WITH_PHONES = (
    select(
        Patient.id,
        Patient.full_name,
        Patient.birth_date,
        Patient.doctor,
        Patient.insurance_company,
        Patient.policy_end,
        PatientPhone.phone,
    )
    .join(_RUNG, _RUNG.patient_id == Patient.id)
    .join(PatientPhone, PatientPhone.patient_id == Patient.id)
    .where(_RUNG.phone == bindparam("phone"))
    .order_by(PatientPhone.id)
)
_VISITS = (
    select(Visit.visit_date, Visit.status, Visit.doctor, Visit.service, Visit.booked_at)
    .where(Visit.patient_id == bindparam("patient_id"))
    .order_by(Visit.visit_date)
)
_NOTES = select(PatientNote.text, PatientNote.author, PatientNote.created_at).where(
    PatientNote.patient_id == bindparam("patient_id")
)
_CONSENT_RECORDS = select(ConsentRecord.kind, ConsentRecord.action, ConsentRecord.at).where(
    ConsentRecord.patient_id == bindparam("patient_id")
)
_ANY_DO_NOT_CALL = select(
    exists().where(DoNotCall.phone_hash.in_(bindparam("hashes", expanding=True)))
)
_OPEN_TASKS = select(
    Task.id, Task.reason, Task.kind, Task.opened_at, Task.due_at, Task.attempts
).where(Task.phone.in_(bindparam("phones", expanding=True)), Task.status == "open")


def _card_calls_statement() -> CompoundSelect[Any]:
    """Build the calls query: the latest ones, and those the segment rules read.

    The dropped-segment rule looks only at the latest dropped call and the latest contact
    (``segments.is_dropped``), so those two and the ten most recent calls stand in for a
    history of hundreds: the card stays fast however long the patient has been calling.
    start_ts, not started_at: a float becomes a datetime far more cheaply than SQLite's stored
    text is parsed.
    """
    mine = select(
        Call.linkedid, Call.direction, Call.disposition, Call.start_ts, Call.agent, Call.talk_s
    ).where(Call.phone.in_(bindparam("phones", expanding=True)))
    latest_first = Call.start_ts.desc()
    queries = (
        mine.order_by(latest_first).limit(RECENT_CALLS),
        mine.where(
            Call.direction == "inbound",
            Call.disposition.in_(sorted(DROPPED_CALL_DISPOSITIONS)),
        )
        .order_by(latest_first)
        .limit(1),
        mine.where(Call.disposition.in_(sorted(CONTACT_DISPOSITIONS)))
        .order_by(latest_first)
        .limit(1),
    )
    # One round trip for the three: each part is wrapped so its ORDER BY and LIMIT hold.
    return union_all(*(select(query.subquery()) for query in queries))


_CARD_CALLS = _card_calls_statement()


def _patient_with_phones(session: Session, *, phone: str) -> tuple[PatientView, list[str]] | None:
    """Return the patient who has this number, with all their numbers, in one query."""
    rows = _rows(session, _PATIENT_WITH_PHONES, {"phone": phone})
    if not rows:
        return None
    first = rows[0]
    patient = PatientView(
        id=first.id,
        full_name=first.full_name,
        birth_date=first.birth_date,
        doctor=first.doctor,
        insurance_company=first.insurance_company,
        policy_end=first.policy_end,
    )
    return patient, [row.phone for row in rows]


def _any_do_not_call(session: Session, *, phones: Sequence[str]) -> bool:
    hashes = [phone_hash(phone) for phone in phones]
    return bool(session.connection().execute(_ANY_DO_NOT_CALL, {"hashes": hashes}).scalar())


def _visits(session: Session, *, patient_id: int) -> list[VisitView]:
    return [
        VisitView(visit_date=d, status=s, doctor=doc, service=svc, booked_at=b)
        for d, s, doc, svc, b in _rows(session, _VISITS, {"patient_id": patient_id})
    ]


def _notes(session: Session, *, patient_id: int) -> list[NoteView]:
    return [
        NoteView(text=t, author=a, created_at=c)
        for t, a, c in _rows(session, _NOTES, {"patient_id": patient_id})
    ]


def _consent_records(session: Session, *, patient_id: int) -> list[ConsentRecordView]:
    return [
        ConsentRecordView(kind=kind, action=action, at=at)
        for kind, action, at in _rows(session, _CONSENT_RECORDS, {"patient_id": patient_id})
    ]


def _calls(session: Session, *, phones: Sequence[str]) -> list[CallView]:
    if not phones:
        return []
    found: dict[str, CallView] = {}
    for linkedid, direction, disposition, start_ts, agent, talk_s in _rows(
        session, _CARD_CALLS, {"phones": list(phones)}
    ):
        found[linkedid] = CallView(
            linkedid=linkedid,
            direction=direction,
            disposition=disposition,
            started_at=datetime.fromtimestamp(start_ts, tz=UTC),
            agent=agent,
            talk_s=talk_s,
            start_ts=start_ts,
        )
    return list(found.values())


def _open_tasks(session: Session, *, phones: Sequence[str]) -> list[TaskView]:
    if not phones:
        return []
    return [
        TaskView(id=i, reason=r, kind=k, opened_at=o, due_at=d, attempts=a)
        for i, r, k, o, d, a in _rows(session, _OPEN_TASKS, {"phones": list(phones)})
    ]


# --- the CSV import ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RowResult:
    """What the import did with one valid file row."""

    line: int
    outcome: str  # "imported" | "updated" | "unchanged" | "rejected"
    reason: str | None = None  # why a row was rejected here (a conflict with the database)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What the import wrote, row by row."""

    rows: tuple[RowResult, ...] = field(default=())

    def count(self, outcome: str) -> int:
        """Return how many rows ended with ``outcome``."""
        return sum(1 for row in self.rows if row.outcome == outcome)


_PATIENT_FIELDS = ("full_name", "birth_date", "doctor", "insurance_company", "policy_end")


def import_patient_rows(
    session: Session,
    *,
    rows: Sequence[PatientRow],
    at: datetime,
    by: str = "import",
) -> ImportResult:
    """Insert new patients and update known ones (matched by phone) in bulk.

    Empty cells never erase what is stored; consent is recorded only when the file's answer
    differs from the patient's current state, and a last visit only when it is not stored yet,
    so importing the same file twice changes nothing the second time.
    """
    phone_owner = _phone_owners(session, phones=[p for row in rows for p in row.phones])
    results: dict[int, RowResult] = {}
    new_rows: list[PatientRow] = []
    matched: list[tuple[PatientRow, int]] = []
    for row in rows:
        owners = {phone_owner[p] for p in row.phones if p in phone_owner}
        if len(owners) > 1:
            results[row.line] = RowResult(
                line=row.line,
                outcome="rejected",
                reason="phones belong to different patients: " + ", ".join(row.phones),
            )
        elif owners:
            matched.append((row, owners.pop()))
        else:
            new_rows.append(row)

    changed: set[int] = set()  # lines of matched rows that changed something
    stored = _patient_fields(session, ids=[pid for _, pid in matched])
    updates: list[dict[str, Any]] = []
    for row, pid in matched:
        values = {
            name: getattr(row, name)
            for name in _PATIENT_FIELDS
            if getattr(row, name) is not None and getattr(row, name) != stored[pid][name]
        }
        if values:
            changed.add(row.line)
            stored[pid].update(values)
            updates.append({"pid": pid, **{n: stored[pid][n] for n in _PATIENT_FIELDS}})
    if updates:
        table = cast(Table, Patient.__table__)
        statement = (
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values({n: bindparam(n) for n in _PATIENT_FIELDS})
        )
        session.execute(statement, updates)

    new_ids = _insert_patients(session, rows=new_rows)
    targets = [(row, pid, False) for row, pid in matched] + [
        (row, pid, True) for row, pid in zip(new_rows, new_ids, strict=True)
    ]

    phone_rows = [
        {"patient_id": pid, "phone": phone}
        for row, pid, _ in targets
        for phone in row.phones
        if phone not in phone_owner
    ]
    for row, _, is_new in targets:
        if not is_new and any(phone not in phone_owner for phone in row.phones):
            changed.add(row.line)
    _insert_many(session, PatientPhone, phone_rows)

    known_ids = [pid for _, pid in matched]
    consent_now = _consent_states(session, patient_ids=known_ids, at=at)
    consent_rows: list[dict[str, Any]] = []
    for row, pid, _ in targets:
        state = consent_now.get(pid, NO_CONSENT)
        for kind, wanted, current in (
            (ConsentKind.PD, row.pd_consent, state.pd_consent),
            (ConsentKind.MARKETING, row.marketing_consent, state.marketing_consent),
        ):
            if wanted is None or wanted == current:
                continue
            action = ConsentAction.GIVEN if wanted else ConsentAction.WITHDRAWN
            consent_rows.append(
                {
                    "patient_id": pid,
                    "kind": str(kind),
                    "action": str(action),
                    "at": at,
                    "by": by,
                    "channel": "import",
                }
            )
            changed.add(row.line)
    _insert_many(session, ConsentRecord, consent_rows)

    stored_visits = _completed_visit_keys(session, patient_ids=known_ids)
    visit_rows: list[dict[str, Any]] = []
    for row, pid, _ in targets:
        if row.last_visit_date is None or (pid, row.last_visit_date) in stored_visits:
            continue
        stored_visits.add((pid, row.last_visit_date))
        visit_rows.append(
            {
                "patient_id": pid,
                "visit_date": row.last_visit_date,
                "doctor": row.last_visit_doctor,
                "service": row.last_visit_service,
                "status": "completed",
                "booked_at": None,
            }
        )
        changed.add(row.line)
    _insert_many(session, Visit, visit_rows)

    for row in new_rows:
        results[row.line] = RowResult(line=row.line, outcome="imported")
    for row, _ in matched:
        outcome = "updated" if row.line in changed else "unchanged"
        results[row.line] = RowResult(line=row.line, outcome=outcome)
    session.flush()
    return ImportResult(rows=tuple(results[line] for line in sorted(results)))


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _phone_owners(session: Session, *, phones: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(phones))
    owners: dict[str, int] = {}
    for chunk in _chunks(wanted):
        rows = _rows(
            session,
            select(PatientPhone.phone, PatientPhone.patient_id).where(
                PatientPhone.phone.in_(chunk)
            ),
        )
        owners.update({phone: pid for phone, pid in rows})
    return owners


def _patient_fields(session: Session, *, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    columns = [getattr(Patient, name) for name in _PATIENT_FIELDS]
    found: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        query = select(Patient.id, *columns).where(Patient.id.in_(chunk))
        for row in _rows(session, query):
            found[row[0]] = dict(zip(_PATIENT_FIELDS, row[1:], strict=True))
    return found


def _consent_states(
    session: Session, *, patient_ids: Sequence[int], at: datetime
) -> dict[int, ConsentState]:
    records: dict[int, list[ConsentRecordView]] = defaultdict(list)
    for chunk in _chunks(sorted(set(patient_ids))):
        rows = _rows(
            session,
            select(
                ConsentRecord.patient_id, ConsentRecord.kind, ConsentRecord.action, ConsentRecord.at
            ).where(ConsentRecord.patient_id.in_(chunk)),
        )
        for pid, kind, action, when in rows:
            records[pid].append(ConsentRecordView(kind=kind, action=action, at=when))
    return {
        pid: consent_state_from_records(views, do_not_call=False, at=at)
        for pid, views in records.items()
    }


def _completed_visit_keys(session: Session, *, patient_ids: Sequence[int]) -> set[tuple[int, date]]:
    keys: set[tuple[int, date]] = set()
    for chunk in _chunks(sorted(set(patient_ids))):
        rows = _rows(
            session,
            select(Visit.patient_id, Visit.visit_date).where(
                Visit.patient_id.in_(chunk), Visit.status == "completed"
            ),
        )
        keys.update((pid, day) for pid, day in rows)
    return keys


def _insert_patients(
    session: Session, *, rows: Sequence[PatientRow] | Sequence[DemoPatient]
) -> list[int]:
    if not rows:
        return []
    table = cast(Table, Patient.__table__)
    values = [{name: getattr(row, name) for name in _PATIENT_FIELDS} for row in rows]
    if session.get_bind().dialect.name == "sqlite":
        # SQLite cannot keep RETURNING rows in parameter order in one statement, so SQLAlchemy
        # would insert row by row. The transaction began IMMEDIATE, so we are the only writer:
        # numbering the rows ourselves from max(id) is safe and as SQLite would number them.
        first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
        ids = list(range(first, first + len(values)))
        session.execute(insert(table), [{"id": i, **v} for i, v in zip(ids, values, strict=True)])
        return ids
    # sort_by_parameter_order: the ids come back in the order of the rows (insertmanyvalues).
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, values).scalars())


def _insert_many(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        # Core executemany on the table, not ORM objects: one round trip per batch.
        session.execute(insert(model.__table__), rows)


# --- demo patients -------------------------------------------------------------------------


def add_patients(session: Session, *, patients: Sequence[DemoPatient]) -> int:
    """Store whole patients (visits, notes, consents, do-not-call) whose numbers are all new.

    A patient with a number already stored is skipped, so adding the same list twice adds
    nothing the second time. Returns how many patients were added.
    """
    owners = _phone_owners(session, phones=[p for patient in patients for p in patient.phones])
    new = [p for p in patients if not any(phone in owners for phone in p.phones)]
    ids = _insert_patients(session, rows=new)
    pairs = list(zip(new, ids, strict=True))
    _insert_many(
        session,
        PatientPhone,
        [{"patient_id": pid, "phone": phone} for p, pid in pairs for phone in p.phones],
    )
    _insert_many(
        session,
        Visit,
        [
            {
                "patient_id": pid,
                "visit_date": v.visit_date,
                "doctor": v.doctor,
                "service": v.service,
                "status": v.status,
                "booked_at": v.booked_at,
            }
            for p, pid in pairs
            for v in p.visits
        ],
    )
    _insert_many(
        session,
        PatientNote,
        [
            {"patient_id": pid, "text": n.text, "author": n.author, "created_at": n.created_at}
            for p, pid in pairs
            for n in p.notes
        ],
    )
    _insert_many(
        session,
        ConsentRecord,
        [
            {
                "patient_id": pid,
                "kind": c.kind,
                "action": c.action,
                "at": c.at,
                "by": c.by,
                "channel": c.channel,
            }
            for p, pid in pairs
            for c in p.consents
        ],
    )
    for patient in new:
        if patient.do_not_call:
            at = max((c.at for c in patient.consents), default=None) or datetime.now(UTC)
            for phone in patient.phones:
                add_do_not_call(session, phone=phone, at=at, by="demo")
    session.flush()
    return len(new)


# --- quick create (an unknown caller on the line) ------------------------------------------

#: The longest name the patients table keeps.
MAX_NAME_LENGTH = 200
MAX_NOTE_LENGTH = 1000


class PatientInputError(CallcenterError):
    """A patient cannot be created from this input; ``code`` says which rule it broke.

    Codes: ``name_required``, ``name_too_long``, ``bad_phone``, ``bad_birth_date``,
    ``note_too_long``, ``phone_taken`` (then ``patient_id`` is the number's owner).
    """

    def __init__(self, code: str, message: str, *, patient_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.patient_id = patient_id


def create_patient(
    session: Session,
    *,
    full_name: str,
    phone: str,
    birth_date: date | None = None,
    note: str | None = None,
    author: str | None,
    at: datetime,
    today: date | None = None,
) -> int:
    """Create a patient with one number (normalized to E.164) and an optional note; return the id.

    ``today`` (default: ``at``'s date) bounds the birth date: none in the future.

    :raises PatientInputError: for an empty or too long name or note, a number that is not
        one, a birth date in the future or before 1900, or a number another patient has.
    """
    name = " ".join(full_name.split())
    if not name:
        raise PatientInputError("name_required", "the patient's name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise PatientInputError("name_too_long", f"name longer than {MAX_NAME_LENGTH} characters")
    normalized = normalize_phone(phone)
    if normalized is None:
        raise PatientInputError("bad_phone", f"{phone!r} is not a phone number")
    if birth_date is not None:
        last = today or at.date()
        if birth_date > last or birth_date.year < 1900:
            raise PatientInputError("bad_birth_date", f"birth date {birth_date} is not plausible")
    text = (note or "").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise PatientInputError("note_too_long", f"note longer than {MAX_NOTE_LENGTH} characters")
    owner = find_patient_id(session, phone=normalized)
    if owner is not None:
        raise PatientInputError(
            "phone_taken", f"{normalized} belongs to a patient", patient_id=owner
        )
    patient = Patient(full_name=name, birth_date=birth_date)
    patient.phones.append(PatientPhone(phone=normalized))
    try:
        # A savepoint: another operator creating the same number at the same moment loses here
        # (the unique phone), and the caller's transaction stays usable.
        with session.begin_nested():
            session.add(patient)
            session.flush()
    except IntegrityError as exc:
        owner = find_patient_id(session, phone=normalized)
        raise PatientInputError(
            "phone_taken", f"{normalized} belongs to a patient", patient_id=owner
        ) from exc
    if text:
        session.add(PatientNote(patient_id=patient.id, text=text, author=author, created_at=at))
        session.flush()
    return patient.id
