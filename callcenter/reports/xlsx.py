"""Excel exports of the supervisor's figures and call list (XlsxWriter, constant memory).

Both writers take a binary file object (the web layer passes a temporary file and streams it
back) and write row by row: with ``constant_memory`` XlsxWriter flushes each finished row to
its own temporary file, so a call list of any length never sits in memory. Headers are
Russian, for the clinic's staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from callcenter.reports.figures import AgentFigures, CallFigures, Figures

#: Russian column headers of ``CallFigures`` (rates become percentages).
CALL_FIGURE_HEADERS: dict[str, str] = {
    "inbound": "Входящие",
    "answered": "Отвечены",
    "missed": "Пропущены",
    "no_answer": "Не ответили",
    "busy": "Занято",
    "queue_timeout": "Истекло время в очереди",
    "abandoned": "Брошены в очереди",
    "abandoned_short": "Брошены быстро",
    "abandoned_real": "Брошены после ожидания",
    "ivr_abandoned": "Брошены до очереди",
    "answered_rate": "Доля отвеченных",
    "missed_rate": "Доля пропущенных",
    "abandoned_rate": "Доля брошенных",
    "avg_queue_wait_s": "Среднее ожидание, с",
    "p90_queue_wait_s": "Ожидание, 90-й перцентиль, с",
    "service_level": "Уровень сервиса",
}
AGENT_HEADERS: dict[str, str] = {
    "agent": "Администратор",
    "offered": "Поступило",
    "answered": "Ответил",
    "missed": "Пропустил",
    "avg_talk_s": "Средний разговор, с",
    "callbacks": "Перезвонил",
    "objections": "Звонков с возражением",
    "objections_booked": "Из них записались",
}
#: Russian column headers of ``ObjectionFigures`` (after the tag's name and code).
OBJECTION_HEADERS: dict[str, str] = {
    "calls": "Звонков с возражением",
    "booked_on_call": "Записались в том же звонке",
    "won_back_later": "Записались позже",
    "won_back": "Записались всего",
    "won_back_rate": "Доля записавшихся",
    "with_task": "С задачей на повторный звонок",
    "task_reached": "Из них дозвонились",
    "still_open": "Задача ещё открыта",
    "lost": "Потеряны",
}
DROP_LABELS: dict[str, str] = {
    "dropped_calls": "Сорвавшиеся звонки",
    "with_task": "С задачей перезвонить",
    "tasks": "Задачи перезвонить",
    "attempted": "Задачи с попыткой дозвона",
    "median_to_first_attempt_s": "До первой попытки, медиана, с",
    "p90_to_first_attempt_s": "До первой попытки, 90-й перцентиль, с",
    "median_to_contact_s": "До дозвона, медиана, с",
    "p90_to_contact_s": "До дозвона, 90-й перцентиль, с",
    "reached": "Дозвонились",
    "reached_rate": "Доля дозвонившихся",
    "won_back": "Вернули (записались)",
    "won_back_rate": "Доля вернувшихся",
    "still_open": "Ещё открыты",
    "unreachable": "Не дозвонились",
}
#: Russian names of the outcome tags.
TAG_LABELS: dict[str, str] = {
    "price_objection": "дорого",
    "booked": "записался",
    "callback_requested": "просит перезвонить",
    "no_time": "нет времени",
    "fear": "страх",
    "went_elsewhere": "ушёл в другую клинику",
    "dissatisfied": "недоволен",
    "wrong_number": "ошиблись номером",
    "do_not_call": "не звонить",
    "moved_away": "переехал",
    "insurance": "ДМС",
    "thinking": "подумает",
}
_RATE_FIELDS = frozenset(
    {"answered_rate", "missed_rate", "abandoned_rate", "service_level", "reached_rate"}
    | {"won_back_rate", "share"}
)


@dataclass(frozen=True, slots=True)
class CallColumn:
    """One column of the call list export: the row's key and its Russian header."""

    key: str
    header: str
    width: float = 14


CALL_COLUMNS: tuple[CallColumn, ...] = (
    CallColumn("started_at", "Начало", 20),
    CallColumn("direction", "Направление", 12),
    CallColumn("disposition", "Итог", 22),
    CallColumn("caller", "Номер звонящего", 16),
    CallColumn("phone", "Телефон (E.164)", 16),
    CallColumn("caller_name", "Имя", 20),
    CallColumn("queue", "Очередь", 12),
    CallColumn("agent", "Администратор", 14),
    CallColumn("last_agent", "Последний администратор", 14),
    CallColumn("wait_s", "Ожидание, с", 11),
    CallColumn("queue_wait_s", "В очереди, с", 11),
    CallColumn("talk_s", "Разговор, с", 11),
    CallColumn("linkedid", "ID звонка", 20),
)


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.header = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.rate = book.add_format({"num_format": "0.0%"})
        self.seconds = book.add_format({"num_format": "0.0"})
        self.when = book.add_format({"num_format": "dd.mm.yyyy hh:mm:ss"})
        self.day = book.add_format({"num_format": "dd.mm.yyyy"})


def _open(target: IO[bytes]) -> tuple[xlsxwriter.Workbook, _Formats]:
    book = xlsxwriter.Workbook(target, {"constant_memory": True})
    return book, _Formats(book)


def _write_value(
    sheet: Worksheet, row: int, col: int, name: str, value: object, formats: _Formats
) -> None:
    if value is None:
        return
    if name in _RATE_FIELDS:
        sheet.write_number(row, col, float(value), formats.rate)  # type: ignore[arg-type]
    elif isinstance(value, float):
        sheet.write_number(row, col, value, formats.seconds)
    elif isinstance(value, int):
        sheet.write_number(row, col, value)
    else:
        sheet.write_string(row, col, str(value))


def _header(sheet: Worksheet, headers: Sequence[str], formats: _Formats) -> None:
    for col, text in enumerate(headers):
        sheet.write_string(0, col, text, formats.header)


def _figure_rows(
    sheet: Worksheet,
    first_header: str,
    rows: Iterable[tuple[Any, CallFigures]],
    formats: _Formats,
) -> None:
    names = [f.name for f in fields(CallFigures)]
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, len(names), 13)
    _header(sheet, [first_header, *(CALL_FIGURE_HEADERS[n] for n in names)], formats)
    for r, (label, figs) in enumerate(rows, start=1):
        if isinstance(label, date):
            sheet.write_datetime(r, 0, datetime.combine(label, datetime.min.time()), formats.day)
        else:
            sheet.write_string(r, 0, str(label))
        for c, name in enumerate(names, start=1):
            _write_value(sheet, r, c, name, getattr(figs, name), formats)


def write_figures(figures: Figures, target: IO[bytes]) -> None:
    """Write the figures: by day (with the period's totals), by hour, administrators, tags,
    objections."""
    book, formats = _open(target)
    period = f"{figures.period.first:%d.%m.%Y} — {figures.period.last:%d.%m.%Y}"
    by_day: list[tuple[Any, CallFigures]] = [(f"Весь период {period}", figures.totals)]
    by_day += list(figures.by_day)
    _figure_rows(book.add_worksheet("По дням"), "День", by_day, formats)
    _figure_rows(
        book.add_worksheet("По часам"),
        "Час",
        [(f"{hour:02d}:00", f) for hour, f in figures.by_hour],
        formats,
    )
    _write_agents(book.add_worksheet("Администраторы"), figures.agents, formats)
    tags = book.add_worksheet("Теги")
    tags.set_column(0, 0, 24)
    tags.set_column(1, 3, 16)
    _header(tags, ["Тег", "Код тега", "Звонков", "Доля размеченных"], formats)
    for r, tag in enumerate(figures.tags, start=1):
        tags.write_string(r, 0, TAG_LABELS.get(tag.tag, tag.tag))
        tags.write_string(r, 1, tag.tag)
        tags.write_number(r, 2, tag.calls)
        _write_value(tags, r, 3, "share", tag.share, formats)
    tags.write_string(len(figures.tags) + 1, 0, "Всего размеченных звонков", formats.header)
    tags.write_number(len(figures.tags) + 1, 2, figures.tagged_calls)
    summary = book.add_worksheet("Перезвоны и сбои")
    summary.set_column(0, 0, 40)
    summary.set_column(1, 1, 16)
    _header(summary, ["Показатель", "Значение"], formats)
    lines: list[tuple[str, str, object]] = [("period", "Период", period)]
    lines += [(name, DROP_LABELS[name], getattr(figures.drops, name)) for name in DROP_LABELS]
    lines += [
        ("gaps", "Сбои связи с АТС", figures.gaps.count),
        ("gap_s", "Время без связи с АТС, с", figures.gaps.total_s),
    ]
    for r, (name, label, value) in enumerate(lines, start=1):
        summary.write_string(r, 0, label)
        _write_value(summary, r, 1, name, value, formats)
    _write_objections(book.add_worksheet("Возражения"), figures, formats)
    book.close()


def _write_objections(sheet: Worksheet, figures: Figures, formats: _Formats) -> None:
    names = list(OBJECTION_HEADERS)
    sheet.set_column(0, 1, 20)
    sheet.set_column(2, len(names) + 1, 16)
    _header(sheet, ["Возражение", "Код тега", *OBJECTION_HEADERS.values()], formats)
    rows = [*figures.objections, figures.objections_total]
    for r, objection in enumerate(rows, start=1):
        total = objection is figures.objections_total
        sheet.write_string(r, 0, "Любое возражение" if total else TAG_LABELS[objection.tag])
        sheet.write_string(r, 1, objection.tag)
        for c, name in enumerate(names, start=2):
            _write_value(sheet, r, c, name, getattr(objection, name), formats)
    sheet.write_string(
        len(rows) + 2,
        0,
        f"Записались позже: в течение {figures.options.win_back_days} дн. после звонка.",
    )


def _write_agents(sheet: Worksheet, agents: Sequence[AgentFigures], formats: _Formats) -> None:
    names = list(AGENT_HEADERS)
    sheet.set_column(0, len(names) - 1, 15)
    _header(sheet, [AGENT_HEADERS[n] for n in names], formats)
    for r, agent in enumerate(agents, start=1):
        for c, name in enumerate(names):
            _write_value(sheet, r, c, name, getattr(agent, name), formats)


def write_calls(
    rows: Iterable[Mapping[str, Any]],
    target: IO[bytes],
    *,
    timezone: str,
    disposition_labels: Mapping[str, str] | None = None,
) -> int:
    """Write the call list, one row per call as read (constant memory); return the rows written.

    Each row maps the ``CALL_COLUMNS`` keys to values; ``started_at`` is an aware datetime,
    shown in the clinic's time zone.
    """
    zone = ZoneInfo(timezone)
    labels = disposition_labels or {}
    book, formats = _open(target)
    sheet = book.add_worksheet("Звонки")
    _header(sheet, [c.header for c in CALL_COLUMNS], formats)
    for col, column in enumerate(CALL_COLUMNS):
        sheet.set_column(col, col, column.width)
    sheet.freeze_panes(1, 0)
    count = 0
    for count, row in enumerate(rows, start=1):
        for col, column in enumerate(CALL_COLUMNS):
            value = row.get(column.key)
            if value is None:
                continue
            if column.key == "started_at":
                local = value.astimezone(zone).replace(tzinfo=None)
                sheet.write_datetime(count, col, local, formats.when)
            elif column.key == "direction":
                sheet.write_string(count, col, "входящий" if value == "inbound" else "исходящий")
            elif column.key == "disposition":
                sheet.write_string(count, col, labels.get(value, value))
            elif isinstance(value, float):
                sheet.write_number(count, col, value, formats.seconds)
            else:
                sheet.write_string(count, col, str(value))
    book.close()
    return count


__all__ = [
    "AGENT_HEADERS",
    "CALL_COLUMNS",
    "CALL_FIGURE_HEADERS",
    "DROP_LABELS",
    "OBJECTION_HEADERS",
    "TAG_LABELS",
    "write_calls",
    "write_figures",
]
