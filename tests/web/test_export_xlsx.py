"""XLSX and CSV exports: the figures workbook, and 100,000 calls streamed in bounded memory."""

from __future__ import annotations

import csv
import gc
import io
import os
import re
import tempfile
import threading
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.replay import replay_trace
from callcenter.store import queries

BURST_DAY = "from=2026-11-22&to=2026-11-22"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MANY = 100_000
DAY = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # 09:00 in Moscow
MANY_DAY = "from=2026-11-20&to=2026-11-20"
#: Far below what 100,000 calls take held in memory (ORM objects: over 1 kB each; even plain
#: tuples of their 13 columns take some 60 MB).
MEMORY_BOUND = 40 * 1024 * 1024


@pytest.fixture
def burst(factory):
    for call in sorted(replay_trace("burst"), key=lambda c: c.end_ts):
        with factory.begin() as s:
            queries.persist_call(s, call=call)


@pytest.fixture
def many_calls(factory):
    """Store MANY calls of one day (one executemany of plain tuples: seconds, not minutes)."""
    rows = []
    for i in range(MANY):
        at = DAY + timedelta(seconds=i * 0.5)
        answered = bool(i % 4)
        rows.append(
            (
                f"bulk.{i}",
                "inbound",
                "answered" if answered else "abandoned",
                f"8916{i:07d}",
                f"+7916{i:07d}",
                "Пациент" if i % 2 else None,
                "reception",
                "101" if answered else None,
                3.0,
                60.0 if answered else 0.0,
                2.5,
                at.strftime("%Y-%m-%d %H:%M:%S.%f"),  # SQLAlchemy's SQLite DATETIME format
                (at + timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                at.timestamp(),
                at.timestamp() + 60,
                "[]",
            )
        )
    with factory.begin() as s:
        s.connection().exec_driver_sql(
            "INSERT INTO calls (linkedid, direction, disposition, caller, phone, caller_name,"
            " queue, agent, wait_s, talk_s, queue_wait_s, started_at, ended_at, start_ts,"
            " end_ts, transfers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _sheet(body: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        return book.read(name).decode("utf-8")


def _strings(body: bytes) -> list[str]:
    """Return every text cell of the workbook (constant memory mode writes them inline)."""
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        names = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
        xml = "".join(book.read(name).decode("utf-8") for name in names)
    return re.findall(r"<t[^>]*>([^<]*)</t>", xml)


def _rss() -> int:
    """Return this process's resident memory in bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _download(client, url: str) -> tuple[object, bytes, int]:
    """GET ``url``, spool the streamed body to disk; return response, body, peak RSS growth.

    A thread samples the resident memory while the server writes and streams the export (the
    body goes to a file, so only what the server holds counts). tracemalloc would be exact but
    makes 100,000 rows take minutes.
    """
    gc.collect()
    baseline = _rss()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryFile() as spool:
        try:
            response = client.get(url)
            for chunk in response.response:  # the streamed body, as the server hands it out
                spool.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
            response.close()
        finally:
            done.set()
            sampler.join()
        peak = max(peak, _rss())
        spool.seek(0)
        return response, spool.read(), peak - baseline


def test_figures_xlsx_has_the_burst_figures_in_russian(supervisor_client, burst):
    response = supervisor_client.get(f"/api/v1/reports/figures.xlsx?{BURST_DAY}")
    assert response.status_code == 200 and response.mimetype == XLSX
    assert (
        'filename="figures-2026-11-22-2026-11-22.xlsx"' in response.headers["Content-Disposition"]
    )
    body = response.get_data()
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        workbook = book.read("xl/workbook.xml").decode("utf-8")
    sheets = re.findall(r'<sheet name="([^"]+)"', workbook)
    expected = ["По дням", "По часам", "Администраторы", "Теги", "Перезвоны и сбои", "Возражения"]
    assert sheets == expected
    strings = _strings(body)
    assert {"Входящие", "Отвечены", "Брошены в очереди", "Уровень сервиса"} <= set(strings)
    assert {"Администратор", "Перезвонил", "Сорвавшиеся звонки"} <= set(strings)
    # The period's row on the first sheet: 40 inbound, 6 answered.
    days = _sheet(body, "xl/worksheets/sheet1.xml")
    second_row = re.search(r'<row r="2".*?</row>', days, re.S)
    assert second_row is not None
    numbers = re.findall(r"<v>([^<]*)</v>", second_row.group(0))
    assert numbers[:2] == ["40", "6"]  # the label before them is an inline string
    hours = _sheet(body, "xl/worksheets/sheet2.xml")
    assert hours.count("<row ") == 1 + 24
    agents = _sheet(body, "xl/worksheets/sheet3.xml")
    api = supervisor_client.get(f"/api/v1/reports/agents?{BURST_DAY}").get_json()["agents"]
    assert agents.count("<row ") == 1 + len(api)


def test_figures_xlsx_refuses_a_bad_period_as_json(supervisor_client):
    response = supervisor_client.get("/api/v1/reports/figures.xlsx?from=2026-11-22&to=2026-11-01")
    assert response.status_code == 400 and response.is_json
    assert "starts after it ends" in response.get_json()["message"]


def test_calls_xlsx_filters_like_the_list(supervisor_client, burst):
    body = supervisor_client.get(f"/api/v1/calls.xlsx?{BURST_DAY}&disposition=abandoned").data
    sheet = _sheet(body, "xl/worksheets/sheet1.xml")
    assert sheet.count("<row ") == 1 + 16
    strings = _strings(body)
    assert "Начало" in strings and "Администратор" in strings
    assert "брошен в очереди" in strings  # the disposition's Russian label


def test_calls_xlsx_writes_100k_rows_in_bounded_memory(supervisor_client, many_calls):
    response, body, peak = _download(supervisor_client, f"/api/v1/calls.xlsx?{MANY_DAY}")
    assert response.status_code == 200 and response.mimetype == XLSX
    assert response.content_length == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as book, book.open("xl/worksheets/sheet1.xml") as xml:
        rows = sum(line.count(b"<row ") for line in xml)
    assert rows == 1 + MANY
    assert peak < MEMORY_BOUND, f"resident memory grew by {peak / 1e6:.1f} MB"


def test_calls_csv_streams_100k_rows_in_bounded_memory(supervisor_client, many_calls):
    response, body, peak = _download(supervisor_client, f"/supervisor/calls.csv?{MANY_DAY}")
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(body.decode("utf-8").lstrip("\ufeff"))))
    assert len(rows) == 1 + MANY
    assert rows[1][0] == f"bulk.{MANY - 1}"  # newest first
    assert peak < MEMORY_BOUND, f"resident memory grew by {peak / 1e6:.1f} MB"
