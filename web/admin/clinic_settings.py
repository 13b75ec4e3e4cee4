"""The clinic settings form: read a submitted form into a ``ClinicSchedule`` or Russian errors.

Pure functions (no request, no database): ``form_values`` fills the form from a schedule,
``parse_form`` validates a submitted form (every field is checked, every error reported, and
nothing is built when one is wrong), ``describe_changes`` says in Russian what a new version
changed (the history list shows it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any

from callcenter.tasks.schedule import DEFAULT_KINDS, NEXT_MORNING, ClinicSchedule, TaskKind

WEEKDAYS = (
    "Понедельник",
    "Вторник",
    "Среда",
    "Четверг",
    "Пятница",
    "Суббота",
    "Воскресенье",
)
REASON_LABELS = {
    "missed_call": "пропущенный звонок",
    "abandoned_call": "не дождался ответа",
    "callback_requested": "просил перезвонить",
    "click_to_call": "звонок из карточки",
    "reminder": "напоминание о визите",
    "care": "забота после лечения",
    "nps_followup": "опрос после визита (NPS)",
    "no_show": "не пришёл на приём",
    "first_visit_followup": "после первого визита",
    "sleeping": "давно не был («Забота»)",
    "objection_followup": "после возражения («дорого»)",
    "discount_offer": "предложение скидки",
}
KIND_LABELS = {"service": "сервисный", "marketing": "маркетинговый"}
#: The word that stands for "the next working morning" among the retry gaps.
MORNING_WORDS = ("утро", "утром", "следующее утро")
MAX_GAP_MIN = 7 * 24 * 60
MAX_GAPS = 10
MAX_ATTEMPTS = 20
MAX_HOLIDAYS = 400
MAX_NOTE = 500

_DATE_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


@dataclass(slots=True)
class ParsedForm:
    """A submitted form: the schedule when valid, else the errors by field."""

    schedule: ClinicSchedule | None
    note: str | None
    errors: dict[str, str] = field(default_factory=dict)


def reasons_of(schedule: ClinicSchedule) -> list[str]:
    """Return the task reasons the form lists: the defaults' and any the schedule adds."""
    return sorted(set(DEFAULT_KINDS) | set(schedule.kinds))


def form_values(schedule: ClinicSchedule) -> dict[str, str]:
    """Return the form's field values for ``schedule``."""
    values: dict[str, str] = {}
    for i, day in enumerate(schedule.hours):
        if day is None:
            values[f"closed_{i}"] = "1"
            values[f"open_{i}"] = ""
            values[f"close_{i}"] = ""
        else:
            values[f"open_{i}"] = day[0].strftime("%H:%M")
            values[f"close_{i}"] = day[1].strftime("%H:%M")
    values["holidays"] = "\n".join(d.strftime("%d.%m.%Y") for d in sorted(schedule.holidays))
    values["retry_gaps"] = format_gaps(schedule.retry_gaps_s)
    values["max_attempts"] = str(schedule.max_attempts)
    for reason in reasons_of(schedule):
        values[f"kind_{reason}"] = str(schedule.kinds.get(reason, TaskKind.SERVICE))
    return values


def format_gaps(gaps: tuple[float | None, ...]) -> str:
    """Return retry gaps as the form writes them: minutes, or «утро».

    >>> format_gaps((900.0, 3600.0, None))
    '15, 60, утро'
    """
    return ", ".join(MORNING_WORDS[0] if g is NEXT_MORNING else _minutes(g) for g in gaps)


def _minutes(seconds: float | None) -> str:
    assert seconds is not None
    minutes = seconds / 60
    return str(int(minutes)) if minutes == int(minutes) else f"{minutes:g}"


def parse_form(form: Mapping[str, str], *, current: ClinicSchedule) -> ParsedForm:
    """Validate the submitted form against ``current`` (whose other settings are kept)."""
    errors: dict[str, str] = {}
    hours = _hours(form, current, errors)
    holidays = _holidays(form.get("holidays", ""), errors)
    gaps = _gaps(form.get("retry_gaps", ""), errors)
    attempts = _attempts(form.get("max_attempts", ""), errors)
    kinds = _kinds(form, current, errors)
    note = (form.get("note") or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        errors["note"] = f"Комментарий длиннее {MAX_NOTE} символов."
    if errors:
        return ParsedForm(schedule=None, note=note, errors=errors)
    assert hours is not None and holidays is not None and gaps is not None
    assert attempts is not None and kinds is not None
    try:
        schedule = replace(
            current,
            hours=hours,
            holidays=holidays,
            retry_gaps_s=gaps,
            max_attempts=attempts,
            kinds=MappingProxyType(kinds),
        )
    except ValueError as exc:  # the schedule's own checks (should not happen after ours)
        return ParsedForm(schedule=None, note=note, errors={"form": f"Неверные настройки: {exc}"})
    return ParsedForm(schedule=schedule, note=note)


def _hours(
    form: Mapping[str, str], current: ClinicSchedule, errors: dict[str, str]
) -> tuple[tuple[time, time] | None, ...] | None:
    days: list[tuple[time, time] | None] = []
    bad = False
    for i, name in enumerate(WEEKDAYS):
        if form.get(f"closed_{i}") == "1":
            days.append(None)
            continue
        opens = _time(form.get(f"open_{i}", ""))
        closes = _time(form.get(f"close_{i}", ""))
        key = f"hours_{i}"
        if opens is None or closes is None:
            errors[key] = (
                f"{name}: укажите время начала и конца в виде ЧЧ:ММ или отметьте выходной."
            )
            bad = True
        elif not opens < closes:
            errors[key] = f"{name}: рабочий день должен начинаться раньше, чем заканчивается."
            bad = True
        elif _seconds(closes) - _seconds(opens) < current.min_slot_s:
            errors[key] = (
                f"{name}: рабочий день короче {int(current.min_slot_s // 60)} мин —"
                " звонок не успеет начаться."
            )
            bad = True
        else:
            days.append((opens, closes))
    if bad:
        return None
    if all(day is None for day in days):
        errors["hours"] = "Нужен хотя бы один рабочий день в неделе."
        return None
    return tuple(days)


def _time(raw: str) -> time | None:
    text = raw.strip()
    if not re.fullmatch(r"\d{1,2}:\d{2}", text):
        return None
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def _seconds(at: time) -> int:
    return at.hour * 3600 + at.minute * 60


def _holidays(raw: str, errors: dict[str, str]) -> frozenset[date] | None:
    found: set[date] = set()
    wrong: list[str] = []
    for token in re.split(r"[\s,;]+", raw.strip()):
        if not token:
            continue
        day = _date(token)
        if day is None:
            wrong.append(token)
        else:
            found.add(day)
    if wrong:
        shown = ", ".join(f"«{t}»" for t in wrong[:5])
        errors["holidays"] = (
            f"Не даты: {shown}. Пишите даты как 2026-12-31 или 31.12.2026, по одной в строке."
        )
        return None
    if len(found) > MAX_HOLIDAYS:
        errors["holidays"] = (
            f"Слишком много праздничных дней: {len(found)} (не больше {MAX_HOLIDAYS})."
        )
        return None
    return frozenset(found)


def _date(token: str) -> date | None:
    match = _DATE_DMY.fullmatch(token)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            value = date(year, month, day)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", token):
            value = date.fromisoformat(token)
        else:
            return None
    except ValueError:
        return None
    return value if 2000 <= value.year <= 2100 else None


def _gaps(raw: str, errors: dict[str, str]) -> tuple[float | None, ...] | None:
    tokens = [t.strip().lower() for t in re.split(r"[,;]", raw) if t.strip()]
    if not tokens:
        errors["retry_gaps"] = "Укажите хотя бы один интервал между попытками."
        return None
    if len(tokens) > MAX_GAPS:
        errors["retry_gaps"] = f"Не больше {MAX_GAPS} интервалов."
        return None
    gaps: list[float | None] = []
    for token in tokens:
        if token in MORNING_WORDS:
            gaps.append(NEXT_MORNING)
            continue
        if not token.isdigit() or not 1 <= int(token) <= MAX_GAP_MIN:
            errors["retry_gaps"] = (
                f"«{token}» — не интервал. Пишите минуты от 1 до {MAX_GAP_MIN} или «утро»"
                " (следующее рабочее утро), через запятую: 15, 60, утро."
            )
            return None
        gaps.append(int(token) * 60.0)
    return tuple(gaps)


def _attempts(raw: str, errors: dict[str, str]) -> int | None:
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_ATTEMPTS:
        errors["max_attempts"] = f"Число попыток — целое число от 1 до {MAX_ATTEMPTS}."
        return None
    return int(text)


def _kinds(
    form: Mapping[str, str], current: ClinicSchedule, errors: dict[str, str]
) -> dict[str, TaskKind] | None:
    kinds: dict[str, TaskKind] = {}
    for reason in reasons_of(current):
        value = form.get(f"kind_{reason}", "")
        if value not in KIND_LABELS:
            label = REASON_LABELS.get(reason, reason)
            errors[f"kind_{reason}"] = f"{label}: выберите «сервисный» или «маркетинговый»."
            continue
        kinds[reason] = TaskKind(value)
    return None if len(kinds) != len(reasons_of(current)) else kinds


def describe_changes(old: ClinicSchedule | None, new: ClinicSchedule) -> list[str]:
    """Return, in Russian, what ``new`` changed compared with ``old`` (None: the first)."""
    if old is None:
        return ["первая сохранённая версия"]
    changes: list[str] = []
    for i, (a, b) in enumerate(zip(old.hours, new.hours, strict=True)):
        if a != b:
            changes.append(f"{WEEKDAYS[i]}: {_day_text(a)} → {_day_text(b)}")
    added = sorted(new.holidays - old.holidays)
    removed = sorted(old.holidays - new.holidays)
    if added:
        changes.append("праздники добавлены: " + ", ".join(_dmy(d) for d in added))
    if removed:
        changes.append("праздники убраны: " + ", ".join(_dmy(d) for d in removed))
    if old.retry_gaps_s != new.retry_gaps_s:
        changes.append(
            f"интервалы: {format_gaps(old.retry_gaps_s)} → {format_gaps(new.retry_gaps_s)}"
        )
    if old.max_attempts != new.max_attempts:
        changes.append(f"попыток: {old.max_attempts} → {new.max_attempts}")
    for reason in sorted(set(old.kinds) | set(new.kinds)):
        a_kind, b_kind = old.kinds.get(reason), new.kinds.get(reason)
        if a_kind != b_kind:
            label = REASON_LABELS.get(reason, reason)
            changes.append(f"{label}: {_kind_text(a_kind)} → {_kind_text(b_kind)}")
    for name, label in (("tz", "часовой пояс"), ("min_slot_s", "минимальное окно")):
        if getattr(old, name) != getattr(new, name):
            changes.append(f"{label}: {getattr(old, name)} → {getattr(new, name)}")
    return changes


def _day_text(day: tuple[time, time] | None) -> str:
    return "выходной" if day is None else f"{day[0]:%H:%M}–{day[1]:%H:%M}"


def _kind_text(kind: TaskKind | None) -> str:
    return "—" if kind is None else KIND_LABELS.get(str(kind), str(kind))


def _dmy(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def local_time(at: datetime, tz: str) -> str:
    """Return ``at`` in the clinic's zone as the history shows it."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%d.%m.%Y %H:%M")


def template_rows(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the weekday rows of the form (name, index, open, close, closed)."""
    return [
        {
            "index": i,
            "name": name,
            "open": values.get(f"open_{i}", ""),
            "close": values.get(f"close_{i}", ""),
            "closed": values.get(f"closed_{i}") == "1",
        }
        for i, name in enumerate(WEEKDAYS)
    ]
