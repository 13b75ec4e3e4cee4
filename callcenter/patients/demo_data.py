"""A deterministic demo clinic: patients with Russian names, two years of visits, notes, consents.

``generate_demo_patients`` is pure and seeded: the same ``count`` gives the same people, numbers
and history (dates are relative to ``now``). Every caller in the shipped AMI traces is one of
the patients, so the demo's screen pops show real cards: +79161234567, for one, is Иванова
Мария Петровна, who is afraid of anaesthesia («боится анестезии»).
``seed_demo_patients`` stores them once; seeding again adds nothing.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import TYPE_CHECKING

from callcenter.patients.phone import normalize_phone

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SEED = 152_2026
#: The trace caller whose card the README's demo walk-through shows.
FEATURED_PHONE = "+79161234567"

_MALE_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
)  # fmt: skip
_MALE_NAMES = (
    "Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
    "Кирилл", "Михаил", "Никита", "Матвей", "Роман", "Егор", "Павел", "Владимир", "Олег",
)  # fmt: skip
_FEMALE_NAMES = (
    "Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Екатерина",
    "Светлана", "Юлия", "Анастасия", "Дарья", "Марина", "Людмила", "Валентина", "Галина",
)  # fmt: skip
_PATRONYMIC_ROOTS = (
    "Александров", "Дмитриев", "Сергеев", "Андреев", "Алексеев", "Михайлов", "Петров",
    "Иванов", "Николаев", "Владимиров", "Викторов", "Юрьев", "Олегов", "Павлов",
)  # fmt: skip
_DOCTORS = (
    ("Смирнов А. В.", ("Консультация терапевта", "Лечение кариеса", "Пломбирование")),
    ("Кузнецова Е. А.", ("Профессиональная гигиена", "Чистка зубов", "Отбеливание")),
    ("Орлова Т. Н.", ("Консультация ортодонта", "Установка брекетов", "Коррекция брекетов")),
    ("Гришин О. П.", ("Удаление зуба", "Имплантация", "Консультация хирурга")),
    ("Белова И. С.", ("УЗИ брюшной полости", "Консультация гастроэнтеролога")),
    ("Никитин Р. М.", ("Консультация кардиолога", "ЭКГ", "Холтер")),
    ("Соколова Д. А.", ("Консультация гинеколога", "УЗИ малого таза")),
    ("Павлов Е. И.", ("Консультация невролога", "Массаж спины")),
)
_INSURERS = ("АльфаСтрахование", "СОГАЗ", "Ингосстрах", "РЕСО-Гарантия", "ВСК")
_NOTES = (
    "любит кофе",
    "боится анестезии",
    "просит звонить после 18:00",
    "приходит с ребёнком",
    "аллергия на лидокаин",
    "предпочитает сообщения в WhatsApp",
    "плохо слышит, говорить громче",
    "скидка пенсионера 10%",
    "просит напоминать о визите накануне",
    "не любит ждать, записывать на первое время",
)
_ADMINS = ("Ольга", "Марина", "Светлана", "Игорь")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoVisit:
    visit_date: date
    doctor: str
    service: str
    status: str  # "scheduled" | "completed" | "no_show" | "cancelled"
    booked_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoNote:
    text: str
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConsent:
    kind: str  # "pd" | "marketing"
    action: str  # "given" | "withdrawn"
    at: datetime
    by: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoPatient:
    """One patient with everything the store keeps about them."""

    full_name: str
    phones: tuple[str, ...]  # E.164
    birth_date: date
    doctor: str
    insurance_company: str | None = None
    policy_end: date | None = None
    visits: tuple[DemoVisit, ...] = ()
    notes: tuple[DemoNote, ...] = ()
    consents: tuple[DemoConsent, ...] = ()
    do_not_call: bool = False


def trace_callers() -> list[str]:
    """Return every caller number in the shipped AMI traces, E.164, in first-seen order."""
    found: list[str] = []
    traces = resources.files("callcenter") / "data" / "ami-traces"
    for entry in sorted(traces.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".expected.json"):
            continue
        for call in json.loads(entry.read_text(encoding="utf-8"))["calls"]:
            phone = normalize_phone(call.get("caller"))
            if phone is not None and phone not in found:
                found.append(phone)
    return found


def generate_demo_patients(*, now: datetime, count: int = 3000) -> list[DemoPatient]:
    """Return ``count`` demo patients (at least one per trace caller), the same every time."""
    rng = random.Random(SEED)
    callers = trace_callers()
    used = set(callers)
    patients: list[DemoPatient] = []
    for index in range(max(count, len(callers))):
        if index < len(callers):
            phones = [callers[index]]
        else:
            phones = [_new_mobile(rng, used)]
            if rng.random() < 0.08:  # a second number: home or a relative's
                phones.append(_new_mobile(rng, used))
        patients.append(_patient(rng, now=now, phones=tuple(phones)))
    return [_featured(p, now=now) if p.phones[0] == FEATURED_PHONE else p for p in patients]


def seed_demo_patients(session: Session, *, now: datetime, count: int = 3000) -> int:
    """Store the demo patients not stored yet (matched by phone); return how many were added."""
    from callcenter.store.patients import add_patients

    return add_patients(session, patients=generate_demo_patients(now=now, count=count))


def _new_mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        phone = f"+79{rng.choice('0123568')}{rng.randrange(10**8):08d}"
        if phone not in used:
            used.add(phone)
            return phone


def _full_name(rng: random.Random) -> str:
    surname = rng.choice(_MALE_SURNAMES)
    root = rng.choice(_PATRONYMIC_ROOTS)
    if rng.random() < 0.6:  # most clinic patients are women
        return f"{surname}а {rng.choice(_FEMALE_NAMES)} {root}на"
    return f"{surname} {rng.choice(_MALE_NAMES)} {root}ич"


def _patient(rng: random.Random, *, now: datetime, phones: tuple[str, ...]) -> DemoPatient:
    today = now.date()
    doctor, _ = rng.choice(_DOCTORS)
    birth = today - timedelta(days=rng.randint(18 * 365, 85 * 365))
    insurance_company = policy_end = None
    if rng.random() < 0.2:
        insurance_company = rng.choice(_INSURERS)
        policy_end = today + timedelta(days=rng.randint(-180, 540))
    visits = _visits(rng, today=today)
    first_seen = min((v.booked_at for v in visits), default=now - timedelta(days=30))
    consents = (
        [DemoConsent(kind="pd", action="given", at=first_seen, by="регистратура", channel="paper")]
        if rng.random() < 0.9
        else []
    )
    if rng.random() < 0.4:
        given = first_seen + timedelta(minutes=1)
        consents.append(
            DemoConsent(
                kind="marketing", action="given", at=given, by="регистратура", channel="paper"
            )
        )
        if rng.random() < 0.15:
            withdrawn = given + timedelta(days=rng.randint(1, 300))
            if withdrawn < now:
                consents.append(
                    DemoConsent(
                        kind="marketing",
                        action="withdrawn",
                        at=withdrawn,
                        by=rng.choice(_ADMINS),
                        channel="phone",
                    )
                )
    notes = tuple(
        DemoNote(
            text=text,
            author=rng.choice(_ADMINS),
            created_at=now - timedelta(days=rng.randint(1, 700)),
        )
        for text in rng.sample(_NOTES, k=rng.choice((0, 0, 0, 1, 1, 2)))
    )
    return DemoPatient(
        full_name=_full_name(rng),
        phones=phones,
        birth_date=birth,
        doctor=doctor,
        insurance_company=insurance_company,
        policy_end=policy_end,
        visits=tuple(visits),
        notes=notes,
        consents=tuple(consents),
        do_not_call=rng.random() < 0.01,
    )


def _visits(rng: random.Random, *, today: date) -> list[DemoVisit]:
    visits: list[DemoVisit] = []
    for _ in range(rng.choice((0, 1, 1, 2, 3, 4, 5, 6, 8))):
        doctor, services = rng.choice(_DOCTORS)
        day = today - timedelta(days=rng.randint(1, 730))
        roll = rng.random()
        status = "completed" if roll < 0.84 else "no_show" if roll < 0.92 else "cancelled"
        booked = datetime.combine(day - timedelta(days=rng.randint(1, 21)), time(10), tzinfo=UTC)
        visits.append(
            DemoVisit(
                visit_date=day,
                doctor=doctor,
                service=rng.choice(services),
                status=status,
                booked_at=booked,
            )
        )
    if rng.random() < 0.15:
        doctor, services = rng.choice(_DOCTORS)
        day = today + timedelta(days=rng.randint(1, 30))
        booked = datetime.combine(today - timedelta(days=rng.randint(0, 10)), time(11), tzinfo=UTC)
        visits.append(
            DemoVisit(
                visit_date=day,
                doctor=doctor,
                service=rng.choice(services),
                status="scheduled",
                booked_at=booked,
            )
        )
    return sorted(visits, key=lambda v: v.visit_date)


def _featured(patient: DemoPatient, *, now: datetime) -> DemoPatient:
    """Return the walk-through patient: a fixed name, history and notes."""
    today = now.date()
    last = today - timedelta(days=230)  # about seven and a half months: a sleeping patient
    visits = (
        DemoVisit(
            visit_date=last - timedelta(days=180),
            doctor="Смирнов А. В.",
            service="Консультация терапевта",
            status="completed",
            booked_at=datetime.combine(last - timedelta(days=190), time(10), tzinfo=UTC),
        ),
        DemoVisit(
            visit_date=last,
            doctor="Смирнов А. В.",
            service="Лечение кариеса",
            status="completed",
            booked_at=datetime.combine(last - timedelta(days=7), time(10), tzinfo=UTC),
        ),
    )
    registered = datetime.combine(last - timedelta(days=190), time(10), tzinfo=UTC)
    return DemoPatient(
        full_name="Иванова Мария Петровна",
        phones=patient.phones,
        birth_date=date(1984, 3, 5),
        doctor="Смирнов А. В.",
        insurance_company="АльфаСтрахование",
        policy_end=today + timedelta(days=400),
        visits=visits,
        notes=(
            DemoNote(text="боится анестезии", author="Ольга", created_at=registered),
            DemoNote(text="любит кофе", author="Марина", created_at=registered),
        ),
        consents=(
            DemoConsent(
                kind="pd", action="given", at=registered, by="регистратура", channel="paper"
            ),
            DemoConsent(
                kind="marketing", action="given", at=registered, by="регистратура", channel="paper"
            ),
        ),
    )
